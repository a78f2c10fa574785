import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { runProgram } from '../fixtures/programs.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** The library as another project sees it: through `exports`, from the built dist/, with its type declarations. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** A project in a temporary directory with this package installed (a link, as npm link makes). */
function consumer(t: Test): string {
  const dir = socketDir(t);
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'qmp-mux'));
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
  return dir;
}

t.test('import by package name gives the client API at run time', async (t) => {
  const dir = consumer(t);
  const r = await runProgram(process.execPath, ['--input-type=module', '-e', "const m = await import('qmp-mux'); console.log(Object.keys(m).sort().join(' '))"], { cwd: dir });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'AddressError ConfigError ConnectionError EventOverflowError JsonNumber ProtocolError QmpClient QmpError QmpMuxError TimeoutError TlsError ValueError connectRetrying formatVersion fromJson startMux toJson');
  const internal = await runProgram(process.execPath, ['--input-type=module', '-e', "await import('qmp-mux/dist/proxy/proxy.js')"], { cwd: dir });
  t.not(internal.status, 0, 'internals are not exported');
  t.match(internal.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});

t.test('a strict TypeScript project type-checks against the declarations', async (t) => {
  const dir = consumer(t);
  // skipLibCheck: what is checked is the use of the declarations, not the declarations themselves
  // (tsc wrote them from checked sources), nor Node's (checking those is most of the time taken).
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, exactOptionalPropertyTypes: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
      files: ['use.ts'],
    }),
  );
  writeFileSync(
    join(dir, 'use.ts'),
    `import { QmpClient, QmpError, connectRetrying, type QmpEvent, type QmpValue } from 'qmp-mux';
const client = await QmpClient.connect('unix:/run/vm.sock', { connectTimeout: 5000 });
const status: QmpValue = await client.execute('migrate-set-parameters', { 'max-bandwidth': 18446744073709551615n, 'tls-creds': undefined });
const major: number = client.greeting.version.qemu.major;
client.on('event', (e: QmpEvent) => console.log(e.event, e.data, e.timestamp.seconds));
for await (const e of client.events()) console.log(e.json.get('event'));
try {
  await client.execute('x');
} catch (e) {
  if (e instanceof QmpError) console.log(e.errorClass, e.desc, e.code);
}
await connectRetrying('tcp:127.0.0.1:4444', { maxDelay: 1000 });
// @ts-expect-error the version is a number
const wrong: string = client.greeting.version.qemu.major;
// @ts-expect-error an event's name is a string
client.on('event', (e) => { const n: number = e.event; return n; });
// @ts-expect-error arguments are JSON values
await client.execute('x', { f: () => 1 });
console.log(status, major, wrong);
`,
  );
  const r = await runProgram(process.execPath, [TSC, '-p', dir], { cwd: dir });
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
