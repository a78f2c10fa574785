import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { EndpointConfig } from '../../src/config/config-types.ts';
import { startMux } from '../../src/mux/start.ts';
import { runCli } from '../fixtures/cli.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * A policy that refuses commands but lets human-monitor-command through
 * refuses nothing: --check-config, start-up and startMux say so, naming the
 * endpoint.
 */

const warning = (endpoint: string): string =>
  `endpoint '${endpoint}': policy refuses some commands but allows human-monitor-command, which runs any of them through HMP; deny human-monitor-command too`;

function endpoints(dir: string): EndpointConfig[] {
  return [
    { name: 'ops', listen: `unix:${dir}/ops.sock`, policy: { allow: ['*'], deny: ['quit', 'system_*'] } },
    { name: 'ro', listen: `unix:${dir}/ro.sock`, policy: 'read-only' },
    { name: 'all', listen: `unix:${dir}/all.sock` },
    { name: 'safe', listen: `unix:${dir}/safe.sock`, policy: { allow: ['*'], deny: ['quit', 'human-monitor-command'] } },
    { name: 'some', listen: `unix:${dir}/some.sock`, policy: { allow: ['query-*', { command: 'human-monitor-command', arguments: { 'command-line': 'info *' } }] } },
  ];
}

t.test('--check-config and start-up warn about each endpoint whose policy leaves HMP open', async (t) => {
  const dir = socketDir(t);
  const file = join(dir, 'vm.json');
  writeFileSync(file, JSON.stringify({ upstream: { connect: `unix:${dir}/qemu.sock` }, endpoints: endpoints(dir) }));
  const check = runCli(t, ['--config', file, '--check-config']);
  t.same(await check.exited, { code: 0, signal: null }, 'a warning, not an error');
  t.equal(check.stderr(), `qmp-mux: warning: ${warning('ops')}\nqmp-mux: warning: ${warning('some')}\n`);
  t.match(check.stdout(), /is valid/);

  const run = runCli(t, ['--config', file]);
  await run.waitFor(/clients connect at .*some\.sock/);
  const warned = run.stderr().split('\n').filter((l) => l.includes('human-monitor-command'));
  t.equal(warned.length, 2);
  t.match(warned[0], /^\S+ WARN  policy refuses some commands but allows human-monitor-command, which runs any of them through HMP; deny human-monitor-command too endpoint=ops$/);
  t.match(warned[1], /endpoint=some$/);
  run.child.kill('SIGTERM');
  t.same(await run.exited, { code: 0, signal: null });
});

t.test('startMux warns in its log too', async (t) => {
  const dir = socketDir(t);
  const lines: string[] = [];
  const mux = await startMux(
    { upstream: { connect: `unix:${dir}/qemu.sock` }, endpoints: endpoints(dir).slice(0, 2) },
    { log: { level: 'warn', sink: (line) => lines.push(line) } },
  );
  await mux.stop();
  t.equal(lines.filter((l) => l.includes('human-monitor-command')).length, 1);
  t.match(lines[0], /WARN  policy refuses some commands but allows human-monitor-command.* endpoint=ops$/);
});
