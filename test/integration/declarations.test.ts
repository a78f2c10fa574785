import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { consumer, readmeExamples, ROOT, tsc } from '../fixtures/consumer.ts';

/**
 * The package's declarations as a TypeScript author meets them: a project
 * with `strict`, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`,
 * libraries checked (`skipLibCheck: false`) and `types: []` (TypeScript 6
 * and later), @types/node installed. Each `@ts-expect-error` is a mistake
 * that must not compile: tsc fails if it does.
 */

const example = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/**
 * What each test below has checked, by test: all of it in one project, type-checked by one run of tsc
 * (most of a run goes to reading the libraries, the same for all), whose report is split by file.
 */
const PROJECT = {
  use: {
    'use.ts': `import { QmpClient, connectRetrying, startMux, ConnectionError, type QmpEvent } from 'qmp-mux';
const client = await QmpClient.connect('unix:/run/vm.sock', { signal: AbortSignal.timeout(1000) });
client.on('event', (e: QmpEvent) => console.log(e.event));
client.once('close', (error) => console.log(error instanceof ConnectionError));
await connectRetrying('tcp:127.0.0.1:4444', { maxDelay: 1000, onRetry: (e, n) => console.log(e.code, n) });
const mux = await startMux();
await mux.stop();
`,
  },
  config: {
    'config.ts': `import { startMux, type EndpointConfig, type MuxConfig } from 'qmp-mux';
// @ts-expect-error a misspelt key
await startMux({ endpionts: [] });
// @ts-expect-error a misspelt key inside an endpoint
await startMux({ endpoints: [{ name: 'a', listen: 'unix:/x', maxClient: 3 }] });
// @ts-expect-error no such preset
await startMux({ endpoints: [{ name: 'a', listen: 'unix:/x', policy: 'readonly' }] });
// @ts-expect-error an address without its kind
await startMux({ endpoints: [{ name: 'a', listen: '/run/x.sock' }] });
// @ts-expect-error onStop applies only to spawn
await startMux({ upstream: { connect: 'unix:/q', onStop: 'leave' } });
// @ts-expect-error one upstream, not two
await startMux({ upstream: { connect: 'unix:/q', listen: 'unix:/l' } });
// @ts-expect-error a number where the file has one
await startMux({ window: '7' });
// @ts-expect-error the metrics listener is TCP
await startMux({ metrics: { listen: 'unix:/m.sock' } });
// @ts-expect-error an audit log needs its path
await startMux({ audit: { record: 'all' } });
const endpoints: EndpointConfig[] = [{ name: 'ro', listen: 'tcp:127.0.0.1:0', policy: { preset: 'read-only', deny: ['query-qmp-schema'], allow: [{ command: 'qom-get', arguments: { path: '/machine/*' } }] } }];
await startMux({ upstream: { spawn: ['qemu-system-x86_64', '-m', '64'], onStop: 'powerdown' }, endpoints, $comment: 'notes are allowed' });
await startMux();
const example: MuxConfig = ${example('config/example.json')};
const vm1: MuxConfig = ${example('config/systemd/vm1.json')};
const sidecar: MuxConfig = ${example('config/container/qmp-mux.json')};
console.log(example, vm1, sidecar);
`,
  },
  execute: {
    'execute.ts': `import { QmpClient, type NoArguments, type QmpValue, type RunState } from 'qmp-mux';
declare module 'qmp-mux' {
  interface QmpCommands {
    'query-uuid': { arguments: NoArguments; returns: { UUID: string } };
  }
}
const qmp = await QmpClient.connect('unix:/run/vm.sock');
const status = await qmp.execute('query-status');
const running: boolean = status.running;
const state: RunState = status.status;
await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 18446744073709551615n, 'tls-creds': null, 'multifd-compression': 'zstd' });
const params = await qmp.execute('query-migrate-parameters');
const bandwidth: number | bigint | undefined = params['max-bandwidth'];
const text: string = await qmp.execute('human-monitor-command', { 'command-line': 'info status' });
const proxy = await qmp.execute('__org.qmp-mux_query-proxy');
const errors: number = proxy.counters.errors;
const clients = await qmp.execute('__org.qmp-mux_query-clients');
const peer: string | undefined = clients[0]?.peer;
const uuid: string = (await qmp.execute('query-uuid')).UUID;
const anything: QmpValue = await qmp.execute('x-query-something', { any: [1, 'two'] });
const name: string = 'query-' + 'status';
const untyped: QmpValue = await qmp.execute(name, { free: true });
const asValue: QmpValue = status;
// @ts-expect-error no such parameter
await qmp.execute('migrate-set-parameters', { 'max-bandwith': 1 });
// @ts-expect-error a parameter of the wrong kind
await qmp.execute('migrate-set-parameters', { 'multifd-compression': 'lz4' });
// @ts-expect-error device_del needs its id
await qmp.execute('device_del');
// @ts-expect-error query-status takes no arguments
await qmp.execute('query-status', { verbose: true });
// @ts-expect-error the status is not a number
const wrong: number = status.status;
console.log(running, state, bandwidth, text, errors, peer, uuid, anything, untyped, asValue, wrong);
`,
  },
  readme: Object.fromEntries(readmeExamples().map((code, i) => [`readme${i}.ts`, code])),
};

let checking: Promise<{ status: number | null; output: string }> | undefined;

/**
 * tsc's report on the project: its status, and its errors in `files` (with `elsewhere`, those in no file of
 * the project too: in the declarations themselves, which libraries checked reaches).
 */
async function check(files: Record<string, string>, elsewhere = false): Promise<{ status: number | null; errors: string; output: string }> {
  const all: Record<string, string> = Object.assign({}, ...Object.values(PROJECT));
  checking ??= tsc(consumer(t), all);
  const r = await checking;
  const at = (line: string, names: string[]): boolean => names.some((name) => line.startsWith(`${name}(`));
  const errors = r.output.split('\n').filter((line) => at(line, Object.keys(files)) || (elsewhere && /error TS\d+/.test(line) && !at(line, Object.keys(all))));
  return { status: r.status, errors: errors.join('\n'), output: r.output };
}

t.test('the declarations stand in a project whose "types" is empty, with @types/node installed', async (t) => {
  const r = await check(PROJECT.use, true);
  t.equal(r.errors, '', r.output);
});

t.test('the configuration is typed: startMux({ endpionts: [] }) and other mistakes do not compile; every example file does', async (t) => {
  const r = await check(PROJECT.config);
  t.equal(r.errors, '', r.output);
});

t.test("execute is typed for QEMU's common commands and qmp-mux's own, and open to more", async (t) => {
  const r = await check(PROJECT.execute);
  t.equal(r.errors, '', r.output);
});

t.test("every TypeScript example of the README compiles, as it is, under the same settings", async (t) => {
  t.ok(Object.keys(PROJECT.readme).length >= 2, `${Object.keys(PROJECT.readme).length} examples`);
  const r = await check(PROJECT.readme);
  t.equal(r.errors, '', r.output);
});

t.test('tsc finds nothing to report in the project as a whole', async (t) => {
  const r = await check({});
  t.equal(r.status, 0, r.output);
});
