import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * `kill -USR2` (systemctl reload) reloads the configuration without
 * dropping a client: through the real command, against a real QEMU.
 */

t.test('a reload adds and removes endpoints and changes policies and limits; clients of kept endpoints stay connected', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const dir = socketDir(t);
  const config = join(dir, 'qmp-mux.json');
  const at = (name: string): string => join(dir, `${name}.sock`);
  const write = (endpoints: object[], extra: object = {}): void =>
    writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${qemu.monitors[0]}` }, endpoints, ...extra }));
  write([
    { name: 'admin', listen: `unix:${at('admin')}` },
    { name: 'tools', listen: `unix:${at('tools')}` },
    { name: 'old', listen: `unix:${at('old')}` },
  ]);
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/clients connect at unix:.*old\.sock/);
  const [admin, tools, old] = await Promise.all([TestClient.connect(at('admin')), TestClient.connect(at('tools')), TestClient.connect(at('old'))]);
  for (const c of [admin, tools, old]) await c.negotiate();
  t.equal(await tools.execute('stop', undefined, 'before'), '{"return": {}, "id": "before"}', 'tools may stop the VM before the reload');
  await tools.execute('cont');

  write([
    { name: 'admin', listen: `unix:${at('admin')}` },
    { name: 'tools', listen: `unix:${at('tools')}`, policy: { preset: 'all', deny: ['stop'] }, limits: { maxCommandBytes: 100, maxMessageSize: 1024 } },
    { name: 'new', listen: `unix:${at('new')}`, policy: 'read-only' },
  ]);
  run.child.kill('SIGUSR2');
  await run.waitFor(/reloaded the configuration added=new removed=old changed=tools/);

  t.equal(await tools.execute('stop', undefined, 'after'), '{"id": "after", "error": {"class": "GenericError", "desc": "The command stop is not allowed on endpoint \'tools\'"}}', 'the new policy holds for the next command of a client connected before');
  t.match(await tools.execute('query-status', { a: 'x'.repeat(200) }, 'big'), /larger than endpoint 'tools' accepts \(\d+ bytes as sent to QEMU; its maxCommandBytes is 100\)/, 'and so do the new limits');
  tools.send(`{"execute":"query-status","arguments":{"a":"${'x'.repeat(2000)}"}}`);
  t.equal(await tools.nextReply(), '{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}', 'the new message limit, read by the session of a client connected before');
  // What QEMU's reader makes of the rest of that message: errors, then the command after it.
  tools.send('\x01{"execute":"query-name","id":"sync"}');
  for (let line = ''; !line.includes('"sync"'); ) line = await tools.nextReply();
  t.equal(await admin.execute('query-name', undefined, 'admin'), '{"return": {}, "id": "admin"}', 'an unchanged endpoint\'s client carries on');
  t.notOk(admin.ended || tools.ended, 'both still connected');
  const left = await old.rest();
  t.ok(old.ended && left.every((l) => l.startsWith('{"timestamp": ')), 'the removed endpoint\'s client is closed, after the events it was owed');
  await eventually(() => !existsSync(at('old')), 'the removed endpoint\'s socket file to go');
  const fresh = await TestClient.connect(at('new'));
  await fresh.negotiate();
  t.match(await fresh.execute('stop', undefined, 1), /"desc": "The command stop is not allowed on endpoint 'new'"/, 'the new endpoint listens, with its policy');
  t.match(run.stderr(), /client disconnected endpoint=old .*reason="its endpoint was removed by a reload"/);
});

/** qmp-mux as its own process, with one endpoint `a` at `sock` and a negotiated client of it. */
async function oneEndpoint(t: Test) {
  const qemu = await startQemu(t);
  const dir = socketDir(t);
  const config = join(dir, 'qmp-mux.json');
  const sock = join(dir, 'a.sock');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${qemu.monitors[0]}` }, endpoints: [{ name: 'a', listen: `unix:${sock}` }] }));
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/clients connect at/);
  const client = await TestClient.connect(sock);
  await client.negotiate();
  return { qemu, config, sock, run, client };
}

t.test('a configuration start-up would refuse is refused at reload with the same message, and the running one stays', async (t) => {
  if (!needQemu(t)) return;
  const { qemu, config, sock, run, client: c } = await oneEndpoint(t);

  const bad = { upstream: { connect: `unix:${qemu.monitors[0]}` }, endpoints: [{ name: 'a', listen: `unix:${sock}`, maxClients: 0 }] };
  writeFileSync(config, JSON.stringify(bad));
  const check = runCli(t, ['--config', config, '--check-config']);
  const said = (await check.waitFor(/qmp-mux: (.*)\n/))[1]!;
  run.child.kill('SIGUSR2');
  const refused = await run.waitFor(/reload refused; the running configuration stays why="(.*)"/);
  t.equal(refused[1], said, 'the same words as --check-config (and start-up)');

  writeFileSync(config, JSON.stringify({ upstream: { connect: 'unix:/elsewhere.sock' }, endpoints: [{ name: 'a', listen: `unix:${sock}` }] }));
  run.child.kill('SIGUSR2');
  await run.waitFor(/why="upstream cannot change without a restart; the running configuration stays"/);
  t.equal(await c.execute('query-name', undefined, 'still'), '{"return": {}, "id": "still"}', 'the client never noticed');
  t.notMatch(run.stderr(), /reloaded the configuration/);
});

t.test('a reload listens anew where an endpoint\'s socket file was removed, and its clients stay', async (t) => {
  if (!needQemu(t)) return;
  const { sock, run, client: before } = await oneEndpoint(t);
  unlinkSync(sock);
  await t.rejects(TestClient.connect(sock), 'unreachable without its file');
  run.child.kill('SIGUSR2');
  await run.waitFor(/its socket file had been removed; listening there anew endpoint=a/);
  const after = await TestClient.connect(sock);
  await after.negotiate();
  t.equal(await after.execute('query-name', undefined, 'new'), '{"return": {}, "id": "new"}', 'reachable again');
  t.equal(await before.execute('query-name', undefined, 'old'), '{"return": {}, "id": "old"}', 'the client connected before carries on');
  run.child.kill('SIGTERM');
  await run.exited;
  t.notOk(existsSync(sock), 'and the file made anew is removed at exit');
});
