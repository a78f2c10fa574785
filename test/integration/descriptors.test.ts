import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { elapse, eventually } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { cpuSecondsOf, descriptorsOf } from '../fixtures/proc.ts';
import { needProgram } from '../fixtures/programs.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Out of file descriptors: qmp-mux neither crashes nor spins; it says so
 * once, keeps serving its clients, refuses new ones with a QMP error, and
 * serves new ones again once descriptors are free.
 */

/** Low enough to reach quickly, high enough for Node.js to load qmp-mux's modules (it opens them side by side, more under tap's coverage). */
const LIMIT = 128;
/** What the README promises to keep free for qmp-mux's own needs. */
const RESERVE = 16;

t.test('running out of file descriptors', async (t) => {
  if (!needProgram(t, 'prlimit', 'util-linux')) return;
  const fake = await FakeQemu.start(t);
  const dir = socketDir(t);
  const sock = join(dir, 'm.sock');
  const audit = join(dir, 'audit.jsonl');
  const config = join(dir, 'mux.json');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${fake.path}` }, endpoints: [{ name: 'default', listen: `unix:${sock}`, maxClients: 2 * LIMIT }], audit: { path: audit, record: 'commands' } }));
  const run = runCli(t, ['--config', config], { wrapper: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, '--'] });
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
    if (clients.length > LIMIT) throw new Error('never refused');
  }
  t.ok(clients.length > 20, `${clients.length} clients served before the limit`);
  for (let i = 0; i < 30; i++) {
    const c = await TestClient.connect(sock);
    t.equal((await c.rest())[0], refusal, `attempt ${i} refused with a QMP error`);
  }
  await run.waitFor(/cannot accept clients/);
  t.equal(run.stderr().match(/cannot accept clients/g)?.length, 1, 'said once, not at every attempt');
  t.match(run.stderr(), new RegExp(`cannot accept clients endpoint=default why="\\d+ file descriptors open, ${LIMIT} allowed"`));
  // Once the refused connections are closed, qmp-mux holds what it took: clients up to the reserve, not one more.
  await eventually(() => descriptorsOf(pid) <= LIMIT - RESERVE, () => `the 31 refused connections to be closed (${descriptorsOf(pid)} descriptors open)`);
  t.equal(descriptorsOf(pid), LIMIT - RESERVE, `clients were taken while ${RESERVE} descriptors stayed free, and no further`);

  const cpuBefore = cpuSecondsOf(pid);
  await elapse(1000);
  t.ok(cpuSecondsOf(pid) - cpuBefore < 0.3, 'not spinning at the limit');

  clients[0]!.send('{"execute":"qmp_capabilities"}');
  t.equal(await clients[0]!.next(), '{"return": {}}');
  t.match(await clients[0]!.execute('query-status', undefined, 1), /"id": 1/, 'clients already in are still served');
  // What the reserve is for: at the limit, qmp-mux can still open a file (the audit log, reopened as after rotation).
  await eventually(() => existsSync(audit) && readFileSync(audit, 'utf8').includes('query-status'), 'query-status in the audit log');
  renameSync(audit, `${audit}.1`);
  run.child.kill('SIGUSR1');
  t.match(await clients[0]!.execute('query-name', undefined, 'audited'), /"id": "audited"/);
  await eventually(() => existsSync(audit) && readFileSync(audit, 'utf8').includes('"audited"'), 'the command in the reopened audit log');
  t.notMatch(run.stderr(), /cannot write the audit log/, 'opened at the limit');
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
