import t from 'tap';
import { parseArgs } from '../../../src/cli/args.ts';
import { readConfig } from '../../../src/config/file.ts';
import { DEFAULTS, READ_ONLY_LIMITS } from '../../../src/config/options.ts';
import { asConfigFile } from '../../../src/config/print.ts';
import { resolveOptions } from '../../../src/config/resolve.ts';
import { endpointWarnings } from '../../../src/downstream/endpoint-warnings.ts';
import { remoteProblem } from '../../../src/downstream/endpoint-options.ts';

const tls = { cert: '/etc/qmp-mux/tls/server-cert.pem', key: '/etc/qmp-mux/tls/server-key.pem', ca: '/etc/qmp-mux/tls/ca-cert.pem' };
const remote = (extra: object = {}) => ({ name: 'remote', listen: 'tcp:0.0.0.0:4444', allowRemote: true, tls, ...extra });
const endpointOf = (e: object) => readConfig({ endpoints: [e] }).endpoints![0]!;

t.test("an endpoint's tls: client certificates and TLS 1.2 by default, every key named when wrong", async (t) => {
  t.same(endpointOf(remote()).tls, { ...tls, verifyPeer: true, minVersion: 'TLSv1.2', handshakeTimeoutMs: 10000 });
  t.same(endpointOf(remote({ tls: { cert: 'c', key: 'k', verifyPeer: false, minVersion: 'TLSv1.3', handshakeTimeoutMs: 500 } })).tls, {
    cert: 'c',
    key: 'k',
    ca: undefined,
    verifyPeer: false,
    minVersion: 'TLSv1.3',
    handshakeTimeoutMs: 500,
  });
  const mistakes: [object, RegExp][] = [
    [remote({ tls: { cert: 'c', key: 'k' } }), /^config\.endpoints\[0\]\.tls\.ca: give the CA certificates client certificates must chain to \(or set verifyPeer to false/],
    [remote({ tls: { cert: 'c', key: 'k', ca: 'a', verifyPeer: false } }), /^config\.endpoints\[0\]\.tls\.ca: only applies with verifyPeer$/],
    [remote({ tls: { key: 'k', ca: 'a' } }), /^config\.endpoints\[0\]\.tls\.cert: expected a string, got undefined/],
    [remote({ tls: { ...tls, minVersion: 'TLSv1.1' } }), /^config\.endpoints\[0\]\.tls\.minVersion: expected one of 'TLSv1\.2', 'TLSv1\.3', got string "TLSv1\.1"$/],
    [remote({ tls: { ...tls, handshakeTimeoutMs: 0 } }), /^config\.endpoints\[0\]\.tls\.handshakeTimeoutMs: must be between 100 and 60000, got 0$/],
    [remote({ tls: { ...tls, verifypeer: true } }), /^config\.endpoints\[0\]\.tls\.verifypeer: unknown key \(did you mean 'verifyPeer'\?\)$/],
    [{ name: 'u', listen: 'unix:/run/u.sock', tls }, /^config\.endpoints\[0\]\.tls: only applies to tcp endpoints$/],
    [remote({ identities: {} }), /^config\.endpoints\[0\]\.identities: expected an array of identities/],
    [remote({ identities: [{ policy: 'read-only' }] }), /^config\.endpoints\[0\]\.identities\[0\]\.match: expected an array of strings, got undefined/],
    [remote({ identities: [{ match: [] }] }), /^config\.endpoints\[0\]\.identities\[0\]\.match: must not be empty$/],
    [remote({ identities: [{ match: 'collector' }] }), /^config\.endpoints\[0\]\.identities\[0\]\.match: 'collector': expected ATTRIBUTE=GLOB/],
    [remote({ identities: [{ match: ['CN=a', 'SAN:x'] }] }), /^config\.endpoints\[0\]\.identities\[0\]\.match\[1\]: 'SAN:x': a subject alternative name is DNS:, email:, URI: or IP:/],
    [remote({ identities: [{ match: 'CN=a' }, { match: 'CN=a', policy: 'read-only' }] }), /^config\.endpoints\[0\]\.identities\[1\]\.name: 'CN=a' is used by another identity of this endpoint$/],
    [remote({ identities: [{ match: 'CN=a', policy: 'readonly' }] }), /^config\.endpoints\[0\]\.identities\[0\]\.policy: expected one of 'all', 'read-only'/],
    [remote({ identities: [{ match: 'CN=a', limits: { maxClients: 2 } }] }), /^config\.endpoints\[0\]\.identities\[0\]\.limits\.maxClients: unknown key/],
    [remote({ maxClients: 8, identities: [{ match: 'CN=a', maxClients: 9 }] }), /^config\.endpoints\[0\]\.identities\[0\]\.maxClients: must be between 1 and 8, got 9$/],
    [remote({ identities: [{ match: 'CN=a', role: 'x' }] }), /^config\.endpoints\[0\]\.identities\[0\]\.role: unknown key/],
    [{ name: 'p', listen: 'tcp:127.0.0.1:0', identities: [{ match: 'CN=a' }] }, /^config\.endpoints\[0\]\.identities: need tls with verifyPeer: identities are told apart by their client certificates$/],
    [remote({ tls: { cert: 'c', key: 'k', verifyPeer: false }, identities: [{ match: 'CN=a' }] }), /^config\.endpoints\[0\]\.identities: need tls with verifyPeer/],
  ];
  for (const [endpoint, message] of mistakes) t.throws(() => readConfig({ endpoints: [endpoint] }), { code: 'QMPMUX_CONFIG', message }, String(message));
});

t.test('an identity has what it says, and its endpoint\'s for the rest; its limits follow its own policy\'s preset', async (t) => {
  const e = endpointOf(
    remote({
      policy: { preset: 'all', deny: ['quit'] },
      events: ['STOP', 'RESUME'],
      maxClients: 10,
      limits: { maxOutputBuffer: 1048576 },
      identities: [
        { name: 'admin', match: 'CN=admin' },
        { match: ['O=Example', 'CN=collector*'], policy: 'read-only', events: ['STOP'], maxClients: 2, limits: { maxPendingRequests: 8 } },
      ],
    }),
  );
  const [admin, collector] = e.identities;
  t.same(admin, { name: 'admin', match: ['CN=admin'], policy: e.policy, events: ['STOP', 'RESUME'], limits: e.limits, maxClients: 10 });
  t.not(admin!.policy, e.policy, 'a copy, not the endpoint\'s own object');
  t.equal(collector!.name, 'O=Example,CN=collector*', 'named after its conditions when it has no name');
  t.same(collector!.events, ['STOP']);
  t.equal(collector!.maxClients, 2);
  t.same(collector!.limits, { ...DEFAULTS.limits, ...READ_ONLY_LIMITS, maxOutputBuffer: 1048576, maxPendingRequests: 8 }, 'own, then the endpoint\'s own, then its read-only preset\'s, then the defaults');
  const readOnlyEndpoint = endpointOf(remote({ policy: 'read-only', identities: [{ match: 'CN=admin', policy: 'all' }, { match: 'CN=other' }] }));
  t.same(readOnlyEndpoint.identities[0]!.limits, DEFAULTS.limits, "an admin on a read-only endpoint is not held to the read-only preset's limits");
  t.same(readOnlyEndpoint.identities[1]!.limits, readOnlyEndpoint.limits, 'one without a policy has the endpoint\'s');
});

t.test('the upstream and the metrics listener take tls too', async (t) => {
  const upstream = readConfig({ upstream: { connect: 'tcp:10.0.0.5:4444', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem', serverName: 'vm1.example.com' } } }).upstream;
  t.same(upstream, { mode: 'connect', address: { type: 'tcp', host: '10.0.0.5', port: 4444 }, takeover: false, tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem', serverName: 'vm1.example.com', minVersion: 'TLSv1.2' } });
  t.same(readConfig({ upstream: { connect: 'tcp:h:1', tls: {} } }).upstream, { mode: 'connect', address: { type: 'tcp', host: 'h', port: 1 }, takeover: false, tls: { cert: undefined, key: undefined, ca: undefined, serverName: undefined, minVersion: 'TLSv1.2' } }, 'no key needed: Node\'s roots, no client certificate');
  t.throws(() => readConfig({ upstream: { connect: 'unix:/q.sock', tls: {} } }), { message: /^config\.upstream\.tls: only applies to a tcp upstream/ });
  t.throws(() => readConfig({ upstream: { listen: 'tcp:127.0.0.1:1', tls: {} } }), { message: /^config\.upstream\.tls: only applies with 'connect'$/ });
  t.throws(() => readConfig({ upstream: { connect: 'tcp:h:1', tls: { cert: 'c' } } }), { message: /^config\.upstream\.tls\.key: give cert and key together$/ });
  t.throws(() => readConfig({ upstream: { connect: 'tcp:h:1', tls: { key: 'k', servername: 'x' } } }), { message: /^config\.upstream\.tls\.servername: unknown key \(did you mean 'serverName'\?\)$/ });
  const metrics = readConfig({ metrics: { listen: 'tcp:0.0.0.0:9464', allowRemote: true, tls } }).metrics;
  t.same(metrics?.tls, { ...tls, verifyPeer: true, minVersion: 'TLSv1.2', handshakeTimeoutMs: 10000 });
  const flagged = resolveOptions(parseArgs(['--metrics', 'tcp:127.0.0.1:0']), readConfig({ metrics: { listen: 'tcp:127.0.0.1:9464', tls } }));
  t.same(flagged.metrics?.tls, metrics?.tls, '--metrics keeps the file\'s tls');
});

t.test('--print-config shows tls and identities, and reads back to the same options', async (t) => {
  const file = readConfig({
    upstream: { connect: 'tcp:127.0.0.1:4444', tls: { ca: 'qemu-ca.pem', cert: 'c.pem', key: 'k.pem' } },
    endpoints: [remote({ identities: [{ name: 'admin', match: 'CN=admin' }, { name: 'collector', match: ['CN=collector', 'O=Example'], policy: 'read-only', events: ['STOP'] }] }), { name: 'local', listen: 'unix:/run/l.sock' }],
    metrics: { listen: 'tcp:127.0.0.1:9464', tls: { cert: 'c', key: 'k', verifyPeer: false } },
  });
  const options = resolveOptions(parseArgs([]), file);
  const printed = asConfigFile(options);
  t.same(resolveOptions(parseArgs([]), readConfig(JSON.parse(JSON.stringify(printed)))), options);
  t.match(printed, {
    upstream: { tls: { ca: 'qemu-ca.pem', cert: 'c.pem', key: 'k.pem', minVersion: 'TLSv1.2' } },
    endpoints: [{ tls: { ...tls, verifyPeer: true }, identities: [{ name: 'admin', match: ['CN=admin'] }, { name: 'collector', events: ['STOP'] }] }, { name: 'local' }],
    metrics: { tls: { cert: 'c', key: 'k', verifyPeer: false } },
  });
  t.notOk('identities' in (printed.endpoints as object[])[1]!, 'an endpoint without identities shows none');
  t.notOk('ca' in ((printed.metrics as { tls: object }).tls), 'a listener without a CA shows none');
});

t.test('beyond loopback: refused without allowRemote, saying how; a warning with it unless clients present certificates', async (t) => {
  const plain = endpointOf({ name: 'p', listen: 'tcp:0.0.0.0:4445' });
  t.equal(remoteProblem(plain, plain.address), 'not a loopback address, and QMP authenticates no one: give the endpoint tls with client certificates and set allowRemote (allowRemote alone exposes it to anyone who can reach it)');
  const verified = endpointOf(remote({ allowRemote: false }));
  t.equal(remoteProblem(verified, verified.address), 'not a loopback address; set allowRemote to expose it (its clients must present a certificate)');
  t.equal(remoteProblem(endpointOf(remote()), verified.address), undefined);
  const unverified = endpointOf(remote({ tls: { cert: 'c', key: 'k', verifyPeer: false }, allowRemote: false }));
  t.match(remoteProblem(unverified, unverified.address), /^not a loopback address, and TLS without client certificates \(verifyPeer false\) authenticates no one/);
  const warnings = endpointWarnings([
    endpointOf({ name: 'open', listen: 'tcp:0.0.0.0:4445', allowRemote: true }),
    endpointOf(remote()),
    endpointOf(remote({ name: 'anon', tls: { cert: 'c', key: 'k', verifyPeer: false } })),
    endpointOf({ name: 'local', listen: 'tcp:127.0.0.1:4445' }),
    endpointOf(remote({ name: 'hmp', identities: [{ name: 'ops', match: 'CN=ops', policy: { preset: 'all', deny: ['quit'] } }] })),
  ]);
  t.same(warnings, [
    { endpoint: 'open', message: 'listens beyond loopback with plaintext QMP: anyone who can reach it controls the VM; give it tls with client certificates (README, Remote access)' },
    { endpoint: 'anon', message: 'listens beyond loopback with TLS without client certificates (verifyPeer is false): anyone who can reach it controls the VM; give it tls with client certificates (README, Remote access)' },
    { endpoint: 'hmp', message: "identity 'ops': policy refuses some commands but allows human-monitor-command, which runs any of them through HMP; deny human-monitor-command too" },
  ]);
});
