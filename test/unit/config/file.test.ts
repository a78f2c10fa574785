import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseArgs } from '../../../src/cli/args.ts';
import { readConfig } from '../../../src/config/file.ts';
import { DEFAULTS } from '../../../src/config/options.ts';
import { asConfigFile } from '../../../src/config/print.ts';
import { resolveOptions } from '../../../src/config/resolve.ts';

const example = JSON.parse(readFileSync(new URL('../../../config/example.json', import.meta.url), 'utf8')) as unknown;

/** Each kind of mistake, and the message that must name the field and the reason. */
const mistakes: [string, unknown, RegExp][] = [
  ['not an object', [], /^config: expected an object, got an array$/],
  ['unknown top-level key', { windwo: 7 }, /^config\.windwo: unknown key; known keys: upstream, endpoints/],
  ['unknown key, near miss', { Window: 7 }, /^config\.Window: unknown key \(did you mean 'window'\?\)$/],
  ['unknown nested key', { log: { colour: true } }, /^config\.log\.colour: unknown key/],
  ['wrong type', { window: '7' }, /^config\.window: expected an integer, got string "7"$/],
  ['out of range', { window: 9 }, /^config\.window: must be between 1 and 8, got 9$/],
  ['not an integer', { timeouts: { shutdownMs: 1.5 } }, /^config\.timeouts\.shutdownMs: expected an integer/],
  ['bad address', { upstream: { connect: 'qemu.sock' } }, /^config\.upstream\.connect: 'qemu\.sock': expected unix:PATH or tcp:HOST:PORT$/],
  ['bad port', { upstream: { connect: 'tcp:localhost:70000' } }, /^config\.upstream\.connect: .*port must be 0-65535/],
  ['no upstream mode', { upstream: {} }, /^config\.upstream: give exactly one of 'connect', 'listen', 'spawn' \(got none\)$/],
  ['two upstream modes', { upstream: { connect: 'unix:/a', listen: 'unix:/b' } }, /got connect and listen/],
  ['option of another mode', { upstream: { listen: 'unix:/a', takeover: true } }, /^config\.upstream\.takeover: only applies with 'connect'$/],
  ['takeover over tcp', { upstream: { connect: 'tcp:127.0.0.1:4444', takeover: true } }, /^config\.upstream\.takeover: needs a unix socket upstream$/],
  ['empty spawn command', { upstream: { spawn: [] } }, /^config\.upstream\.spawn: must not be empty$/],
  ['bad stop policy', { upstream: { spawn: ['qemu'], onStop: 'kill' } }, /^config\.upstream\.onStop: expected one of 'quit', 'powerdown', 'leave', got string "kill"$/],
  ['no endpoints', { endpoints: [] }, /^config\.endpoints: must list at least one endpoint$/],
  ['endpoint without listen', { endpoints: [{ name: 'a' }] }, /^config\.endpoints\[0\]\.listen: expected a string, got undefined/],
  ['bad endpoint name', { endpoints: [{ name: 'a b', listen: 'unix:/a' }] }, /^config\.endpoints\[0\]\.name: use letters, digits/],
  ['duplicate endpoint name', { endpoints: [{ name: 'a', listen: 'unix:/a' }, { name: 'a', listen: 'unix:/b' }] }, /^config\.endpoints\[1\]\.name: 'a' is used by another endpoint$/],
  ['duplicate address', { endpoints: [{ name: 'a', listen: 'unix:/a' }, { name: 'b', listen: 'unix:/a' }] }, /^config\.endpoints\[1\]\.listen: unix:\/a is used by another endpoint$/],
  ['socket options on tcp', { endpoints: [{ name: 'a', listen: 'tcp:127.0.0.1:0', socket: { mode: '0600' } }] }, /^config\.endpoints\[0\]\.socket: only applies to unix endpoints$/],
  ['bad socket mode', { endpoints: [{ name: 'a', listen: 'unix:/a', socket: { mode: 600 } }] }, /^config\.endpoints\[0\]\.socket\.mode: expected an octal mode string/],
  ['allowRemote on unix', { endpoints: [{ name: 'a', listen: 'unix:/a', allowRemote: true }] }, /^config\.endpoints\[0\]\.allowRemote: only applies to tcp endpoints$/],
  ['unknown policy preset', { endpoints: [{ name: 'a', listen: 'unix:/a', policy: 'readonly' }] }, /^config\.endpoints\[0\]\.policy: expected one of 'all', 'read-only'/],
  ['empty policy', { endpoints: [{ name: 'a', listen: 'unix:/a', policy: {} }] }, /^config\.endpoints\[0\]\.policy: give 'preset', 'allow', or both$/],
  ['bad policy pattern', { endpoints: [{ name: 'a', listen: 'unix:/a', policy: { allow: ['query-?'] } }] }, /^config\.endpoints\[0\]\.policy\.allow\[0\]: 'query-\?': command names are/],
  ['events not a list', { endpoints: [{ name: 'a', listen: 'unix:/a', events: 'STOP' }] }, /^config\.endpoints\[0\]\.events: expected an array of strings/],
  ['limit above QEMU\'s', { limits: { maxNesting: 2000 } }, /^config\.limits\.maxNesting: must be between 2 and 1024, got 2000$/],
  ['message size above QEMU\'s', { limits: { maxMessageSize: 64 * 1024 * 1024 + 1 } }, /^config\.limits\.maxMessageSize: must be between 1024 and 67108864, got 67108865$/],
  ['tokens above QEMU\'s', { limits: { maxTokens: 2 * 1024 * 1024 + 1 } }, /^config\.limits\.maxTokens: must be between 16 and 2097152, got 2097153$/],
  ['endpoint limit above QEMU\'s', { endpoints: [{ name: 'a', listen: 'unix:/a', limits: { maxMessageSize: 2 ** 30 } }] }, /^config\.endpoints\[0\]\.limits\.maxMessageSize: must be between 1024 and 67108864, got 1073741824$/],
  ['endpoint limit unknown', { endpoints: [{ name: 'a', listen: 'unix:/a', limits: { maxClients: 3 } }] }, /^config\.endpoints\[0\]\.limits\.maxClients: unknown key/],
  ['bad whenLocked', { endpoints: [{ name: 'a', listen: 'unix:/a', whenLocked: 'queue' }] }, /^config\.endpoints\[0\]\.whenLocked: expected one of 'wait', 'refuse', got string "queue"$/],
  ['backoff inverted', { backoff: { initialMs: 1000, maxMs: 10 } }, /^config\.backoff\.maxMs: must not be less than initialMs \(1000\)$/],
  ['bad log level', { log: { level: 'verbose' } }, /^config\.log\.level: expected one of 'error', 'warn', 'info', 'debug'/],
];

for (const [name, value, message] of mistakes) {
  t.test(`mistake: ${name}`, async (t) => {
    t.throws(() => readConfig(value), { code: 'QMPMUX_CONFIG', message });
  });
}

t.test('limits up to QEMU\'s own are accepted', async (t) => {
  const qemu = { maxMessageSize: 64 * 1024 * 1024, maxTokens: 2 * 1024 * 1024, maxNesting: 1024 };
  t.match(readConfig({ limits: qemu }).limits, qemu);
});

t.test('the example configuration is valid and documents itself', async (t) => {
  const config = readConfig(example);
  t.equal(config.endpoints?.length, 3);
  t.same(config.upstream, { mode: 'connect', address: { type: 'unix', path: '/run/qemu/vm1.qmp' }, takeover: false });
  const metrics = config.endpoints![1]!;
  t.equal(metrics.maxClients, 4);
  t.equal(metrics.limits.maxPendingRequests, 16, 'endpoint limits override');
  t.equal(metrics.limits.maxNesting, 1024, 'the rest come from the top-level limits');
  t.ok(metrics.policy.deny.includes('query-qmp-schema') && metrics.policy.deny.includes('human-monitor-command'), 'preset and own denials combine');
  t.equal(config.endpoints![0]!.socket.mode, 0o660);
  const remote = config.endpoints![2]!;
  t.match(remote, { tls: { verifyPeer: true }, identities: [{ name: 'admin' }, { name: 'collector', maxClients: 2 }] }, 'a remote endpoint with TLS and identities');
});

/** Key paths of a configuration file (`endpoints[].name`...); a policy is one setting whichever form it takes. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.some((v) => typeof v === 'object' && v !== null) ? [...new Set(value.flatMap((v) => keyPaths(v, `${prefix}[]`)))] : [prefix];
  if (typeof value !== 'object' || value === null || prefix.endsWith('.policy')) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => (k.startsWith('$comment') ? [] : keyPaths(v, prefix ? `${prefix}.${k}` : k)));
}

t.test('the example shows every setting the effective configuration has', async (t) => {
  const effective = asConfigFile(resolveOptions(parseArgs([]), readConfig(example)));
  const shown = new Set(keyPaths(example));
  // An endpoint's limits, and an identity's, are the top-level ones, documented there once.
  const missing = keyPaths(effective).filter((path) => !shown.has(path) && !shown.has(path.replace(/^endpoints\[\](\.identities\[\])?\.limits\./, 'limits.')));
  t.same(missing, [], 'every setting --print-config prints appears in config/example.json');
  t.ok(shown.has('timeouts.closeMs') && shown.has('audit.rotate.keep') && shown.has('endpoints[].eventSequence'));
  t.ok(shown.has('endpoints[].tls.handshakeTimeoutMs') && shown.has('endpoints[].identities[].maxClients'), 'TLS and identities shown');
});

t.test('defaults: an empty file changes nothing', async (t) => {
  const options = resolveOptions(parseArgs([]), readConfig({}));
  t.same(options.endpoints[0]!.limits, DEFAULTS.limits);
  t.equal(options.upstream.mode, 'spawn');
  t.equal(options.endpoints[0]!.address.type === 'unix' && options.endpoints[0]!.address.path, 'qmp-mux.sock');
  t.same(options.timeouts, DEFAULTS.timeouts);
});

t.test('the command line overrides the file', async (t) => {
  const file = readConfig({
    upstream: { connect: 'unix:/from/file' },
    endpoints: [{ name: 'a', listen: 'unix:/a' }],
    limits: { maxPendingRequests: 9 },
    log: { level: 'debug', format: 'json' },
  });
  const fileOnly = resolveOptions(parseArgs([]), file);
  t.same(fileOnly.upstream, { mode: 'connect', address: { type: 'unix', path: '/from/file' }, takeover: false });
  t.equal(fileOnly.endpoints[0]!.name, 'a');
  t.equal(fileOnly.log.level, 'debug');

  const both = resolveOptions(parseArgs(['--upstream', 'listen:unix:/cli', '--listen', 'tcp:127.0.0.1:0', '--log-level', 'warn']), file);
  t.same(both.upstream, { mode: 'listen', address: { type: 'unix', path: '/cli' } });
  t.same(both.endpoints.map((e) => e.name), ['a', 'listen0'], '--listen adds endpoints to the file\'s');
  t.same(both.endpoints[1]!.address, { type: 'tcp', host: '127.0.0.1', port: 0 });
  t.equal(both.endpoints[1]!.limits.maxPendingRequests, 9, '--listen endpoints take the file\'s limits');
  const clash = resolveOptions(parseArgs(['--listen', 'unix:/b']), readConfig({ endpoints: [{ name: 'listen0', listen: 'unix:/a' }] }));
  t.same(clash.endpoints.map((e) => e.name), ['listen0', 'listen0_'], 'names never clash');
  t.equal(both.log.level, 'warn');
  t.equal(both.log.format, 'json');

  const spawned = resolveOptions(parseArgs(['--on-stop', 'leave', '--', 'qemu-system-x86_64', '-m', '64']), file);
  t.same(spawned.upstream, { mode: 'spawn', command: ['qemu-system-x86_64', '-m', '64'], onStop: 'leave', powerdownTimeoutMs: DEFAULTS.spawn.powerdownTimeoutMs });
});

t.test('--takeover needs a unix upstream', async (t) => {
  t.throws(() => resolveOptions(parseArgs(['--takeover']), undefined), { code: 'QMPMUX_USAGE' });
  t.equal(resolveOptions(parseArgs(['--takeover', '--upstream', 'unix:/q']), undefined).upstream.mode, 'connect');
});

t.test('--print-config: the effective options as a file that gives exactly them', async (t) => {
  const file = readConfig({
    upstream: { spawn: ['qemu-system-x86_64', '-m', '64'], onStop: 'powerdown' },
    endpoints: [
      { name: 'ro', listen: 'unix:/run/x.sock', socket: { mode: '0660', group: 0 }, policy: { preset: 'read-only', deny: ['query-qmp-schema'] }, events: ['STOP'] },
      { name: 'net', listen: 'tcp:0.0.0.0:4445', allowRemote: true, maxClients: 3, limits: { maxOutputBuffer: 65536 } },
    ],
    timeouts: { closeMs: 100 },
  });
  const options = resolveOptions(parseArgs(['--listen', 'unix:/tmp/extra.sock', '--log-format', 'json']), file);
  const printed = asConfigFile(options);
  const again = resolveOptions(parseArgs([]), readConfig(JSON.parse(JSON.stringify(printed))));
  t.same(again, options, 'reading the printed file back gives the same options');
  t.match(printed, { endpoints: [{ name: 'ro', socket: { mode: '0660', group: 0 } }, { name: 'net', allowRemote: true }, { name: 'listen0', listen: 'unix:/tmp/extra.sock' }] });
  t.same(asConfigFile(resolveOptions(parseArgs(['--upstream', 'listen:tcp:127.0.0.1:5']), undefined)).upstream, { listen: 'tcp:127.0.0.1:5' });
  const takeover = asConfigFile(resolveOptions(parseArgs(['--upstream', 'unix:/q', '--takeover']), undefined));
  t.match(takeover.upstream, { connect: 'unix:/q', takeover: true, $comment: /clients also connect at unix:\/q/ });
  t.notOk('endpoints' in takeover, 'a takeover alone has no endpoint but its own');
});
