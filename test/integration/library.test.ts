import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AddressError, ConfigError, QmpClient, QmpError, startMux, type MuxConfig } from '../../src/index.ts';
import { needQemu, QEMU_BINARY, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** qmp-mux started in-process through the library, driven with the library's client, in front of a real QEMU. */

t.test('startMux: a qmp-mux in this process, from a configuration object; stop removes what it made', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { dir });
  const lines: string[] = [];
  const mux = await startMux(
    {
      upstream: { connect: `unix:${qemu.monitors[0]}` },
      endpoints: [
        { name: 'local', listen: `unix:${dir}/m.sock` },
        { name: 'ro', listen: 'tcp:127.0.0.1:0', policy: 'read-only' },
      ],
    },
    { log: { level: 'info', sink: (l) => lines.push(l) } },
  );
  t.teardown(() => mux.stop());
  t.same(mux.endpoints.get('local'), { type: 'unix', path: `${dir}/m.sock` });
  const tcp = mux.endpoints.get('ro');
  t.ok(tcp?.type === 'tcp' && tcp.port > 0, 'a TCP port of 0 resolved');
  const a = await QmpClient.connect(`unix:${dir}/m.sock`);
  t.match(await a.execute('query-status'), { running: true, status: 'running' });
  const b = await QmpClient.connect(tcp!);
  await t.rejects(b.execute('stop'), new QmpError('stop', 'GenericError', "The command stop is not allowed on endpoint 'ro'"));
  t.ok(lines.some((l) => l.includes('QEMU connected')), 'log lines go where asked');
  await mux.stop();
  t.match(await a.done, { code: 'QMPMUX_CONNECTION' }, 'the client saw its connection end');
  t.notOk(existsSync(`${dir}/m.sock`), 'its socket file is removed');
  t.equal(await mux.done, undefined, 'done: stopped, not because of QEMU');
  b.close();
});

t.test('startMux starting QEMU itself: done says how QEMU ended', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const mux = await startMux({ upstream: { spawn: [QEMU_BINARY, '-machine', 'none', '-nodefaults', '-display', 'none'] }, endpoints: [{ name: 'e', listen: `unix:${join(dir, 'e.sock')}` }] });
  t.teardown(() => mux.stop());
  const c = await QmpClient.connect(`unix:${join(dir, 'e.sock')}`);
  await c.execute('quit').catch(() => undefined);
  t.same(await mux.done, { code: 0, signal: null }, 'QEMU quit, so the mux stopped');
  t.notOk(existsSync(join(dir, 'e.sock')));
});

t.test('startMux: a mistake in the configuration names the field, before anything starts', async (t) => {
  // A mistake the types catch (see package.test.ts) is still caught at run time, for JavaScript and for JSON read from a file.
  const fromJson = JSON.parse('{"endpoints": [{"name": "x", "listen": "unix:/tmp/x.sock", "policy": "readonly"}]}') as MuxConfig;
  await t.rejects(startMux(fromJson), {
    code: 'QMPMUX_CONFIG',
    message: "config.endpoints[0].policy: expected one of 'all', 'read-only', got string \"readonly\"",
  });
  await t.rejects(startMux({ upstream: { connect: 'unix:/nonexistent/q.sock' }, endpoints: [{ name: 'x', listen: 'unix:/nonexistent/x.sock' }] }), ConfigError);
});

t.test('QmpClient.connect: an address that does not parse rejects with the AddressError the package exports', async (t) => {
  const expected = "'bogus:x': expected unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, HOST:PORT or a socket path (./bogus:x for a file of that name)";
  await t.rejects(QmpClient.connect('bogus:x'), new AddressError(expected));
  await t.rejects(QmpClient.connect('bogus:x'), { code: 'QMPMUX_ADDRESS' });
});
