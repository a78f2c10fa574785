import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { elapse, eventually } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { cpuSecondsOf } from '../fixtures/proc.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Out of file descriptors: qmp-mux neither crashes nor spins; it says so
 * once, keeps serving its clients, refuses new ones with a QMP error, and
 * serves new ones again once descriptors are free.
 */

t.test('running out of file descriptors', async (t) => {
  const fake = await FakeQemu.start(t);
  const dir = socketDir(t);
  const sock = join(dir, 'm.sock');
  const run = runCli(t, ['--upstream', `unix:${fake.path}`, '--listen', `unix:${sock}`], { wrapper: ['prlimit', '--nofile=64:64', '--'] });
  await run.waitFor(/QEMU connected/);
  const pid = run.child.pid!;
  const clients: TestClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const refusal = '{"error": {"class": "GenericError", "desc": "qmp-mux has no file descriptors to spare; try again later"}}';
  for (;;) {
    const c = await TestClient.connect(sock);
    const first = await c.next();
    if (first === refusal) break;
    t.match(first, /^\{"QMP"/);
    clients.push(c);
    if (clients.length > 64) throw new Error('never refused');
  }
  t.ok(clients.length > 20, `${clients.length} clients served before the limit`);
  for (let i = 0; i < 30; i++) {
    const c = await TestClient.connect(sock);
    t.equal((await c.rest())[0], refusal, `attempt ${i} refused with a QMP error`);
  }
  await run.waitFor(/cannot accept clients/);
  t.equal(run.stderr().match(/cannot accept clients/g)?.length, 1, 'said once, not at every attempt');
  t.match(run.stderr(), /cannot accept clients endpoint=default why="\d+ file descriptors open, 64 allowed"/);

  const cpuBefore = cpuSecondsOf(pid);
  await elapse(1000);
  t.ok(cpuSecondsOf(pid) - cpuBefore < 0.3, 'not spinning at the limit');

  clients[0]!.send('{"execute":"qmp_capabilities"}');
  t.equal(await clients[0]!.next(), '{"return": {}}');
  t.match(await clients[0]!.execute('query-status', undefined, 1), /"id": 1/, 'clients already in are still served');
  for (const c of clients.splice(1, 10)) c.close();
  const fresh = await eventually(
    async () => {
      const c = await TestClient.connect(sock);
      const first = await c.next();
      if (first === refusal) return undefined;
      return { c, first };
    },
    'a new client to be served once descriptors are free',
  );
  t.match(fresh.first, /^\{"QMP"/);
  clients.push(fresh.c);
  await run.waitFor(/accepting clients again/);
  t.equal(run.child.exitCode, null, 'still running');
});
