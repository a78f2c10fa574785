import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * With the defaults, connections that never negotiate (a port scanner, a
 * tool that hung, anyone on the machine) give their places on a TCP
 * endpoint back within 30 s. Real TCP sockets to the qmp-mux command.
 */

t.test('by default, idle connections holding every place are closed after 30 s, and others get in', async (t) => {
  const dir = socketDir(t);
  const fake = await FakeQemu.start(t);
  const config = join(dir, 'mux.json');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${fake.path}` }, endpoints: [{ name: 'tcp', listen: 'tcp:127.0.0.1:0', maxClients: 4 }] }));
  const run = runCli(t, ['--config', config]);
  const [, port] = await run.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+)/);
  const address = { type: 'tcp', host: '127.0.0.1', port: Number(port) } as const;
  const idle = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(address)));
  for (const c of idle) t.match(await c.next(), /^\{"QMP"/);
  const turnedAway = await TestClient.connect(address);
  t.same(await turnedAway.rest(), ['{"error": {"class": "GenericError", "desc": "Too many clients on endpoint \'tcp\' (at most 4)"}}'], 'every place is held');
  const started = Date.now();
  for (const c of idle) t.same(await c.rest(), ['{"error": {"class": "GenericError", "desc": "Capabilities negotiation not done within 30000 ms; closing"}}']);
  t.ok(Date.now() - started > 20_000, 'not before their time');
  for (const c of idle) c.close();
  // Their places are free once their connections are gone, which the closes above make happen at once.
  const next = await eventually(async () => {
    const c = await TestClient.connect(address);
    if ((await c.next()).startsWith('{"QMP"')) return c;
    c.close();
    return undefined;
  }, 'a place on the endpoint');
  next.send('{"execute":"qmp_capabilities"}');
  t.equal(await next.next(), '{"return": {}}');
  t.equal(await next.execute('query-status', undefined, 1), '{"return": {}, "id": 1}', 'a new client gets in');
});
