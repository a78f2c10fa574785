import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** The audit log as an operator gets it: qmp-mux in front of a real QEMU, clients on two endpoints, external rotation. */

type Line = Record<string, unknown>;
const read = (path: string): Line[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Line)
    : [];

t.test('who ran what, with which id and arguments, and what came of it; reopened on SIGUSR1', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const log = join(dir, 'audit.jsonl');
  const config = join(dir, 'mux.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${qemu.monitors[0]}` },
      endpoints: [
        { name: 'main', listen: `unix:${dir}/main.sock` },
        { name: 'ro', listen: `unix:${dir}/ro.sock`, policy: 'read-only' },
      ],
      audit: { path: log, arguments: true },
    }),
  );
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/QEMU connected/);
  const main = await TestClient.connect(`${dir}/main.sock`);
  await main.negotiate();
  await main.execute('query-status');
  await main.execute('stop', undefined, 's1');
  await main.execute('human-monitor-command', { 'command-line': 'info status' }, 18446744073709551615n.toString());
  await main.execute('nope', undefined, { k: [1] });
  await main.execute('query-name');
  const ro = await TestClient.connect(`${dir}/ro.sock`);
  await ro.negotiate();
  await ro.execute('stop', undefined, 'denied');
  await eventually(() => read(log).length === 4, () => `four lines in the audit log: ${JSON.stringify(read(log))}`);
  const [stop, hmp, nope, refused] = read(log);
  t.match(stop, { type: 'command', endpoint: 'main', client: Number, peer: /^local#\d+$/, command: 'stop', id: 's1', outcome: 'return', 'qemu-seconds': Number });
  t.ok((stop!['qemu-seconds'] as number) > 0, 'the time QEMU took');
  t.match(hmp, { command: 'human-monitor-command', id: '18446744073709551615', arguments: { 'command-line': 'info status' }, outcome: 'return' });
  t.match(nope, { command: 'nope', id: { k: [1] }, outcome: 'CommandNotFound' }, 'the error class');
  t.match(refused, { endpoint: 'ro', command: 'stop', id: 'denied', outcome: 'refused' }, 'a refusal by policy');
  t.notOk('qemu-seconds' in refused!, 'QEMU was not asked');
  t.notOk(read(log).some((l) => l.command === 'query-status' || l.command === 'query-name'), 'queries are not state-changing: not recorded by default');

  renameSync(log, `${log}.1`);
  run.child.kill('SIGUSR1');
  await eventually(() => existsSync(log), 'the log reopened at its path');
  await main.execute('cont', undefined, 'after');
  await eventually(() => read(log).length === 1, 'the next line in the new file');
  t.match(read(log)[0], { command: 'cont', id: 'after' });
  t.equal(read(`${log}.1`).length, 4, 'the moved file kept what it had');
  const state = JSON.parse(await main.execute('__org.qmp-mux_query-proxy')) as { return: { audit: Record<string, number> } };
  t.same(state.return.audit, { written: 5, dropped: 0, 'buffered-bytes': 0 }, 'query-proxy shows the totals');
});
