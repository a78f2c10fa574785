import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { fromJson, type QmpValue } from '../../src/client/values.ts';
import { ROOT } from '../fixtures/consumer.ts';
import { eventually } from '../fixtures/context.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * `QmpCommands` (src/client/commands.ts) says what each command takes and
 * returns. Read with TypeScript's own checker, each QEMU command is
 * compared with a real QEMU's query-qmp-schema, member by member (names,
 * optional or not, kinds, enum values); each of qmp-mux's own with what a
 * real qmp-mux returns.
 */

/** A type, reduced to what both sides can say. */
type Shape =
  | { k: 'any' }
  | { k: 'string'; values?: string[] }
  | { k: 'int' }
  /** TypeScript's `number`: QEMU's int or number. */
  | { k: 'num' }
  | { k: 'number' }
  | { k: 'boolean' }
  | { k: 'null' }
  | { k: 'array'; of: Shape }
  | { k: 'object'; members: Map<string, { optional: boolean; shape: Shape }>; open: boolean }
  | { k: 'union'; of: Shape[] };

function fromType(checker: ts.TypeChecker, type: ts.Type, where: ts.Node): Shape {
  const alias = type.aliasSymbol?.name;
  if (alias === 'QmpValue' || alias === 'QmpInput') return { k: 'any' };
  if (type.isUnion()) {
    const parts = type.types.filter((p) => !(p.flags & ts.TypeFlags.Undefined));
    if (parts.every((p) => p.isStringLiteral())) return { k: 'string', values: parts.map((p) => (p as ts.StringLiteralType).value).sort() };
    if (parts.every((p) => p.flags & ts.TypeFlags.BooleanLiteral)) return { k: 'boolean' };
    const numeric = (p: ts.Type): boolean => Boolean(p.flags & (ts.TypeFlags.Number | ts.TypeFlags.BigInt)) || p.getSymbol()?.name === 'JsonNumber';
    if (parts.every(numeric)) return parts.length > 1 ? { k: 'int' } : { k: 'num' };
    const bools = parts.filter((p) => p.flags & ts.TypeFlags.BooleanLiteral);
    const rest = parts.filter((p) => !(p.flags & ts.TypeFlags.BooleanLiteral)).map((p) => fromType(checker, p, where));
    const of = bools.length > 0 ? [...rest, { k: 'boolean' } as const] : rest;
    return of.length === 1 ? of[0]! : { k: 'union', of };
  }
  if (type.flags & ts.TypeFlags.String) return { k: 'string' };
  if (type.isStringLiteral()) return { k: 'string', values: [type.value] };
  if (type.flags & ts.TypeFlags.Number) return { k: 'num' };
  if (type.flags & (ts.TypeFlags.Boolean | ts.TypeFlags.BooleanLiteral)) return { k: 'boolean' };
  if (type.flags & ts.TypeFlags.Null) return { k: 'null' };
  const name = type.getSymbol()?.name;
  if ((name === 'Array' || name === 'ReadonlyArray') && checker.isArrayLikeType(type)) {
    return { k: 'array', of: fromType(checker, checker.getTypeArguments(type as ts.TypeReference)[0]!, where) };
  }
  const members = new Map<string, { optional: boolean; shape: Shape }>();
  for (const p of checker.getPropertiesOfType(type)) {
    members.set(p.name, { optional: Boolean(p.flags & ts.SymbolFlags.Optional), shape: fromType(checker, checker.getTypeOfSymbolAtLocation(p, where), where) });
  }
  const index = checker.getIndexInfoOfType(type, ts.IndexKind.String);
  return { k: 'object', members, open: index !== undefined && !(index.type.flags & ts.TypeFlags.Never) };
}

interface SchemaEntry {
  name: string;
  'meta-type': string;
  'json-type'?: string;
  members?: { name: string; type?: string; default?: null }[];
  values?: string[];
  'element-type'?: string;
  'arg-type'?: string;
  'ret-type'?: string;
}

function fromSchema(schema: Map<string, SchemaEntry>, name: string): Shape {
  const e = schema.get(name);
  if (e === undefined) throw new Error(`no type ${name} in the schema`);
  switch (e['meta-type']) {
    case 'builtin':
      switch (e['json-type']) {
        case 'string':
          return { k: 'string' };
        case 'int':
          return { k: 'int' };
        case 'number':
          return { k: 'number' };
        case 'boolean':
          return { k: 'boolean' };
        case 'null':
          return { k: 'null' };
        default:
          return { k: 'any' };
      }
    case 'enum':
      return { k: 'string', values: (e.members?.map((m) => m.name) ?? e.values ?? []).sort() };
    case 'array':
      return { k: 'array', of: fromSchema(schema, e['element-type']!) };
    case 'alternate':
      return { k: 'union', of: e.members!.map((m) => fromSchema(schema, m.type!)) };
    case 'object':
      return { k: 'object', open: false, members: new Map(e.members!.map((m) => [m.name, { optional: 'default' in m, shape: fromSchema(schema, m.type!) }])) };
    default:
      throw new Error(`${name}: meta-type ${e['meta-type']}`);
  }
}

const kindOf = (s: Shape): string => (s.k === 'num' ? 'int' : s.k);

/** Where the TypeScript shape says something QEMU's does not. */
function differences(ours: Shape, qemu: Shape, path: string): string[] {
  if (qemu.k === 'any') return ours.k === 'any' ? [] : [`${path}: QEMU's is any value, ours ${ours.k}`];
  if (qemu.k === 'int' || qemu.k === 'number') return ours.k === 'num' || (ours.k === 'int' && qemu.k === 'int') ? [] : [`${path}: QEMU's is ${qemu.k}, ours ${ours.k}`];
  if (ours.k !== qemu.k) return [`${path}: QEMU's is ${qemu.k}, ours ${ours.k}`];
  switch (qemu.k) {
    case 'string': {
      const mine = (ours as typeof qemu).values;
      return JSON.stringify(mine) === JSON.stringify(qemu.values) ? [] : [`${path}: QEMU's values ${JSON.stringify(qemu.values ?? 'any string')}, ours ${JSON.stringify(mine ?? 'any string')}`];
    }
    case 'array':
      return differences((ours as typeof qemu).of, qemu.of, `${path}[]`);
    case 'union': {
      const mine = (ours as typeof qemu).of.map(kindOf).sort();
      const theirs = qemu.of.map(kindOf).sort();
      return JSON.stringify(mine) === JSON.stringify(theirs) ? [] : [`${path}: QEMU's is one of ${theirs.join(', ')}, ours ${mine.join(', ')}`];
    }
    case 'object': {
      const mine = (ours as typeof qemu).members;
      const out: string[] = [];
      for (const [name, m] of qemu.members) {
        const o = mine.get(name);
        if (o === undefined) out.push(`${path}.${name}: missing`);
        else if (o.optional !== m.optional) out.push(`${path}.${name}: ${m.optional ? 'optional' : 'required'} in QEMU's schema`);
        else out.push(...differences(o.shape, m.shape, `${path}.${name}`));
      }
      for (const name of mine.keys()) if (!qemu.members.has(name)) out.push(`${path}.${name}: not in QEMU's schema`);
      return out;
    }
    default:
      return [];
  }
}

/** Where a value qmp-mux returned does not fit its TypeScript shape. */
function misfits(value: QmpValue, shape: Shape, path: string): string[] {
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'bigint' ? 'int' : typeof value;
  switch (shape.k) {
    case 'any':
      return [];
    case 'union':
      return shape.of.some((s) => misfits(value, s, path).length === 0) ? [] : [`${path}: ${kind} fits none of the union`];
    case 'int':
    case 'num':
      return typeof value === 'number' && Number.isInteger(value) ? [] : typeof value === 'bigint' && shape.k === 'int' ? [] : [`${path}: ${kind}, not an integer`];
    case 'string':
      if (typeof value !== 'string') return [`${path}: ${kind}, not a string`];
      return shape.values === undefined || shape.values.includes(value) ? [] : [`${path}: '${value}' is none of ${shape.values.join(', ')}`];
    case 'array':
      return Array.isArray(value) ? value.flatMap((v, i) => misfits(v, shape.of, `${path}[${i}]`)) : [`${path}: ${kind}, not an array`];
    case 'object': {
      if (kind !== 'object') return [`${path}: ${kind}, not an object`];
      const obj = value as Record<string, QmpValue>;
      const out: string[] = [];
      for (const [name, m] of shape.members) {
        if (!(name in obj)) {
          if (!m.optional) out.push(`${path}.${name}: missing`);
        } else out.push(...misfits(obj[name]!, m.shape, `${path}.${name}`));
      }
      if (!shape.open) for (const name of Object.keys(obj)) if (!shape.members.has(name)) out.push(`${path}.${name}: not in the type`);
      return out;
    }
    default:
      return kind === shape.k ? [] : [`${path}: ${kind}, not ${shape.k}`];
  }
}

/** Each command of QmpCommands: the shapes of its arguments and of what it returns. */
function commandShapes(): Map<string, { args: Shape; returns: Shape }> {
  const file = join(ROOT, 'src', 'client', 'commands.ts');
  const program = ts.createProgram([file], { strict: true, exactOptionalPropertyTypes: true, allowImportingTsExtensions: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const commands = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === 'QmpCommands')!;
  const out = new Map<string, { args: Shape; returns: Shape }>();
  for (const c of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(commands))) {
    const entry = checker.getTypeOfSymbolAtLocation(c, source);
    const part = (name: string): Shape => fromType(checker, checker.getTypeOfSymbolAtLocation(checker.getPropertyOfType(entry, name)!, source), source);
    out.set(c.name, { args: part('arguments'), returns: part('returns') });
  }
  return out;
}

t.test("QmpCommands: QEMU's commands as a real QEMU's schema has them; qmp-mux's own as a real qmp-mux answers them", async (t) => {
  if (!needQemu(t)) return;
  const shapes = commandShapes();
  t.ok(shapes.size >= 20, `${shapes.size} commands`);
  const qemu = await startQemuReady(t, { monitors: 2 });
  const direct = await QmpClient.connect(qemu.monitors[1]!);
  t.teardown(() => direct.close());
  const entries = fromJson(await direct.executeJson('query-qmp-schema')) as unknown as SchemaEntry[];
  const schema = new Map(entries.map((e) => [e.name, e]));
  const byName = new Map(entries.filter((e) => e['meta-type'] === 'command').map((e) => [e.name, e]));

  const own = [...shapes.keys()].filter((name) => name.startsWith('__org.qmp-mux_'));
  for (const [name, { args, returns }] of shapes) {
    if (own.includes(name)) continue;
    const command = byName.get(name);
    if (!command) {
      t.fail(`${name}: not a command of this QEMU`);
      continue;
    }
    t.same(differences(args, fromSchema(schema, command['arg-type']!), `${name} arguments`), [], `${name}: arguments as QEMU's schema has them`);
    t.same(differences(returns, fromSchema(schema, command['ret-type']!), `${name} returns`), [], `${name}: return value as QEMU's schema has it`);
  }

  const dir = socketDir(t);
  const mux = await startMux(t, qemu.monitors[0]!, { audit: { path: join(dir, 'audit.jsonl'), record: 'all', arguments: false, maxEntryBytes: 65536, rotate: { maxBytes: 0, keep: 1 }, maxBufferedBytes: 1 << 20 } });
  const client = await QmpClient.connect(mux.path);
  t.teardown(() => client.close());
  await client.execute('stop');
  await client.execute('cont');
  const noLock = await client.execute('__org.qmp-mux_query-lock');
  // Under a lock (with a reason, and a client waiting for it), so that query-proxy and query-clients show theirs.
  const locked = await client.execute('__org.qmp-mux_lock', { mode: 'write', 'lease-ms': 600000, reason: 'types' });
  const waiter = await QmpClient.connect(mux.path);
  t.teardown(() => waiter.close());
  const waiting = waiter.execute('__org.qmp-mux_lock', { mode: 'exclusive', 'wait-ms': 60000 });
  await eventually(async () => ((await client.execute('__org.qmp-mux_query-lock')) as { waiting?: unknown[] }).waiting?.length === 1, 'the second client in line for the lock');
  const values: Record<string, QmpValue> = {
    '__org.qmp-mux_query-proxy': await client.execute('__org.qmp-mux_query-proxy'),
    '__org.qmp-mux_query-clients': await client.execute('__org.qmp-mux_query-clients'),
    '__org.qmp-mux_query-events': await client.execute('__org.qmp-mux_query-events', { since: 0, events: ['*'] }),
    '__org.qmp-mux_set-events': await client.execute('__org.qmp-mux_set-events', { events: ['*'] }),
    '__org.qmp-mux_lock': locked,
    '__org.qmp-mux_query-lock': await client.execute('__org.qmp-mux_query-lock'),
    '__org.qmp-mux_unlock': await client.execute('__org.qmp-mux_unlock'),
  };
  t.same(misfits(noLock, shapes.get('__org.qmp-mux_query-lock')!.returns, 'no lock'), [], 'query-lock without a lock fits the type too');
  t.match(values['__org.qmp-mux_query-proxy'], { lock: { reason: 'types', waiting: [Number] } }, 'query-proxy with its lock member');
  t.match(values['__org.qmp-mux_query-clients'], [{ lock: 'holds' }, { lock: 'waits' }], 'query-clients with the holder and the waiter');
  await waiting;
  await waiter.execute('__org.qmp-mux_unlock');
  t.same(Object.keys(values).sort(), own.sort(), "every one of qmp-mux's own commands is typed");
  t.equal((values['__org.qmp-mux_query-events'] as { events: unknown[] }).events.length, 2, 'with events to check');
  for (const [name, value] of Object.entries(values)) t.same(misfits(value, shapes.get(name)!.returns, name), [], `${name}: what qmp-mux returns fits the type`);
  t.same(misfits({ ...(values['__org.qmp-mux_query-proxy'] as object), extra: 1 }, shapes.get('__org.qmp-mux_query-proxy')!.returns, 'p'), ['p.extra: not in the type'], 'and a member the type lacks would be seen');
});
