import t from 'tap';
import { parseArgs } from '../../../src/cli/args.ts';
import { readConfig } from '../../../src/config/file.ts';
import { asConfigFile } from '../../../src/config/print.ts';
import { resolveOptions } from '../../../src/config/resolve.ts';
import { POLICY_PRESETS } from '../../../src/policy/presets.ts';

/** Policy rules with argument patterns in a configuration file, and in what --print-config shows. */

const endpoint = (policy: unknown): unknown => ({ endpoints: [{ name: 'a', listen: 'unix:/a', policy }] });
const policyOf = (policy: unknown) => readConfig(endpoint(policy)).endpoints![0]!.policy;

t.test('rules: command globs and {command, arguments}; one pattern or a list', async (t) => {
  const policy = policyOf({
    allow: ['query-*', { command: 'device_add', arguments: { driver: 'virtio-*', 'bus': ['pci.0', 'pcie.*'], $comment: 'why' } }],
    deny: [{ command: 'migrate', arguments: { uri: ['exec:*'] } }],
  });
  t.same(policy, {
    allow: ['query-*', { command: 'device_add', arguments: { driver: ['virtio-*'], bus: ['pci.0', 'pcie.*'] } }],
    deny: [{ command: 'migrate', arguments: { uri: ['exec:*'] } }],
  });
  t.same(policyOf({ preset: 'read-only', deny: ['query-qmp-schema'] }), { allow: POLICY_PRESETS['read-only'].allow, deny: ['human-monitor-command', 'query-qmp-schema'] });
});

t.test('mistakes in rules name the rule and say what is wrong', async (t) => {
  const mistakes: [unknown, RegExp][] = [
    [{ allow: 'query-*' }, /^config\.endpoints\[0\]\.policy\.allow: expected an array of rules: command globs, or \{"command": GLOB, "arguments": \{\.\.\.\}\}$/],
    [{ allow: ['query-?'] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]: 'query-\?': command names are letters, digits, \. _ - \(and \* in patterns\)$/],
    [{ allow: [5] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]: expected an object, got number 5$/],
    [{ allow: ['x', { command: 'qom get', arguments: { path: '/' } }] }, /^config\.endpoints\[0\]\.policy\.allow\[1\]\.command: 'qom get': command names/],
    [{ allow: [{ arguments: { path: '/' } }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.command: expected a string, got undefined/],
    [{ allow: [{ command: 'qom-get', args: {} }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.args: unknown key/],
    [{ allow: [{ command: 'qom-get' }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments: expected an object of argument patterns/],
    [{ allow: [{ command: 'qom-get', arguments: ['path'] }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments: expected an object/],
    [{ allow: [{ command: 'qom-get', arguments: {} }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments: give at least one argument pattern \(a rule on the name alone is the string\)$/],
    [{ allow: [{ command: 'qom-get', arguments: { 'a..b': 'x' } }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments: 'a\.\.b': argument names are letters, digits, _ -, with \. between nested names$/],
    [{ allow: [{ command: 'qom-get', arguments: { path: [] } }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments\.path: must not be empty$/],
    [{ allow: [{ command: 'qom-get', arguments: { path: 3 } }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]\.arguments\.path: expected an array of strings, got number 3$/],
    [{ allow: ['*'], deny: [{ command: 'x', arguments: { y: [''] } }] }, /^config\.endpoints\[0\]\.policy\.deny\[0\]\.arguments\.y\[0\]: must not be empty$/],
  ];
  for (const [policy, message] of mistakes) t.throws(() => policyOf(policy), { code: 'QMPMUX_CONFIG', message }, JSON.stringify(policy));
});

t.test('--print-config shows every rule, the presets spelled out, and reads back to the same options', async (t) => {
  const file = readConfig({
    endpoints: [
      { name: 'ro', listen: 'unix:/ro.sock', policy: 'read-only' },
      { name: 'ops', listen: 'unix:/ops.sock', policy: { allow: ['*'], deny: ['human-monitor-command', { command: 'migrate', arguments: { uri: 'exec:*' } }] } },
    ],
  });
  const options = resolveOptions(parseArgs([]), file);
  const printed = JSON.parse(JSON.stringify(asConfigFile(options))) as { endpoints: { policy: { allow: unknown[]; deny: unknown[] } }[] };
  t.same(printed.endpoints[0]!.policy.allow, [
    'query-*',
    'x-query-*',
    { command: 'qom-get', arguments: { path: ['/machine', '/machine/*', '/chardevs', '/chardevs/*'] } },
    'qom-list',
    'qom-list-types',
    'device-list-properties',
    '__org.qmp-mux_query-*',
    '__org.qmp-mux_set-events',
  ], "the read-only preset's rule for qom-get is shown as a rule");
  t.same(printed.endpoints[1]!.policy.deny, ['human-monitor-command', { command: 'migrate', arguments: { uri: ['exec:*'] } }]);
  t.same(resolveOptions(parseArgs([]), readConfig(printed)), options);
  options.endpoints[0]!.policy.allow.push('changed');
  t.notOk(POLICY_PRESETS['read-only'].allow.includes('changed'), "an endpoint's policy is its own copy");
});
