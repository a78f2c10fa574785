import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { createLogger } from '../../src/log.ts';
import type { TlsClientSettings } from '../../src/net/tls.ts';
import { Dialer } from '../../src/upstream/dial-source.ts';
import { makePki, needOpenssl, type Pki } from '../fixtures/certificates.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * qmp-mux dialing a QEMU monitor that QEMU itself serves with TLS
 * (`tls-creds-x509`, `endpoint=server`, `verify-peer=on`, and a
 * `tls-authz` naming qmp-mux's certificate): QEMU's certificate checked,
 * qmp-mux's presented, against a real QEMU.
 */

interface TlsQemu {
  pki: Pki;
  port: number;
}

/**
 * QEMU with a TLS monitor on a TCP port of its choosing (learnt with
 * query-chardev on a second, plain monitor). `authz` is the certificate
 * name QEMU lets in, as its tls-authz writes it; `serverSan` what QEMU's
 * certificate names.
 */
async function tlsQemu(t: Test, authz: string, serverSan = 'DNS:localhost,IP:127.0.0.1'): Promise<TlsQemu> {
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const creds = join(dir, 'qemu-creds');
  mkdirSync(creds);
  const served = pki.ca.issue('qemu', { subject: '/CN=qemu', san: serverSan, usage: 'server' });
  copyFileSync(pki.ca.cert, join(creds, 'ca-cert.pem'));
  copyFileSync(served.cert, join(creds, 'server-cert.pem'));
  copyFileSync(served.key, join(creds, 'server-key.pem'));
  const qemu = await startQemu(t, {
    args: [
      '-object', `tls-creds-x509,id=tls0,dir=${creds},endpoint=server,verify-peer=on`,
      '-object', `authz-simple,id=authz0,identity=${authz.replaceAll(',', ',,')}`,
      '-chardev', 'socket,id=mon0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0,tls-authz=authz0',
      '-mon', 'chardev=mon0,mode=control',
    ],
  });
  const plain = await TestClient.connect(qemu.monitors[0]!);
  await plain.negotiate();
  const chardevs = await plain.execute('query-chardev');
  plain.close();
  const port = Number(/"filename": "disconnected:tcp:127\.0\.0\.1:(\d+),server=on", "label": "mon0"/.exec(chardevs)?.[1]);
  if (!port) throw new Error(`no TLS monitor in ${chardevs}`);
  return { pki, port };
}

const settings = (pki: Pki, extra: Partial<TlsClientSettings> = {}): TlsClientSettings => ({ cert: pki.admin.cert, key: pki.admin.key, ca: pki.ca.cert, serverName: undefined, minVersion: 'TLSv1.2', ...extra });

t.test('qmp-mux connects to a TLS monitor: QEMU checks its certificate, it checks QEMU\'s; clients are served as ever', async (t) => {
  if (!needQemu(t) || !needOpenssl(t)) return;
  const { pki, port } = await tlsQemu(t, 'O=Example,CN=admin');
  const dir = socketDir(t);
  const config = join(dir, 'qmp-mux.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `tcp:127.0.0.1:${port}`, tls: { cert: pki.admin.cert, key: pki.admin.key, ca: pki.ca.cert } },
      endpoints: [{ name: 'local', listen: `unix:${dir}/mux.sock` }],
    }),
  );
  const run = runCli(t, ['--config', config]);
  await run.waitFor(/QEMU connected version=/);
  const client = await QmpClient.connect(`unix:${dir}/mux.sock`);
  t.teardown(() => client.close());
  t.match(await client.execute('query-status'), { status: 'running' });
  t.match(await client.execute('__org.qmp-mux_query-proxy'), { upstream: { state: 'ready', mode: 'connect' } });
});

t.test('what QEMU or qmp-mux will not accept keeps the link down, said once in the log', async (t) => {
  if (!needQemu(t) || !needOpenssl(t)) return;
  const { pki, port } = await tlsQemu(t, 'O=Example,CN=admin', 'DNS:qemu.example');
  const address = { type: 'tcp', host: '127.0.0.1', port } as const;
  const dialing = async (tls: TlsClientSettings) => {
    const mux = await startMux(t, address, { source: (log) => new Dialer({ address, backoff: { initialMs: 10, maxMs: 50 }, log, tls }) });
    return mux;
  };

  const byName = await dialing(settings(pki, { serverName: 'qemu.example' }));
  await eventually(() => byName.mux.upstreamState === 'ready', 'the link to QEMU, its certificate checked against the name given');
  await byName.stop();

  const byAddress = await dialing(settings(pki));
  await eventually(() => byAddress.logs.find((l) => /WARN {2}QEMU unreachable, retrying .*error="Hostname\/IP does not match certificate's altnames/.test(l)), () => `the name check failing:\n${byAddress.logs.join('\n')}`);
  t.not(byAddress.mux.upstreamState, 'ready', "QEMU's certificate does not name 127.0.0.1: no link");
  await byAddress.stop();

  const otherCa = await dialing(settings(pki, { serverName: 'qemu.example', ca: pki.rogue.cert }));
  await eventually(() => otherCa.logs.find((l) => /QEMU unreachable, retrying upstream=tcp:127\.0\.0\.1:\d+ error="unable to verify the first certificate"/.test(l)), 'an untrusted QEMU certificate to be refused');
  t.not(otherCa.mux.upstreamState, 'ready', 'a QEMU whose certificate the CA did not sign: no link');
  await otherCa.stop();

  const refusedByQemu = await dialing(settings(pki, { serverName: 'qemu.example', cert: pki.collector.cert, key: pki.collector.key }));
  await eventually(() => refusedByQemu.logs.find((l) => /WARN {2}QEMU connection failed before negotiation, retrying reason="connection closed"/.test(l)), () => `QEMU's tls-authz to refuse the collector's certificate:\n${refusedByQemu.logs.join('\n')}`);
  t.not(refusedByQemu.mux.upstreamState, 'ready', "a certificate QEMU's tls-authz does not name: no link");
  await refusedByQemu.stop();
});

t.test('the upstream\'s files are checked before anything starts, and read again at each reload', async (t) => {
  if (!needOpenssl(t)) return;
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const config = join(dir, 'qmp-mux.json');
  writeFileSync(config, JSON.stringify({ upstream: { connect: 'tcp:127.0.0.1:1', tls: { cert: pki.admin.cert, key: pki.admin.key, ca: join(dir, 'missing.pem') } }, endpoints: [{ name: 'l', listen: `unix:${dir}/l.sock` }] }));
  const check = runCli(t, ['--config', config, '--check-config']);
  t.same(await check.exited, { code: 2, signal: null });
  t.equal(check.stderr(), `qmp-mux: upstream (tcp:127.0.0.1:1): tls.ca (${dir}/missing.pem): cannot read: no such file\n`);
  const log = createLogger({ level: 'debug', format: 'text', trace: false, sink: () => undefined });
  const dialer = (tls: TlsClientSettings) => new Dialer({ address: { type: 'tcp', host: '127.0.0.1', port: 1 }, backoff: { initialMs: 10, maxMs: 10 }, log, tls });
  const files = settings(pki, { ca: join(dir, 'ca-copy.pem') });
  copyFileSync(pki.ca.cert, files.ca!);
  const working = dialer(files);
  t.doesNotThrow(() => working.renewCredentials()());
  writeFileSync(files.ca!, 'gone\n');
  t.throws(() => working.renewCredentials(), { code: 'QMPMUX_TLS', message: /^upstream tls\.ca \(.*ca-copy\.pem\): no PEM certificate in it/ }, 'reloading reads the files again');
  t.throws(() => dialer(settings(pki, { ca: join(dir, 'missing.pem') })), {
    code: 'QMPMUX_TLS',
    message: `upstream tls.ca (${dir}/missing.pem): cannot read: no such file`,
  });
});
