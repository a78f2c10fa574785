import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Every client qmp-mux had is logged as disconnected, with the reason,
 * before qmp-mux exits, even when it exits because the QEMU it started
 * died: a `qmp-mux events` client, and a client that keeps its end of the
 * connection open (cut off after closeMs).
 */

t.test('QEMU dies under a spawning qmp-mux: each client is logged as disconnected before qmp-mux exits', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const sock = join(dir, 'mux.sock');
  const config = join(dir, 'mux.json');
  writeFileSync(config, JSON.stringify({ endpoints: [{ name: 'vm', listen: `unix:${sock}` }], timeouts: { closeMs: 300 } }));
  const mux = runCli(t, ['--config', config]);
  const [, pid] = await mux.waitFor(/QEMU started pid=(\d+)/);
  await mux.waitFor(/QEMU connected/);

  const events = runCli(t, ['events', '--connect', sock]);
  await mux.waitFor(/client connected endpoint=vm client=local#1/);
  // A client that reads but never closes its end: qmp-mux must cut it off, and say so.
  const holder = createConnection({ path: sock, allowHalfOpen: true });
  t.teardown(() => holder.destroy());
  let received = '';
  holder.on('data', (d: Buffer) => (received += d.toString()));
  holder.write('{"execute": "qmp_capabilities"}');
  await mux.waitFor(/client connected endpoint=vm client=local#2/);
  await eventually(() => received.includes('"return"'), () => `the holder's negotiation answered; it has ${JSON.stringify(received)}`);
  t.match(received, /"return": \{\}/, 'the holder negotiated');

  process.kill(Number(pid), 'SIGKILL');
  t.same(await mux.exited, { code: 137, signal: null }, "qmp-mux exits with QEMU's status");
  const log = mux.stderr();
  for (const client of ['local#1', 'local#2']) {
    t.match(log, new RegExp(`INFO  client disconnected endpoint=vm client=${client} reason="(QEMU disconnected|qmp-mux stopping)"`), `${client} logged as disconnected`);
  }
  t.same(await events.exited, { code: 3, signal: null }, 'the events client ends with status 3');
});
