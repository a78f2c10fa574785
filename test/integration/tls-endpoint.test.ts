import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import t, { type Test } from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { readConfig } from '../../src/config/file.ts';
import { DEFAULTS } from '../../src/config/options.ts';
import type { Address } from '../../src/net/address.ts';
import { makePki, needOpenssl, type Issued, type Pki } from '../fixtures/certificates.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { startMux, type Mux } from '../fixtures/mux.ts';
import { needProgram } from '../fixtures/programs.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * TLS endpoints in front of a real QEMU: who the client is (its verified
 * certificate) decides what it may do; everything else is turned away,
 * at the handshake or with a QMP error before the greeting.
 */

interface Setup {
  pki: Pki;
  mux: Mux;
  audit: string;
  /** Where each endpoint listens. */
  at: (endpoint: string) => { host: string; port: number };
}

async function setUp(t: Test): Promise<Setup | undefined> {
  if (!needQemu(t) || !needOpenssl(t)) return undefined;
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const qemu = await startQemu(t);
  const tls = (extra: object = {}) => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, ...extra });
  const endpoints = readConfig({
    endpoints: [
      {
        name: 'remote',
        listen: 'tcp:127.0.0.1:0',
        tls: tls({ handshakeTimeoutMs: 400 }),
        policy: 'read-only',
        identities: [
          { name: 'admin', match: ['O=Example', 'CN=admin'], policy: 'all' },
          { name: 'collector', match: 'CN=collector', events: ['STOP', 'SHUTDOWN'], maxClients: 1 },
        ],
      },
      { name: 'guarded', listen: 'tcp:127.0.0.1:0', tls: tls({ handshakeTimeoutMs: 60_000 }), maxClients: 1 },
      { name: 'anyone', listen: 'tcp:127.0.0.1:0', tls: { cert: pki.server.cert, key: pki.server.key, verifyPeer: false } },
    ],
  }).endpoints!;
  const audit = join(dir, 'audit.jsonl');
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints, audit: { ...DEFAULTS.audit, rotate: { ...DEFAULTS.audit.rotate }, path: audit, record: 'commands' } });
  const at = (name: string) => {
    const a = mux.endpoints.find((e) => e.name === name)!.address as Extract<Address, { type: 'tcp' }>;
    return { host: a.host, port: a.port };
  };
  return { pki, mux, audit, at };
}

/** A raw TLS connection's options: the CA, and a client certificate if given. */
const raw = (s: Setup, endpoint: string, who?: Issued): ConnectionOptions => ({
  ...s.at(endpoint),
  ca: readFileSync(s.pki.ca.cert),
  ...(who && { cert: readFileSync(who.cert), key: readFileSync(who.key) }),
});
/** qmp-mux's own client, with a certificate. */
const client = (s: Setup, endpoint: string, who: Issued): Promise<QmpClient> => {
  const { host, port } = s.at(endpoint);
  return QmpClient.connect(`tls:${host}:${port}`, { tls: { cert: who.cert, key: who.key, ca: s.pki.ca.cert } });
};
/** The admin's and the collector's clients of `remote`, closed when the test ends. */
async function adminAndCollector(t: Test, s: Setup): Promise<{ admin: QmpClient; collector: QmpClient }> {
  const admin = await client(s, 'remote', s.pki.admin);
  const collector = await client(s, 'remote', s.pki.collector);
  t.teardown(() => Promise.all([admin.close(), collector.close()]));
  return { admin, collector };
}
const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
const logged = (s: Setup, pattern: RegExp): Promise<string> => eventually(() => s.mux.logs.find((l) => pattern.test(l)), () => `${pattern} in the log:\n${s.mux.logs.join('\n')}`);

t.test('who the client is decides what it may do: policies, events and limits by identity, shown in query-clients, the log, the audit log and the metrics', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { admin, collector } = await adminAndCollector(t, s);
  const clients = (await admin.execute('__org.qmp-mux_query-clients')) as Record<string, unknown>[];
  t.match(clients, [
    { endpoint: 'remote', identity: 'admin', subject: 'O=Example,CN=admin', events: ['*'] },
    { endpoint: 'remote', identity: 'collector', subject: 'O=Example,CN=collector', events: ['STOP', 'SHUTDOWN'] },
  ]);
  const refused = await collector.execute('stop').catch((e: unknown) => e);
  t.match(refused, { errorClass: 'GenericError', desc: "The command stop is not allowed on endpoint 'remote' for identity 'collector'" }, "the collector has the endpoint's read-only policy");
  t.match(await collector.execute('query-status'), { status: 'running' }, 'and may read');

  const seen: string[] = [];
  collector.on('event', (e) => seen.push(e.event));
  await admin.execute('stop');
  await admin.execute('cont');
  await collector.execute('query-status');
  t.same(seen, ['STOP'], 'the collector gets only its events (RESUME came before its last reply)');

  const second = await TestClient.connectTls(raw(s, 'remote', s.pki.collector));
  t.same(await second.rest(), ['{"error": {"class": "GenericError", "desc": "Too many clients of identity \'collector\' on endpoint \'remote\' (at most 1)"}}'], 'a second collector is one more than its identity may have');

  await logged(s, /client connected endpoint=remote client=127\.0\.0\.1:\d+ identity=collector subject="O=Example,CN=collector"/);
  await logged(s, /refused a command endpoint=remote client=127\.0\.0\.1:\d+ identity=collector subject="O=Example,CN=collector" command=stop why=command/);
  const text = s.mux.mux.metrics.render();
  t.match(text, /qmpmux_identity_commands_total\{endpoint="remote",identity="collector",outcome="refused"\} 1\n/);
  t.match(text, /qmpmux_identity_commands_total\{endpoint="remote",identity="admin",outcome="return"\} 3\n/);
  t.match(text, /qmpmux_identity_clients\{endpoint="remote",identity="collector"\} 1\n/);
  t.match(text, /qmpmux_tls_handshakes_total\{endpoint="remote",outcome="ok"\} 3\n/);
  await admin.execute('__org.qmp-mux_lock', { mode: 'write', reason: 'maintenance' });
  t.match(await collector.execute('__org.qmp-mux_query-lock'), { mine: false, client: clients[0]!.client, endpoint: 'remote', identity: 'admin', subject: 'O=Example,CN=admin' }, 'a lock holder named by its identity');
  await admin.execute('__org.qmp-mux_unlock');

  await Promise.all([admin.close(), collector.close()]);
  await logged(s, /client disconnected endpoint=remote client=127\.0\.0\.1:\d+ identity=admin subject="O=Example,CN=admin" reason=/);
  await s.mux.stop();
  const records = readFileSync(s.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(records.length >= 6, 'every command recorded');
  for (const r of records) t.match(r, { endpoint: 'remote', identity: /^(admin|collector)$/, subject: /^O=Example,CN=(admin|collector)$/ }, `${String(r.command)} names who ran it`);
  t.match(records.find((r) => r.command === 'stop' && r.identity === 'collector'), { outcome: 'refused' });
  t.match(records.find((r) => r.command === 'stop' && r.identity === 'admin'), { outcome: 'return', subject: 'O=Example,CN=admin' });
});

t.test('socat, an independent TLS client, is served like any other', async (t) => {
  const s = await setUp(t);
  if (!s || !needProgram(t, 'socat', 'socat', ['-V'])) return;
  const { host, port } = s.at('remote');
  const { admin } = s.pki;
  const child = spawn('socat', ['-t', '10', '-', `OPENSSL:${host}:${port},cert=${admin.cert},key=${admin.key},cafile=${s.pki.ca.cert},verify=1`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end('{"execute":"qmp_capabilities"}{"execute":"__org.qmp-mux_query-clients","id":"who"}');
  const status = await new Promise((resolve) => child.once('exit', resolve));
  t.equal(status, 0, err);
  const lines = out.trim().split('\r\n');
  t.match(lines[0], /^\{"QMP": \{"version": \{"qemu": /, "QEMU's greeting");
  t.equal(lines[1], '{"return": {}}');
  t.match(lines[2], /"identity": "admin".*"subject": "O=Example,CN=admin".*"id": "who"\}$/);
});

t.test('turned away at the handshake: no certificate, another CA, an expired one, TLS 1.1, plaintext; each logged and counted by cause', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const attempt = async (options: ConnectionOptions): Promise<string[]> => {
    try {
      const c = await TestClient.connectTls(options);
      return await c.rest();
    } catch {
      // Refused before TLS 1.3 lets the client think it connected.
      return [];
    }
  };
  t.same(await attempt(raw(s, 'remote')), [], 'no certificate: nothing but the TLS alert');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=no-certificate detail=ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE/);
  t.same(await attempt(raw(s, 'remote', s.pki.rogue)), [], 'a certificate from another CA: closed, never greeted');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=untrusted detail=UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  t.same(await attempt(raw(s, 'remote', s.pki.expired)), [], 'an expired certificate: closed, never greeted');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=expired detail=CERT_HAS_EXPIRED/);
  t.same(await attempt({ ...raw(s, 'remote', s.pki.admin), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), [], 'TLS 1.1: refused');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=protocol/);

  const talker = connectTcp(s.at('remote').port, '127.0.0.1');
  let heard = 0;
  talker.on('data', (d: Buffer) => (heard += d.length));
  talker.on('error', () => undefined);
  talker.write('{"execute":"qmp_capabilities"}\n');
  await closed(talker);
  t.equal(heard, 0, 'a plaintext client that talks first: closed, nothing written to it in clear');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=protocol detail=ERR_SSL_(WRONG_VERSION_NUMBER|HTTP_REQUEST|PACKET_LENGTH_TOO_LONG)/);

  const waiter = connectTcp(s.at('remote').port, '127.0.0.1');
  waiter.on('error', () => undefined);
  const began = Date.now();
  await closed(waiter);
  t.ok(Date.now() - began >= 350, 'a plaintext QMP client waiting for a greeting is closed once the handshake time (400 ms) is up, not before');
  await logged(s, /TLS handshake failed endpoint=remote client=127\.0\.0\.1:\d+ why=timeout detail=ERR_TLS_HANDSHAKE_TIMEOUT/);

  const text = s.mux.mux.metrics.render();
  for (const outcome of ['no-certificate', 'untrusted', 'expired', 'timeout']) t.match(text, new RegExp(`qmpmux_tls_handshakes_total\\{endpoint="remote",outcome="${outcome}"\\} 1\\n`), outcome);
  t.match(text, /qmpmux_tls_handshakes_total\{endpoint="remote",outcome="protocol"\} 2\n/);
  t.same(s.mux.mux.listClients(), [], 'none of them became a client');
});

t.test('a verified certificate that matches no identity gets a QMP error before any greeting, and is closed', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const mallory = await TestClient.connectTls(raw(s, 'remote', s.pki.mallory));
  t.same(await mallory.rest(), ['{"error": {"class": "GenericError", "desc": "No identity of endpoint \'remote\' matches the certificate of CN=mallory"}}']);
  t.same(mallory.framingErrors, []);
  await logged(s, /client disconnected endpoint=remote client=127\.0\.0\.1:\d+ subject="CN=mallory" reason="its certificate matches no identity of the endpoint"/);
  t.match(s.mux.mux.describe().counters.disconnects, { 'no-identity': 1 });
  t.match(s.mux.mux.metrics.render(), /qmpmux_connections_ended_total\{endpoint="remote",reason="no-identity"\} 1\n/);
  const rest = await QmpClient.connect(`tls:${s.at('remote').host}:${s.at('remote').port}`, { tls: { cert: s.pki.mallory.cert, key: s.pki.mallory.key, ca: s.pki.ca.cert } }).catch((e: unknown) => e);
  t.match(rest, { code: 'QMPMUX_CONNECTION', message: /refused: GenericError: No identity of endpoint 'remote' matches the certificate of CN=mallory$/ }, "qmp-mux's client reports the error it got for a greeting");
});

t.test('a handshake that never finishes keeps no one out: past the endpoint\'s bound the oldest goes', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const stalled = connectTcp(s.at('guarded').port, '127.0.0.1');
  stalled.on('error', () => undefined);
  await new Promise((resolve) => stalled.once('connect', resolve));
  const from = stalled.localPort;
  const admin = await client(s, 'guarded', s.pki.admin);
  t.teardown(() => admin.close());
  t.match(await admin.execute('query-status'), { status: 'running' }, 'a real client is served although the endpoint takes one client');
  await closed(stalled);
  await logged(s, new RegExp(`TLS handshake failed endpoint=guarded client=127\\.0\\.0\\.1:${from} why=evicted`));
});

t.test('without verifyPeer anyone may connect: encrypted, not authenticated, no identity', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { host, port } = s.at('anyone');
  const anyone = await QmpClient.connect(`tls:${host}:${port}`, { tls: { ca: s.pki.ca.cert } });
  t.teardown(() => anyone.close());
  const [me] = (await anyone.execute('__org.qmp-mux_query-clients')) as Record<string, unknown>[];
  t.match(me, { endpoint: 'anyone' });
  t.notOk(me && ('identity' in me || 'subject' in me), 'no identity, no subject');
});

t.test('beyond loopback: a TLS endpoint that verifies clients listens with allowRemote, unwarned; without them start-up refuses or warns, saying why', async (t) => {
  if (!needQemu(t) || !needOpenssl(t)) return;
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const qemu = await startQemu(t);
  const tls = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert };
  const config = join(dir, 'remote.json');
  const start = (endpoint: object) => {
    writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${qemu.monitors[0]}` }, endpoints: [{ name: 'remote', listen: 'tcp:0.0.0.0:0', ...endpoint }] }));
    return runCli(t, ['--config', config]);
  };
  const refusals: [string, object, string][] = [
    ['plaintext', {}, 'not a loopback address, and QMP authenticates no one: give the endpoint tls with client certificates and set allowRemote (allowRemote alone exposes it to anyone who can reach it)'],
    ['TLS that verifies clients, without allowRemote', { tls }, 'not a loopback address; set allowRemote to expose it (its clients must present a certificate)'],
  ];
  for (const [what, endpoint, why] of refusals) {
    const refused = start(endpoint);
    t.same(await refused.exited, { code: 2, signal: null }, what);
    t.equal(refused.stderr(), `qmp-mux: endpoint 'remote' (tcp:0.0.0.0:0): ${why}\n`, `${what}: start-up says why`);
  }

  const plain = start({ allowRemote: true });
  await plain.waitFor(/WARN {2}listens beyond loopback with plaintext QMP: anyone who can reach it controls the VM; give it tls with client certificates \(README, Remote access\) endpoint=remote/);
  plain.child.kill('SIGTERM');
  await plain.exited;

  const run = start({ allowRemote: true, tls });
  const port = Number((await run.waitFor(/clients connect at tcp:0\.0\.0\.0:(\d+) with TLS/))[1]);
  await run.waitFor(/QEMU connected/);
  const admin = await QmpClient.connect(`tls:127.0.0.1:${port}`, { tls: { cert: pki.admin.cert, key: pki.admin.key, ca: pki.ca.cert } });
  t.teardown(() => admin.close());
  t.match(await admin.execute('query-status'), { status: 'running' }, 'served beyond loopback');
  t.notMatch(run.stdout() + run.stderr(), /WARN/, 'and not warned about: its clients are verified');
});

t.test("who may lock is the identity's policy; the lock's holder shows with its identity in query-clients", async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { admin, collector } = await adminAndCollector(t, s);
  const refused = await collector.execute('__org.qmp-mux_lock', { mode: 'write' }).catch((e: unknown) => e);
  t.match(refused, { desc: "The command __org.qmp-mux_lock is not allowed on endpoint 'remote' for identity 'collector'" }, 'the read-only collector may not lock');
  await admin.execute('__org.qmp-mux_lock', { mode: 'exclusive' });
  const clients = (await admin.execute('__org.qmp-mux_query-clients')) as Record<string, unknown>[];
  t.match(clients, [{ identity: 'admin', lock: 'holds' }, { identity: 'collector' }], 'the admin, by its identity, may');
  t.notOk(clients[1] && 'lock' in clients[1]);
  await admin.execute('__org.qmp-mux_unlock');
  await logged(s, /lock granted endpoint=remote client=127\.0\.0\.1:\d+ identity=admin subject="O=Example,CN=admin" mode=exclusive/);
  await logged(s, /lock ended endpoint=remote client=127\.0\.0\.1:\d+ identity=admin subject="O=Example,CN=admin" mode=exclusive why=unlock/);
  await Promise.all([admin.close(), collector.close()]);
  await s.mux.stop();
  const locks = readFileSync(s.audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.type === 'lock');
  t.match(locks, [{ action: 'granted', identity: 'admin', subject: 'O=Example,CN=admin' }, { action: 'ended', identity: 'admin', subject: 'O=Example,CN=admin' }], "the audit log's lock records name the holder's identity too");
});
