import { join } from 'node:path';
import t from 'tap';
import { HEAP_PROBE, liveHeap, runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

const MIB = 2 ** 20;
const DROPPED = /WARN {2}log lines dropped: the log was not read as fast as it was written dropped=(\d+)/g;

t.test('a log nobody reads stops nothing and holds at most 1 MiB: commands are answered meanwhile, and the lines dropped are said', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const sock = join(dir, 'mux.sock');
  const run = runCli(t, ['--trace', '--upstream', `unix:${qemu.monitors[0]}`, '--listen', `unix:${sock}`], { node: HEAP_PROBE });
  await run.waitFor(/clients connect at/);
  const c = await TestClient.connect(sock);
  await c.negotiate();
  const before = await liveHeap(run);
  const traces = (): number => run.stderr().split('\n').filter((l) => / TRACE /.test(l)).length;
  const tracedBefore = traces();

  // The reader stops: what qmp-mux writes to stderr now waits in qmp-mux (the pipe holds 64 KiB).
  run.child.stderr!.pause();
  // Each id goes into two of a command's four trace lines: 200 commands make 40 MB of log.
  const id = 'x'.repeat(100_000);
  for (let i = 0; i < 200; i++) {
    const reply = await c.execute('query-status', undefined, `${i}${id}`);
    if (!reply.startsWith('{"return": {"status": "running"') || !reply.endsWith(`"id": "${i}${id}"}`)) t.fail(`command ${i}: ${reply.slice(0, 80)}`);
  }
  t.pass('every command answered while nobody read the log');
  run.child.stderr!.resume();
  const after = await liveHeap(run);
  t.ok(after - before < 8 * MIB, `live heap grew ${((after - before) / MIB).toFixed(1)} MiB, not the 40 MB written while the log was not read`);

  // Once the reader has caught up, each time qmp-mux fell behind is said, with how many lines went.
  const account = (): { written: number; dropped: number } => ({
    written: traces() - tracedBefore,
    dropped: [...run.stderr().matchAll(DROPPED)].reduce((sum, m) => sum + Number(m[1]), 0),
  });
  await eventually(() => account().written + account().dropped === 800, () => `each of the 800 trace lines written or counted as dropped: ${JSON.stringify(account())}`);
  const withId = run.stderr().split('\n').filter((l) => l.includes(id)).length;
  t.ok(withId < 40, `of the 400 lines of 100 KB, only what fits in 1 MiB and the pipe was written (${withId}); ${JSON.stringify(account())}`);
});
