import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runEvents } from '../../src/client/events.ts';
import { EXEC_USAGE, runExec } from '../../src/client/exec.ts';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { runShell } from '../../src/client/shell.ts';
import { runWaitReady, WAIT_READY_USAGE } from '../../src/client/wait-ready.ts';
import { readConfig } from '../../src/config/file.ts';
import { makePki, needOpenssl, type Issued, type Pki } from '../fixtures/certificates.ts';
import { fakeIo } from '../fixtures/cli-io.ts';
import { eventually } from '../fixtures/context.ts';
import { runCli } from '../fixtures/cli.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/** `qmp-mux exec`, `events` and `shell` with `--connect tls:HOST:PORT`, `--cert`, `--key`, `--ca`, `--server-name`. */

/** A qmp-mux with a TLS endpoint (an admin, and a read-only collector), in front of a real QEMU. */
async function setUp(t: Test): Promise<{ pki: Pki; address: string; as: (who?: Issued) => string[] } | undefined> {
  if (!needQemu(t) || !needOpenssl(t)) return undefined;
  const pki = makePki(join(socketDir(t), 'pki'));
  const qemu = await startQemu(t);
  const endpoints = readConfig({
    endpoints: [
      {
        name: 'remote',
        listen: 'tcp:127.0.0.1:0',
        tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
        identities: [
          { name: 'admin', match: 'CN=admin' },
          { name: 'collector', match: 'CN=collector', policy: 'read-only' },
        ],
      },
    ],
  }).endpoints!;
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints });
  const a = mux.endpoints[0]!.address;
  const address = `tls:127.0.0.1:${a.type === 'tcp' ? a.port : 0}`;
  const as = (who?: Issued): string[] => ['--connect', address, '--ca', pki.ca.cert, ...(who ? ['--cert', who.cert, '--key', who.key] : [])];
  return { pki, address, as };
}

async function exec(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; out: string; err: string }> {
  const io = fakeIo({ env });
  const status = await runExec(args, io);
  return { status, out: io.out(), err: io.err() };
}

t.test('exec: commands over TLS as an identity; refusals and mistakes with their exit status and a line saying why', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { pki, address, as } = s;
  t.same(await exec([...as(pki.admin), 'query-status']), { status: 0, out: '{"status":"running","singlestep":false,"running":true}\n', err: '' });
  t.same(await exec([...as(pki.collector), 'stop']), { status: 1, out: '', err: "qmp-mux exec: stop: GenericError: The command stop is not allowed on endpoint 'remote' for identity 'collector'\n" });
  t.same(await exec(['--ca', pki.ca.cert, '--cert', pki.admin.cert, '--key', pki.admin.key, 'query-name'], { QMP_SOCKET: address }), { status: 0, out: '{}\n', err: '' }, '$QMP_SOCKET takes tls: too');
  t.same(await exec([...as(pki.admin), '--server-name', 'localhost', 'query-name']), { status: 0, out: '{}\n', err: '' }, 'a name the certificate carries');

  const failures: [string, string[], number, RegExp][] = [
    ['no client certificate', as(), 3, /^qmp-mux exec: tls:127\.0\.0\.1:\d+: the server requires a client certificate \(--cert and --key\) \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\)\n$/],
    ['a certificate the server does not accept', as(pki.rogue), 3, /^qmp-mux exec: tls:127\.0\.0\.1:\d+: the server closed the connection before greeting \(a TLS server does so when it does not accept the client certificate\)\n$/],
    ['no identity for the certificate', as(pki.mallory), 3, /^qmp-mux exec: refused: GenericError: No identity of endpoint 'remote' matches the certificate of CN=mallory\n$/],
    ['a server certificate another CA signed', ['--connect', address, '--ca', pki.rogue.cert, '--cert', pki.admin.cert, '--key', pki.admin.key], 3, /the server's certificate is not signed by a CA this client trusts \(--ca\)/],
    ['a name the server certificate lacks', [...as(pki.admin), '--server-name', 'vm9.example.com'], 3, /Hostname\/IP does not match certificate's altnames: Host: vm9\.example\.com/],
  ];
  for (const [what, args, status, message] of failures) {
    const run = await exec([...args, 'query-status']);
    t.equal(run.status, status, `${what}: exit status ${status}`);
    t.match(run.err, message, `${what}: says why`);
  }

  const usage: [string, string[], string][] = [
    ['certificates for a unix socket', ['--connect', 'unix:/run/x.sock', '--cert', pki.admin.cert, '--key', pki.admin.key], '--cert, --key, --ca and --server-name go with a tls:HOST:PORT address (not unix:/run/x.sock)'],
    ['a certificate without its key', ['--connect', address, '--cert', pki.admin.cert], 'give --cert and --key together'],
    ['a tls address without a port', ['--connect', 'tls:127.0.0.1'], "'tls:127.0.0.1': expected tls:HOST:PORT"],
  ];
  for (const [what, args, message] of usage) t.same(await exec([...args, 'query-status']), { status: 2, out: '', err: `qmp-mux exec: ${message}\ntry 'qmp-mux exec --help'\n` }, what);
  const missing = join(pki.dir, 'missing.pem');
  t.same(await exec(['--connect', address, '--cert', missing, '--key', pki.admin.key, 'query-status']), { status: 2, out: '', err: `qmp-mux exec: --cert (${missing}): cannot read: no such file\n` }, 'a file that is not there: usage, naming the option');
  t.match(EXEC_USAGE, /--cert FILE --key FILE {4}with tls:, the client certificate and its key \(PEM\)\n/);
});

t.test('events and shell over TLS, and the library with the same options', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { pki, address, as } = s;
  const io = fakeIo();
  const events = runEvents([...as(pki.collector), '--count', '1', 'STOP'], io);
  const admin = await QmpClient.connect(address, { tls: { cert: pki.admin.cert, key: pki.admin.key, ca: pki.ca.cert } });
  t.teardown(() => admin.close());
  // The collector subscribes when it is ready, which a busy machine delays: stop and cont until it has heard one.
  await eventually(
    async () => {
      await admin.execute('stop');
      await admin.execute('cont');
      return io.out() !== '';
    },
    'the collector to hear STOP',
    { intervalMs: 20 },
  );
  t.equal(await events, 0);
  t.match(io.out(), /^\{"timestamp":\{"seconds":\d+,"microseconds":\d+\},"event":"STOP"\}\n$/, 'the collector hears STOP');

  const shell = fakeIo({ input: 'query-status\nstop\n' });
  t.equal(await runShell([...as(pki.collector), '--no-history'], shell), 0);
  t.match(shell.out(), /\{"status":"running","singlestep":false,"running":true\}/);
  t.match(shell.out(), /error: GenericError: The command stop is not allowed on endpoint 'remote' for identity 'collector'/);

  await t.rejects(QmpClient.connect('unix:/run/x.sock', { tls: { ca: pki.ca.cert } }), { code: 'QMPMUX_VALUE', message: 'TLS options go with a tls:HOST:PORT address (not unix:/run/x.sock)' });
  await t.rejects(QmpClient.connect(address, { tls: { ca: join(pki.dir, 'nope.pem') } }), { code: 'QMPMUX_TLS', message: `--ca (${join(pki.dir, 'nope.pem')}): cannot read: no such file` });
  const anonymous = await QmpClient.connect(address, { tls: { ca: pki.ca.cert } }).catch((e: unknown) => e);
  t.match(anonymous, { code: 'QMPMUX_CONNECTION', message: /requires a client certificate/ });
});

t.test('the command line runs exec over TLS', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const run = runCli(t, ['exec', ...s.as(s.pki.admin), '__org.qmp-mux_query-clients']);
  t.same(await run.exited, { code: 0, signal: null }, run.stderr());
  t.match(run.stdout(), /"identity":"admin"/);
  t.match(run.stdout(), /"subject":"O=Example,CN=admin"/);
});

t.test('wait-ready and the shell without negotiating (-N) over TLS', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const { pki, address, as } = s;
  const ready = fakeIo();
  t.equal(await runWaitReady([...as(pki.admin), '--timeout', '20000'], ready), 0, ready.err());
  t.match(ready.out(), new RegExp(`^ready: QEMU \\d+\\.\\d+\\.\\d+ .*at ${address.replace(/[.]/g, '\\.')}\\n$`));
  const missing = join(pki.dir, 'missing.pem');
  const unusable = fakeIo();
  t.equal(await runWaitReady(['--connect', address, '--ca', missing, '--timeout', '20000'], unusable), 2, 'a TLS file that cannot be used is not waited on');
  t.equal(unusable.err(), `qmp-mux wait-ready: --ca (${missing}): cannot read: no such file\n`);
  t.match(WAIT_READY_USAGE, /\n {2}--cert FILE --key FILE\n {21}with tls:, the client certificate and its key \(PEM\)\n {2}--ca FILE {10}with tls:, the CA certificates the server's must chain to\n {21}\(default: the system's\)\n/, 'its help, within 80 columns');

  const shell = fakeIo({ input: '{"execute": "qmp_capabilities"}\nquery-status\n' });
  t.equal(await runShell([...as(pki.admin), '-N', '--no-history'], shell), 0, shell.err());
  t.match(shell.out(), new RegExp(`Connected to ${address.replace(/[.]/g, '\\.')}, without negotiating \\(-N\\)`));
  t.match(shell.out(), /\{"status":"running","singlestep":false,"running":true\}/, 'negotiated by hand, then served');
});
