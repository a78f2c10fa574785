import t from 'tap';
import type { PolicyOptions } from '../../../src/config/options.ts';
import { Policy, refusal } from '../../../src/policy/policy.ts';
import { POLICY_PRESETS } from '../../../src/policy/presets.ts';
import { clientObject } from '../../fixtures/json-text.ts';

/** What `policy` says of `name` with the arguments written as JSON text. */
function verdict(policy: Policy, name: string, args?: string): string {
  const why = policy.check(name, args === undefined ? undefined : clientObject(args));
  if (why === undefined) return 'allowed';
  return why.kind === 'action' ? `action ${why.index} ${why.action}: ${why.why}` : why.kind;
}

t.test('names: allow and deny globs, deny wins', async (t) => {
  const p = new Policy({ allow: ['query-*', 'stop'], deny: ['query-secret*'] });
  t.equal(verdict(p, 'query-status'), 'allowed');
  t.equal(verdict(p, 'stop'), 'allowed');
  t.equal(verdict(p, 'cont'), 'command');
  t.equal(verdict(p, 'query-secrets'), 'command');
  t.ok(p.mayAllow('query-status') && !p.mayAllow('query-secrets') && !p.mayAllow('cont'));
  t.equal(verdict(p, 'stop'), 'allowed', 'a second asking gets the same answer (from the cache)');
});

t.test('argument rules: every pattern must match the argument, which must be there', async (t) => {
  const p = new Policy({ allow: [{ command: 'device_add', arguments: { driver: ['virtio-net-pci', 'e1000*'], bus: ['pci.0'] } }], deny: [] });
  {
    const policy = p;
    t.equal(verdict(policy, 'device_add', '{"driver": "virtio-net-pci", "bus": "pci.0", "id": "n1"}'), 'allowed', 'arguments not named are free');
    t.equal(verdict(policy, 'device_add', '{"driver": "e1000e", "bus": "pci.0"}'), 'allowed');
    t.equal(verdict(policy, 'device_add', '{"driver": "vfio-pci", "bus": "pci.0"}'), 'arguments');
    t.equal(verdict(policy, 'device_add', '{"driver": "virtio-net-pci"}'), 'arguments', 'a missing argument matches nothing');
    t.equal(verdict(policy, 'device_add'), 'arguments', 'no arguments at all');
    t.equal(verdict(policy, 'device_del', '{"id": "n1"}'), 'command');
  }
  t.ok(p.mayAllow('device_add') && !p.allowsAlways('device_add'));
});

t.test('argument values: strings as themselves, numbers as QEMU reads them, booleans; never objects, arrays or null', async (t) => {
  const p = new Policy({
    allow: [
      { command: 'n', arguments: { v: ['100'] } },
      { command: 'b', arguments: { v: ['true'] } },
      { command: 'nest', arguments: { 'file.driver': ['file'], 'file.filename': ['/images/*'] } },
      { command: 'any', arguments: { v: ['*'] } },
    ],
    deny: [],
  });
  t.equal(verdict(p, 'n', '{"v": 100}'), 'allowed');
  t.equal(verdict(p, 'n', '{"v": 1E2}'), 'allowed', '1E2 is 100 to QEMU');
  t.equal(verdict(p, 'n', '{"v": "100"}'), 'allowed', 'the string too (QEMU would refuse its type)');
  t.equal(verdict(p, 'n', '{"v": 101}'), 'arguments');
  t.equal(verdict(p, 'b', '{"v": true}'), 'allowed');
  t.equal(verdict(p, 'b', '{"v": false}'), 'arguments');
  t.equal(verdict(p, 'nest', '{"file": {"driver": "file", "filename": "/images/a.qcow2"}}'), 'allowed', 'dotted paths reach into objects');
  t.equal(verdict(p, 'nest', '{"file": "node0"}'), 'arguments', 'a reference where an object was expected matches nothing');
  t.equal(verdict(p, 'nest', '{"file": {"driver": "host_device", "filename": "/images/a"}}'), 'arguments');
  for (const v of ['{}', '[]', 'null', '["x"]', '{"a": "x"}']) t.equal(verdict(p, 'any', `{"v": ${v}}`), 'arguments', `${v} matches not even *`);
  t.equal(verdict(p, 'any', '{"v": ""}'), 'allowed', '* matches the empty string');
});

t.test('deny rules with arguments refuse only what they match; without, whatever the arguments', async (t) => {
  const p = new Policy({ allow: ['*'], deny: [{ command: 'migrate', arguments: { uri: ['exec:*'] } }, 'quit'] });
  t.equal(verdict(p, 'migrate', '{"uri": "exec:cat > /tmp/x"}'), 'arguments');
  t.equal(verdict(p, 'migrate', '{"uri": "tcp:127.0.0.1:4444"}'), 'allowed');
  t.equal(verdict(p, 'quit', '{"x": 1}'), 'command');
  t.ok(p.mayAllow('migrate') && !p.allowsAlways('migrate') && p.allowsAlways('stop') && !p.allowsEverything);
  t.ok(new Policy(POLICY_PRESETS.all).allowsEverything);
});

t.test('transaction: each action is judged as the command of its type, with its data as arguments', async (t) => {
  const p = new Policy({ allow: ['*'], deny: ['block-dirty-bitmap-add', { command: 'drive-backup', arguments: { target: ['/etc/*'] } }] });
  const tx = (actions: string): string => verdict(p, 'transaction', `{"actions": ${actions}}`);
  t.equal(tx('[{"type": "block-dirty-bitmap-add", "data": {"node": "d0", "name": "b0"}}]'), 'action 0 block-dirty-bitmap-add: command');
  t.equal(tx('[{"type": "abort", "data": {}}, {"type": "block-dirty-bitmap-add", "data": {}}]'), 'action 1 block-dirty-bitmap-add: command', 'the first refused action is named');
  t.equal(tx('[{"type": "drive-backup", "data": {"device": "d0", "target": "/etc/passwd", "sync": "full"}}]'), 'action 0 drive-backup: arguments');
  t.equal(tx('[{"type": "drive-backup", "data": {"device": "d0", "target": "/tmp/b", "sync": "full"}}]'), 'allowed');
  t.equal(tx('[{"type": "block-dirty-bitmap-clear", "data": {"node": "d0", "name": "b0"}}, {"type": "abort"}]'), 'allowed', 'data may be left out (QEMU says so)');
  t.equal(tx('[]'), 'allowed', 'no actions, nothing to refuse');
  for (const bad of ['{}', '[1]', '[{"data": {}}]', '[{"type": 5, "data": {}}]', '[{"type": "abort", "data": []}]']) {
    t.equal(tx(bad), 'actions', `${bad}: cannot be checked, so refused`);
  }
  t.equal(verdict(p, 'transaction'), 'actions', 'no arguments');
  const closed = new Policy({ allow: ['query-*'], deny: [] });
  t.equal(verdict(closed, 'transaction', '{"actions": []}'), 'command', 'transaction itself must be allowed');
  const open = new Policy(POLICY_PRESETS.all);
  t.equal(verdict(open, 'transaction', '{"actions": 5}'), 'allowed', 'an open policy leaves QEMU to judge');
  const someActions = new Policy({ allow: ['transaction', 'block-dirty-bitmap-*'], deny: [] });
  t.equal(verdict(someActions, 'transaction', '{"actions": [{"type": "block-dirty-bitmap-add", "data": {}}]}'), 'allowed', 'an allow list must name the actions');
  t.equal(verdict(someActions, 'transaction', '{"actions": [{"type": "blockdev-snapshot-sync", "data": {}}]}'), 'action 0 blockdev-snapshot-sync: command');
});

t.test('read-only preset: qom-get only at absolute paths under /machine and /chardevs', async (t) => {
  const p = new Policy(POLICY_PRESETS['read-only']);
  const get = (path: string): string => verdict(p, 'qom-get', JSON.stringify({ path, property: 'data' }));
  for (const path of ['/machine', '/machine/peripheral/net0', '/machine/unattached/device[0]', '/chardevs', '/chardevs/serial0']) t.equal(get(path), 'allowed', path);
  // The spellings QEMU 7.2 resolves to a secret object (test/integration/policy-secrets.test.ts tries each on QEMU).
  for (const path of ['/objects/sec0', 'sec0', '/objects//sec0', '/objects/sec0/', '//objects/sec0', 'objects/sec0', '//machine/../objects/sec0', 'machine/x', '/', '', '/machines/x', '/chardevsx']) {
    t.equal(get(path), 'arguments', JSON.stringify(path));
  }
  t.equal(verdict(p, 'qom-get', '{"property": "data"}'), 'arguments', 'no path');
  t.equal(verdict(p, 'qom-list', '{"path": "/objects"}'), 'allowed', 'names and types are not values');
  t.equal(verdict(p, 'human-monitor-command', '{"command-line": "info status"}'), 'command');
  t.equal(verdict(p, 'transaction', '{"actions": []}'), 'command');
  t.ok(p.mayAllow('qom-get'), 'qom-get is still listed by query-commands');
});

t.test('refusal texts name the command, the endpoint, and the action', async (t) => {
  t.equal(refusal('quit', 'ro', { kind: 'command' }), "The command quit is not allowed on endpoint 'ro'");
  t.equal(refusal('qom-get', 'ro', { kind: 'arguments' }), "The command qom-get is not allowed on endpoint 'ro' with these arguments");
  t.equal(
    refusal('transaction', 'ops', { kind: 'action', index: 2, action: 'drive-backup', why: 'command' }),
    "The command transaction is not allowed on endpoint 'ops': its action drive-backup (actions[2]) is not allowed",
  );
  t.equal(
    refusal('transaction', 'ops', { kind: 'action', index: 0, action: 'drive-backup', why: 'arguments' }),
    "The command transaction is not allowed on endpoint 'ops': its action drive-backup (actions[0]) is not allowed with these arguments",
  );
  t.equal(refusal('transaction', 'ops', { kind: 'actions' }), "The command transaction is not allowed on endpoint 'ops': its actions must be a list of objects with a 'type', each checked as the command of that name");
});

t.test('many names: the plan cache is bounded and answers stay right past it', async (t) => {
  const options: PolicyOptions = { allow: ['x-*'], deny: [] };
  const p = new Policy(options);
  const names = Array.from({ length: 1500 }, (_, i) => `x-${i}`);
  t.same(names.filter((n) => !p.mayAllow(n)), []);
  t.equal(verdict(p, 'x-1499'), 'allowed');
  t.equal(verdict(p, 'y-1499'), 'command');
});
