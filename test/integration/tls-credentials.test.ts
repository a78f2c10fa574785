import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import t from 'tap';
import { readCredentials } from '../../src/net/tls.ts';
import { handshakeFailure, TlsTerminator, type HandshakeReport, type TlsServerSettings } from '../../src/net/tls-server.ts';
import { makePki, needOpenssl, type Pki } from '../fixtures/certificates.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually, type TestContext } from '../fixtures/context.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * TLS credentials are read and checked as the handshake will use them,
 * every mistake naming its file; a TLS listener closes handshakes that
 * fail or never finish, in bounded time, and gives their place back.
 */

const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));

t.test('credentials: each file read and checked, a mistake naming the file and what is wrong', async (t) => {
  if (!needOpenssl(t)) return;
  const dir = socketDir(t);
  const pki = makePki(dir);
  const names = { cert: 'tls.cert', key: 'tls.key', ca: 'tls.ca' };
  const read = (files: { cert?: string; key?: string; ca?: string }) => () => readCredentials({ cert: files.cert, key: files.key, ca: files.ca }, 'TLSv1.2', names);
  const options = read({ ...pki.server, ca: pki.ca.cert })();
  t.same(options.cert, readFileSync(pki.server.cert));
  t.same(options.ca, readFileSync(pki.ca.cert));
  t.equal(options.minVersion, 'TLSv1.2');
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  const broken = join(dir, 'broken.pem');
  writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const encrypted = join(dir, 'encrypted.key');
  execFileSync('openssl', ['pkey', '-in', pki.server.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
  const cases: [string, () => unknown, string][] = [
    ['a missing file', read({ cert: join(dir, 'nope.pem'), key: pki.server.key }), `tls.cert (${dir}/nope.pem): cannot read: no such file`],
    ['a directory', read({ ...pki.server, ca: dir }), `tls.ca (${dir}): cannot read: EISDIR: illegal operation on a directory, read`],
    ['no PEM certificate', read({ cert: garbage, key: pki.server.key }), `tls.cert (${garbage}): no PEM certificate in it (-----BEGIN CERTIFICATE-----)`],
    ['a certificate that does not parse', read({ ...pki.server, ca: broken }), `tls.ca (${broken}): certificate 1 cannot be read`],
    ['a key that is not one', read({ cert: pki.server.cert, key: garbage }), `tls.key (${garbage}): not a PEM private key`],
    ['the key of another certificate', read({ cert: pki.server.cert, key: pki.admin.key }), `tls.key (${pki.admin.key}): does not belong to the certificate in ${pki.server.cert}`],
    ['an encrypted key', read({ cert: pki.server.cert, key: encrypted }), `tls.key (${encrypted}): the key is encrypted; give it unencrypted, readable only by qmp-mux`],
    ['a certificate without its key', read({ cert: pki.server.cert }), 'give tls.cert and tls.key together (a certificate is presented with its key)'],
  ];
  for (const [what, call, message] of cases) {
    t.throws(call, { code: 'QMPMUX_TLS', message: new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) }, what);
  }
  t.doesNotThrow(read({ ca: pki.ca.cert }), 'a CA alone: a client that presents no certificate');
});

t.test('--check-config and start-up refuse an endpoint whose TLS files cannot be used, naming the file', async (t) => {
  if (!needOpenssl(t)) return;
  const dir = socketDir(t);
  const pki = makePki(dir);
  const config = join(dir, 'tls.json');
  const write = (tls: object): void =>
    writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${dir}/qemu.sock` }, endpoints: [{ name: 'remote', listen: 'tcp:127.0.0.1:0', tls: { ca: pki.ca.cert, ...tls } }] }));
  write({ cert: pki.server.cert, key: pki.collector.key });
  const check = runCli(t, ['--config', config, '--check-config']);
  const start = runCli(t, ['--config', config]);
  const expected = `qmp-mux: endpoint 'remote' (tcp:127.0.0.1:0): tls.key (${pki.collector.key}): does not belong to the certificate in ${pki.server.cert}\n`;
  t.same(await check.exited, { code: 2, signal: null });
  t.equal(check.stderr(), expected);
  t.same(await start.exited, { code: 2, signal: null });
  t.equal(start.stderr(), expected, 'start-up, in the same words');
  write({ cert: pki.server.cert, key: pki.server.key });
  const ok = runCli(t, ['--config', config, '--check-config']);
  t.same(await ok.exited, { code: 0, signal: null }, ok.stderr());
});

/** A TLS server made by a terminator, listening on loopback, with the PKI's server files unless `settings` says otherwise; its reports, collected. */
async function terminated(t: TestContext, pki: Pki, settings: Partial<TlsServerSettings> = {}, maxHandshakes = 8) {
  const reports: HandshakeReport[] = [];
  const terminator = new TlsTerminator({
    settings: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, verifyPeer: true, minVersion: 'TLSv1.2', handshakeTimeoutMs: 5000, ...settings },
    names: { cert: 'cert', key: 'key', ca: 'ca' },
    maxHandshakes: () => maxHandshakes,
    onHandshake: (r) => reports.push(r),
  });
  const secured: Socket[] = [];
  const server = terminator.server((socket) => {
    secured.push(socket);
    socket.end('hello\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.close();
    for (const s of secured) s.destroy();
  });
  const port = (server.address() as { port: number }).port;
  return { terminator, reports, port, server };
}

t.test('a handshake that never finishes is closed once its time is up, and its place is given back', async (t) => {
  if (!needOpenssl(t)) return;
  const pki = makePki(socketDir(t));
  const { terminator, reports, port } = await terminated(t, pki, { handshakeTimeoutMs: 300 }, 4);
  const stalled = connectTcp(port, '127.0.0.1');
  t.teardown(() => stalled.destroy());
  await eventually(() => terminator.handshakes === 1, 'the connection to be under way');
  const from = stalled.localPort;
  await closed(stalled);
  t.equal(terminator.handshakes, 0, 'its place is given back');
  t.match(reports, [{ outcome: 'timeout', detail: 'ERR_TLS_HANDSHAKE_TIMEOUT', peer: `127.0.0.1:${from}` }]);
});

t.test('handshakes under way are bounded: one more closes the oldest of the address holding the most; a real client still gets through', async (t) => {
  if (!needOpenssl(t)) return;
  const pki = makePki(socketDir(t));
  const { terminator, reports, port } = await terminated(t, pki, { handshakeTimeoutMs: 60_000 }, 2);
  const first = connectTcp(port, '127.0.0.1');
  const second = connectTcp(port, '127.0.0.1');
  t.teardown(() => [first, second].forEach((s) => s.destroy()));
  await eventually(() => terminator.handshakes === 2, 'two handshakes under way');
  const oldest = first.localPort;
  const client: TLSSocket = connectTls({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) });
  t.teardown(() => client.destroy());
  let greeting = '';
  client.setEncoding('utf8').on('data', (d: string) => (greeting += d));
  await closed(first);
  await eventually(() => greeting === 'hello\n', 'the real client to be served');
  t.equal(second.closed, false, 'only the oldest went');
  t.match(reports.filter((r) => r.outcome !== 'ok'), [{ outcome: 'evicted', peer: `127.0.0.1:${oldest}` }]);
  t.ok(reports.some((r) => r.outcome === 'ok'));
  t.equal(terminator.handshakes, 1, 'the one still stalled');
});

t.test('every way a handshake fails has its own outcome', async (t) => {
  t.equal(handshakeFailure('ECONNRESET', 'CERT_HAS_EXPIRED'), 'expired');
  t.equal(handshakeFailure('ECONNRESET', 'CERT_NOT_YET_VALID'), 'not-yet-valid');
  t.equal(handshakeFailure('ECONNRESET', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'untrusted');
  t.equal(handshakeFailure('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', undefined), 'no-certificate');
  t.equal(handshakeFailure('ERR_TLS_HANDSHAKE_TIMEOUT', undefined), 'timeout');
  t.equal(handshakeFailure('ECONNRESET', undefined), 'closed');
  t.equal(handshakeFailure('ERR_SSL_WRONG_VERSION_NUMBER', undefined), 'protocol');
  t.equal(handshakeFailure(undefined, undefined), 'other');
});

t.test('reloading reads the files again for new connections, and still asks for client certificates', async (t) => {
  if (!needOpenssl(t)) return;
  const dir = socketDir(t);
  const pki = makePki(dir);
  const served = join(dir, 'served');
  copyFileSync(pki.server.cert, `${served}.pem`);
  copyFileSync(pki.server.key, `${served}.key`);
  const { terminator, reports, port } = await terminated(t, pki, { cert: `${served}.pem`, key: `${served}.key` });
  const serialSeen = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const c = connectTls({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) });
      c.once('secureConnect', () => {
        resolve(c.getPeerCertificate().serialNumber);
        c.destroy();
      });
      c.once('error', reject);
    });
  const before = await serialSeen();
  const renewed = pki.ca.issue('renewed', { subject: '/CN=localhost', san: 'DNS:localhost,IP:127.0.0.1', usage: 'server' });
  copyFileSync(renewed.cert, `${served}.pem`);
  copyFileSync(renewed.key, `${served}.key`);
  t.equal(await serialSeen(), before, 'files are read at start, not at each connection');
  writeFileSync(`${served}.key`, readFileSync(pki.admin.key));
  t.throws(() => terminator.renew(), { code: 'QMPMUX_TLS', message: /does not belong to the certificate/ }, 'a half-renewed pair is refused');
  t.equal(await serialSeen(), before, '... and changes nothing');
  copyFileSync(renewed.key, `${served}.key`);
  const apply = terminator.renew();
  t.equal(await serialSeen(), before, 'the files read are not used until applied (a reload reads every file first)');
  apply();
  t.not(await serialSeen(), before, 'new connections get the renewed certificate');
  const anonymous = connectTls({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert) });
  anonymous.on('error', () => undefined);
  await closed(anonymous);
  await eventually(() => reports.some((r) => r.outcome === 'no-certificate'), 'the certificate-less client to be refused');
});

t.test("the protocol floor is the settings' minVersion: TLS 1.2 by default, a TLS 1.2 client refused under TLSv1.3", async (t) => {
  if (!needOpenssl(t)) return;
  const pki = makePki(socketDir(t));
  const floor = async (minVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ outcome: string; detail: string | undefined }> => {
    const { reports, port } = await terminated(t, pki, { minVersion });
    const client = connectTls({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key), maxVersion: 'TLSv1.2' });
    client.on('error', () => undefined);
    // The server's hello is read, so its end arrives and the client closes.
    client.resume();
    await closed(client);
    const [report] = await eventually(() => (reports.length > 0 ? reports : undefined), 'the handshake to end');
    return { outcome: report!.outcome, detail: report!.detail };
  };
  t.match(await floor('TLSv1.2'), { outcome: 'ok' }, 'TLS 1.2 is enough by default');
  t.same(await floor('TLSv1.3'), { outcome: 'protocol', detail: 'ERR_SSL_UNSUPPORTED_PROTOCOL' }, 'not with minVersion TLSv1.3');
});
