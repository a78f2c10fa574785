import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';

/**
 * The shape of src/: folders are floors, and a file imports only from its
 * own floor or below, never in a circle. A newcomer can read the data path
 * bottom up: bytes (json), the protocol (qmp), what clients connect to
 * (downstream), events, QEMU (upstream), observability (ops), options
 * (config), the mux that joins them, and the commands on top.
 */
const FLOORS: Readonly<Record<string, number>> = {
  util: 0,
  'errors.ts': 0,
  'exit-status.ts': 0,
  'version.ts': 0,
  'log.ts': 1,
  json: 1,
  qmp: 2,
  policy: 3,
  net: 3,
  downstream: 4,
  events: 5,
  upstream: 6,
  ops: 7,
  config: 8,
  mux: 9,
  client: 9,
  cli: 10,
  'index.ts': 11,
};
/** The longest a file may grow (about 350 lines) before it should be two. */
const MAX_LINES = 360;

const root = resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const files = sources(root).map((path) => relative(root, path));
const floorOf = (file: string): number => {
  const floor = FLOORS[file.split('/')[0]!];
  if (floor === undefined) throw new Error(`${file}: its folder has no floor in the architecture test; give it one`);
  return floor;
};
const imports = new Map(
  files.map((file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const targets = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)].map((m) => relative(root, resolve(root, dirname(file), m[1]!)));
    return [file, targets] as const;
  }),
);

t.test('every file has a floor, and imports only from its floor or below', async (t) => {
  const upward: string[] = [];
  for (const [file, targets] of imports) {
    for (const target of targets) if (floorOf(target) > floorOf(file)) upward.push(`${file} -> ${target}`);
  }
  t.same(upward, [], 'no import runs back up');
});

t.test('no import circles', async (t) => {
  // Tarjan's strongly connected components: any of more than one file is a circle.
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (file: string): void => {
    order.set(file, index);
    low.set(file, index++);
    stack.push(file);
    onStack.add(file);
    for (const next of imports.get(file) ?? []) {
      if (!imports.has(next)) continue;
      if (!order.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, order.get(next)!));
      }
    }
    if (low.get(file) !== order.get(file)) return;
    const component: string[] = [];
    for (let member = stack.pop(); member !== undefined; member = stack.pop()) {
      onStack.delete(member);
      component.push(member);
      if (member === file) break;
    }
    if (component.length > 1) circles.push(component);
  };
  for (const file of files) if (!order.has(file)) visit(file);
  t.same(circles, []);
});

t.test(`no file is longer than ${MAX_LINES} lines`, async (t) => {
  const long = files.map((file) => [file, readFileSync(join(root, file), 'utf8').split('\n').length] as const).filter(([, lines]) => lines > MAX_LINES);
  t.same(long, []);
});
