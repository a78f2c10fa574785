import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readConfig } from '../../src/config/file.ts';
import { defaultEndpoint, type PolicyOptions } from '../../src/config/options.ts';
import { policyWarnings } from '../../src/policy/warnings.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * Policies against a real QEMU: secrets through the read-only preset,
 * transaction actions, argument rules from a configuration file, and what
 * human-monitor-command does to a deny list.
 */

const SECRET = 'TOPSECRET-3f9c';
const KEY_PASSWORD = 'KEYPASSWORD-77ad';
const PSK = 'a3c2b1f0e9d8c7b6a5f4e3d2c1b0a9f8';

/** A throwaway CA certificate (EC P-256, valid to 2126): enough for QEMU to load x509 credentials. */
const CA_CERT = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIULpdkm5bQHwh6cvgqQ2YBOZrQRn0wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPcW1wLW11eC10ZXN0LWNhMCAXDTI2MTIwMjAzMTAxOVoYDzIx
MjYxMTA4MDMxMDE5WjAaMRgwFgYDVQQDDA9xbXAtbXV4LXRlc3QtY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARAesf77nb45mC/MglrOaugt2p6E+A1SgCF2JjM
BuCJxVl/5W0EKxa92VD4+/bZyUCUC4BoFYX5hvU5fnxn5qdBo1MwUTAdBgNVHQ4E
FgQUvIGpCY0k/4XEBPa4P1HjdbmNuokwHwYDVR0jBBgwFoAUvIGpCY0k/4XEBPa4
P1HjdbmNuokwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA+ama
x4lEPrP5tIIPf23h/ympbSHzkQPzuDX0GQLKfr0CIFabF8cvPkFeSfetczhIsKYB
IymI9rmUe40hHqOMeHo2
-----END CERTIFICATE-----
`;

/** An endpoint's policy as a configuration file gives it. */
function policyFromConfig(policy: unknown): PolicyOptions {
  return readConfig({ endpoints: [{ name: 'e', listen: 'unix:/x', policy }] }).endpoints![0]!.policy;
}

/** QEMU's arguments for a secret, x509 credentials whose key password is a secret, PSK credentials, a chardev and a disk node. */
function secretArgs(dir: string): string[] {
  const x509 = join(dir, 'x509');
  const psk = join(dir, 'psk');
  mkdirSync(x509);
  mkdirSync(psk);
  writeFileSync(join(x509, 'ca-cert.pem'), CA_CERT);
  writeFileSync(join(psk, 'keys.psk'), `qemu:${PSK}\n`);
  return [
    '-object', `secret,id=sec0,data=${SECRET}`,
    '-object', `secret,id=keypass,data=${KEY_PASSWORD}`,
    '-object', `tls-creds-x509,id=tls0,dir=${x509},endpoint=client,passwordid=keypass,sanity-check=off`,
    '-object', `tls-creds-psk,id=psk0,dir=${psk},endpoint=client,username=qemu`,
    '-chardev', 'null,id=c0',
    '-blockdev', 'driver=null-co,node-name=d0',
  ];
}

const leaks = (text: string): boolean => text.includes(SECRET) || text.includes(KEY_PASSWORD) || text.includes(PSK);

t.test('read-only: no spelling of a secret object path reads it; /machine and /chardevs still read; no query returns a secret', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const qemu = await startQemu(t, { args: secretArgs(dir) });
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ policy: policyFromConfig('read-only') }, {}] });
  const ro = await TestClient.connect(mux.endpoints[0]!.address);
  await ro.negotiate();
  const all = await TestClient.connect(mux.endpoints[1]!.address);
  await all.negotiate();

  // Every spelling QEMU 7.2 resolves to the secret: checked on the open endpoint, so each is a real way in.
  const spellings = ['/objects/sec0', 'sec0', '/objects//sec0', '/objects/sec0/', '//objects/sec0', 'objects/sec0', 'objects//sec0', '/objects/sec0//'];
  for (const path of spellings) {
    t.equal(await all.execute('qom-get', { path, property: 'data' }), `{"return": "${SECRET}"}`, `QEMU reads the secret at ${path}`);
    t.equal(
      await ro.execute('qom-get', { path, property: 'data' }),
      `{"error": {"class": "GenericError", "desc": "The command qom-get is not allowed on endpoint 'ep0' with these arguments"}}`,
      `read-only refuses ${path}`,
    );
  }
  t.equal(await all.execute('qom-get', { path: '/objects/tls0', property: 'passwordid' }), '{"return": "keypass"}', "x509 credentials name their key's password secret");
  t.equal(await all.execute('qom-get', { path: '/objects/keypass', property: 'data' }), `{"return": "${KEY_PASSWORD}"}`, 'which QEMU reads out');
  for (const [path, property] of [['keypass', 'data'], ['/objects/tls0', 'passwordid'], ['/objects/psk0', 'dir'], ['psk0', 'username']] as const) {
    t.match(await ro.execute('qom-get', { path, property }), /not allowed on endpoint 'ep0' with these arguments/, `${path} ${property}`);
  }
  t.equal(await ro.execute('qom-get', { path: '/machine', property: 'type' }), '{"return": "none-machine"}', 'the machine reads');
  t.equal(await ro.execute('qom-get', { path: '/chardevs/c0', property: 'type' }), '{"return": "chardev-null"}', 'a chardev reads');
  t.match(await ro.execute('qom-list', { path: '/objects' }), /"name": "sec0", "type": "child<secret>"/, 'names and types are listed');

  const list = JSON.parse(await ro.execute('query-commands')) as { return: { name: string }[] };
  const queries = list.return.map((c) => c.name).filter((n) => /^(x-)?query-/.test(n));
  t.ok(queries.length > 60, `${queries.length} query commands allowed`);
  t.ok(list.return.some((c) => c.name === 'qom-get'), 'qom-get is listed: it is allowed with some arguments');
  const leaking: string[] = [];
  for (const name of queries) if (leaks(await ro.execute(name))) leaking.push(name);
  t.same(leaking, [], 'no query command, run without arguments, returns a secret value');
  t.match(await ro.execute('query-named-block-nodes'), /"node-name": "d0"/, 'the sweep did reach QEMU');
  t.notOk(ro.lines.some(leaks), 'nothing read on the read-only endpoint holds a secret');
});

t.test('read-only refuses qom-list-properties: a type name alone can crash QEMU 7.2 with it', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ policy: policyFromConfig('read-only') }] });
  const ro = await TestClient.connect(mux.path);
  await ro.negotiate();
  t.equal(
    await ro.execute('qom-list-properties', { typename: 'colo-compare' }, 1),
    `{"id": 1, "error": {"class": "GenericError", "desc": "The command qom-list-properties is not allowed on endpoint 'ep0'"}}`,
  );
  t.match(await ro.execute('query-status'), /"running": true/, 'QEMU is still there');

  // What the refusal spares the VM, on a QEMU of its own, directly.
  const direct = await startQemu(t);
  const c = await TestClient.connect(direct.monitors[0]!);
  const greeting = await c.negotiate();
  if (!/"minor": 2, "major": 7\}/.test(greeting)) {
    t.comment(`not QEMU 7.2 (${greeting}): what the README says of 7.2 is not checked here`);
    return;
  }
  c.send('{"execute":"qom-list-properties","arguments":{"typename":"colo-compare"}}');
  t.same(await c.rest(), [], 'no answer: QEMU is gone');
  t.not((await direct.exited).signal, null, 'killed by a signal (an assertion that failed)');
});

t.test('transaction: an action the policy refuses refuses the whole transaction, and QEMU never sees it', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { args: ['-blockdev', 'driver=null-co,node-name=d0'] });
  const noBitmaps = policyFromConfig({ allow: ['*'], deny: ['block-dirty-bitmap-add', 'human-monitor-command'] });
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ policy: noBitmaps }, {}] });
  const denied = await TestClient.connect(mux.endpoints[0]!.address);
  await denied.negotiate();
  const all = await TestClient.connect(mux.endpoints[1]!.address);
  await all.negotiate();
  const bitmaps = async (): Promise<string> => {
    const nodes = JSON.parse(await all.execute('query-named-block-nodes')) as { return: { 'node-name': string; 'dirty-bitmaps'?: { name: string }[] }[] };
    return (nodes.return.find((n) => n['node-name'] === 'd0')!['dirty-bitmaps'] ?? []).map((b) => b.name).join(',');
  };

  t.match(await denied.execute('block-dirty-bitmap-add', { node: 'd0', name: 'direct' }), /"desc": "The command block-dirty-bitmap-add is not allowed on endpoint 'ep0'"/);
  const actions = [
    { type: 'block-dirty-bitmap-clear', data: { node: 'd0', name: 'none' } },
    { type: 'block-dirty-bitmap-add', data: { node: 'd0', name: 'wrapped' } },
  ];
  t.equal(
    await denied.execute('transaction', { actions }, 7),
    `{"id": 7, "error": {"class": "GenericError", "desc": "The command transaction is not allowed on endpoint 'ep0': its action block-dirty-bitmap-add (actions[1]) is not allowed"}}`,
  );
  t.match(await denied.execute('transaction', { actions: [actions[1]] }), /its action block-dirty-bitmap-add \(actions\[0\]\) is not allowed/, 'alone too');
  t.equal(await bitmaps(), '', 'no bitmap was added');
  t.equal(await all.execute('transaction', { actions: [actions[1]] }), '{"return": {}}', 'the same transaction runs where the policy allows it');
  t.equal(await bitmaps(), 'wrapped', 'so the refusal is what kept it out');
  t.match(await denied.execute('transaction', { actions: [{ type: 'block-dirty-bitmap-remove', data: { node: 'd0', name: 'wrapped' } }] }), /^\{"return": \{\}\}$/, 'allowed actions run');
  t.equal(await bitmaps(), '');
  t.match(mux.logs.find((l) => l.includes('command=transaction')), /WARN  refused a command endpoint=ep0 client=local#\d+ command=transaction action=block-dirty-bitmap-add why=action/);
});

t.test('argument rules from a configuration file: object-add of some types only', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const policy = policyFromConfig({ allow: ['query-*', { command: 'object-add', arguments: { 'qom-type': 'iothread' } }] });
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ policy }] });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  t.equal(await c.execute('object-add', { 'qom-type': 'iothread', id: 'io0' }), '{"return": {}}', 'the type allowed is created');
  t.match(await c.execute('object-add', { 'qom-type': 'secret', id: 's1', file: '/etc/hostname' }), /"desc": "The command object-add is not allowed on endpoint 'ep0' with these arguments"/, 'a secret reading a host file is not');
  t.match(await c.execute('query-iothreads'), /"id": "io0"/);
  t.match(await c.execute('qom-list', { path: '/objects' }), /not allowed/, 'commands not named stay refused');
});

t.test('human-monitor-command runs what a deny list refuses by name: such a policy is warned about', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t);
  const leaky = policyFromConfig({ allow: ['*'], deny: ['stop'] });
  const tight = policyFromConfig({ allow: ['*'], deny: ['stop', 'human-monitor-command'] });
  t.same(
    policyWarnings([{ ...defaultEndpoint('leaky', { type: 'unix', path: '/x' }), policy: leaky }, { ...defaultEndpoint('tight', { type: 'unix', path: '/y' }), policy: tight }]).map((w) => w.endpoint),
    ['leaky'],
  );
  const mux = await startMux(t, qemu.monitors[0]!, { endpoints: [{ policy: leaky }, { policy: tight }] });
  const a = await TestClient.connect(mux.endpoints[0]!.address);
  await a.negotiate();
  const b = await TestClient.connect(mux.endpoints[1]!.address);
  await b.negotiate();
  t.match(await a.execute('stop'), /not allowed on endpoint 'ep0'/);
  t.match(await b.execute('human-monitor-command', { 'command-line': 'stop' }), /The command human-monitor-command is not allowed on endpoint 'ep1'/);
  t.match(await a.execute('query-status'), /"running": true/);
  t.equal(await a.execute('human-monitor-command', { 'command-line': 'stop' }), '{"return": ""}', 'HMP runs the denied command');
  t.match(await a.execute('query-status'), /"running": false/, 'and QEMU stopped');
});
