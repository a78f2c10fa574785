import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { readConfig } from '../../src/config/file.ts';
import { makePki, needOpenssl, type Pki } from '../fixtures/certificates.ts';
import { runCli } from '../fixtures/cli.ts';
import type { TestContext } from '../fixtures/context.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu, type Qemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * A reload (SIGUSR2) reads the TLS files again, certificates renewed in
 * place, without dropping a client; and applies identities anew to the
 * clients connected: through the real command, against a real QEMU.
 */

/** The serial number of the certificate the TLS server at `port` presents now. */
function served(port: number, pki: Pki, path?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: path ?? '/healthz', agent: false, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) }, (res) => {
      resolve((res.socket as TLSSocket).getPeerCertificate().serialNumber);
      res.resume();
    });
    req.on('error', reject);
  });
}

/** A QEMU, a PKI, and a copy of its server certificate and key that a test can renew in place. */
async function renewable(t: TestContext): Promise<{ dir: string; pki: Pki; qemu: Qemu; cert: string; key: string }> {
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const qemu = await startQemu(t);
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  copyFileSync(pki.server.cert, cert);
  copyFileSync(pki.server.key, key);
  return { dir, pki, qemu, cert, key };
}

t.test('renewed certificates and changed identities take effect at a reload; connected clients stay, or go when no identity is theirs any more', async (t) => {
  if (!needQemu(t) || !needOpenssl(t)) return;
  const { dir, pki, qemu, cert, key } = await renewable(t);
  const config = join(dir, 'qmp-mux.json');
  const tls = { cert, key, ca: pki.ca.cert };
  const write = (identities: object[], extra: object = {}): void =>
    writeFileSync(
      config,
      JSON.stringify({
        upstream: { connect: `unix:${qemu.monitors[0]}` },
        endpoints: [{ name: 'remote', listen: 'tcp:127.0.0.1:0', tls: { ...tls, ...extra }, policy: 'read-only', identities }],
        metrics: { listen: 'tcp:127.0.0.1:0', tls },
      }),
    );
  write([
    { name: 'admin', match: 'CN=admin', policy: 'all' },
    { name: 'collector', match: 'CN=collector' },
  ]);
  const run = runCli(t, ['--config', config]);
  const port = Number((await run.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+) with TLS/))[1]);
  const metrics = Number((await run.waitFor(/metrics at https:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  const connect = (who: { cert: string; key: string }) => QmpClient.connect(`tls:127.0.0.1:${port}`, { tls: { ...who, ca: pki.ca.cert } });
  const admin = await connect(pki.admin);
  const collector = await connect(pki.collector);
  t.teardown(() => Promise.all([admin.close(), collector.close()]));
  const before = await served(metrics, pki);
  const first = await TestClient.connectTls({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) });
  t.equal((first.socket as TLSSocket).getPeerCertificate().serialNumber, before, 'the endpoint and the metrics listener present the same certificate');
  first.close();

  const renewed = pki.ca.issue('renewed', { subject: '/CN=localhost', san: 'DNS:localhost,IP:127.0.0.1', usage: 'server' });
  copyFileSync(renewed.cert, cert);
  copyFileSync(renewed.key, key);
  write([{ name: 'admin', match: 'CN=admin', policy: { preset: 'all', deny: ['stop'] } }]);
  run.child.kill('SIGUSR2');
  await run.waitFor(/reloaded the configuration changed=remote/);

  await run.waitFor(/client disconnected endpoint=remote client=127\.0\.0\.1:\d+ identity=collector subject="O=Example,CN=collector" reason="its certificate matches no identity of the endpoint"/);
  await t.rejects(collector.execute('query-status'), { code: 'QMPMUX_CONNECTION' }, 'the collector, whom no identity names any more, is gone');
  const refused = await admin.execute('stop').catch((e: unknown) => e);
  t.match(refused, { desc: "The command stop is not allowed on endpoint 'remote' for identity 'admin'" }, "the admin stays, with its identity's new policy from its next command");
  t.match(await admin.execute('query-status'), { status: 'running' });

  const fresh = await TestClient.connectTls({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) });
  t.teardown(() => fresh.close());
  const after = (fresh.socket as TLSSocket).getPeerCertificate().serialNumber;
  t.not(after, before, 'a new connection gets the renewed certificate');
  t.equal(await served(metrics, pki), after, 'and so does the metrics listener');
  const anonymous = await TestClient.connectTls({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert) }).then((c) => c.rest()).catch(() => []);
  t.same(anonymous, [], 'and a client without a certificate is still refused');

  write([{ name: 'admin', match: 'CN=admin' }], { handshakeTimeoutMs: 5000 });
  run.child.kill('SIGUSR2');
  await run.waitFor(/reload refused; the running configuration stays why="endpoint 'remote' tls \(but its files and minVersion\) cannot change without a restart/);
  write([{ name: 'admin', match: 'CN=admin' }], { key: pki.admin.key });
  run.child.kill('SIGUSR2');
  await run.waitFor(new RegExp(`reload refused; the running configuration stays why="endpoint 'remote' \\(tcp:127\\.0\\.0\\.1:0\\): tls\\.key \\(${pki.admin.key.replace(/[.]/g, '\\.')}\\): does not belong to the certificate`));
  t.match(await admin.execute('query-status'), { status: 'running' }, 'the admin carries on through refused reloads');
});

t.test('a reload reads every TLS file before it changes anything: one that cannot be used leaves identities and certificates as they were', async (t) => {
  if (!needQemu(t) || !needOpenssl(t)) return;
  const { pki, qemu, cert, key } = await renewable(t);
  const endpoint = (collectorPolicy: string) =>
    readConfig({
      endpoints: [{ name: 'remote', listen: 'tcp:127.0.0.1:0', tls: { cert, key, ca: pki.ca.cert }, identities: [{ name: 'collector', match: 'CN=collector', policy: collectorPolicy }] }],
    }).endpoints!;
  const m = await startMux(t, qemu.monitors[0]!, { endpoints: endpoint('read-only') });
  const a = m.endpoints[0]!.address;
  const port = a.type === 'tcp' ? a.port : 0;
  const serial = async (): Promise<string> => {
    const c = await TestClient.connectTls({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) });
    const seen = (c.socket as TLSSocket).getPeerCertificate().serialNumber;
    c.close();
    return seen;
  };
  const collector = await QmpClient.connect(`tls:127.0.0.1:${port}`, { tls: { cert: pki.collector.cert, key: pki.collector.key, ca: pki.ca.cert } });
  t.teardown(() => collector.close());
  const before = await serial();

  const renewed = pki.ca.issue('renewed', { subject: '/CN=localhost', san: 'DNS:localhost,IP:127.0.0.1', usage: 'server' });
  copyFileSync(renewed.cert, cert);
  writeFileSync(key, 'half-written\n');
  const next = { ...m.options, endpoints: endpoint('all') };
  await t.rejects(m.mux.reload(next), { code: 'QMPMUX_TLS', message: `endpoint 'remote' tls.key (${key}): not a PEM private key` });
  t.match(await collector.execute('stop').catch((e: unknown) => e), { desc: "The command stop is not allowed on endpoint 'remote' for identity 'collector'" }, 'the identity keeps its policy');
  t.equal(await serial(), before, 'and the endpoint its certificate');

  copyFileSync(renewed.key, key);
  await m.mux.reload(next);
  await collector.execute('stop');
  await collector.execute('cont');
  t.pass('the identity has its new policy once the files can be used');
  t.not(await serial(), before, 'and new connections the renewed certificate');
});
