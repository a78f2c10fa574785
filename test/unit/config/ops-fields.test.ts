import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/errors.ts';
import { readConfig } from '../../../src/config/file.ts';
import { DEFAULTS } from '../../../src/config/options.ts';
import { readAuditOptions, readJournalOptions } from '../../../src/config/ops-fields.ts';

function throwsConfig(t: Test, fn: () => unknown, message: string): void {
  t.throws(fn, new ConfigError(message), message);
}

t.test('journal: defaults, values, bounds, unknown keys', async (t) => {
  t.same(readJournalOptions({}, 'config.journal'), { maxEvents: 10_000, maxBytes: 4 * 1024 * 1024 });
  t.same(readJournalOptions({ maxEvents: 0, maxBytes: 1024, $comment: 'x' }, 'config.journal'), { maxEvents: 0, maxBytes: 1024 });
  throwsConfig(t, () => readJournalOptions({ maxEvents: -1 }, 'config.journal'), 'config.journal.maxEvents: must be between 0 and 10000000, got -1');
  throwsConfig(t, () => readJournalOptions({ maxBytes: 1.5 }, 'config.journal'), 'config.journal.maxBytes: expected an integer, got number 1.5');
  throwsConfig(t, () => readJournalOptions({ maxevents: 5 }, 'config.journal'), "config.journal.maxevents: unknown key (did you mean 'maxEvents'?)");
  throwsConfig(t, () => readJournalOptions([], 'config.journal'), 'config.journal: expected an object, got an array');
});

t.test('audit: defaults, values, cross-checks', async (t) => {
  t.same(readAuditOptions({ path: 'audit.jsonl' }, 'config.audit'), {
    path: 'audit.jsonl',
    record: 'changes',
    arguments: false,
    maxEntryBytes: 65536,
    rotate: { maxBytes: 64 * 1024 * 1024, keep: 5 },
    maxBufferedBytes: 4 * 1024 * 1024,
  });
  t.same(
    readAuditOptions(
      { path: '/var/log/qmp-mux/vm1.jsonl', record: 'all', arguments: true, maxEntryBytes: 4096, rotate: { maxBytes: 0 }, maxBufferedBytes: 65536 },
      'config.audit',
    ),
    { path: '/var/log/qmp-mux/vm1.jsonl', record: 'all', arguments: true, maxEntryBytes: 4096, rotate: { maxBytes: 0, keep: 5 }, maxBufferedBytes: 65536 },
  );
  t.same(readAuditOptions({ path: 'a', rotate: { keep: 1 } }, 'config.audit').rotate, { maxBytes: 64 * 1024 * 1024, keep: 1 });
  t.not(readAuditOptions({ path: 'a' }, 'c').rotate, DEFAULTS.audit.rotate, 'a copy, not the frozen default');
  throwsConfig(t, () => readAuditOptions({}, 'config.audit'), 'config.audit.path: expected a string, got undefined');
  throwsConfig(t, () => readAuditOptions({ path: 'a', record: 'writes' }, 'config.audit'), "config.audit.record: expected one of 'changes', 'commands', 'all', got string \"writes\"");
  throwsConfig(t, () => readAuditOptions({ path: 'a', arguments: 'yes' }, 'config.audit'), 'config.audit.arguments: expected true or false, got string "yes"');
  throwsConfig(t, () => readAuditOptions({ path: 'a', maxEntryBytes: 100 }, 'config.audit'), 'config.audit.maxEntryBytes: must be between 1024 and 67108864, got 100');
  throwsConfig(t, () => readAuditOptions({ path: 'a', rotate: { maxBytes: 1000 } }, 'config.audit'), 'config.audit.rotate.maxBytes: must be 0 (no rotation) or at least 65536, got 1000');
  throwsConfig(t, () => readAuditOptions({ path: 'a', rotate: { keep: 0 } }, 'config.audit'), 'config.audit.rotate.keep: must be between 1 and 1000, got 0');
  throwsConfig(t, () => readAuditOptions({ path: 'a', rotate: { files: 3 } }, 'config.audit'), 'config.audit.rotate.files: unknown key; known keys: maxBytes, keep');
  throwsConfig(
    t,
    () => readAuditOptions({ path: 'a', maxEntryBytes: 1024 * 1024, maxBufferedBytes: 65536 }, 'config.audit'),
    'config.audit.maxBufferedBytes: must be at least maxEntryBytes (1048576)',
  );
});

t.test('endpoint eventSequence', async (t) => {
  const endpoint = (extra: Record<string, unknown>) => readConfig({ endpoints: [{ name: 'e', listen: 'unix:/e', ...extra }] }).endpoints![0]!;
  t.equal(endpoint({}).eventSequence, false);
  t.equal(endpoint({ eventSequence: true }).eventSequence, true);
  throwsConfig(t, () => endpoint({ eventSequence: 1 }), 'config.endpoints[0].eventSequence: expected true or false, got number 1');
});

t.test('journal, audit and metrics in a configuration file', async (t) => {
  const file = readConfig({ journal: { maxEvents: 5 }, audit: { path: '/var/log/a.jsonl' }, metrics: { listen: 'tcp:127.0.0.1:9464' } });
  t.same(file.journal, { maxEvents: 5, maxBytes: DEFAULTS.journal.maxBytes });
  t.match(file.audit, { path: '/var/log/a.jsonl', record: 'changes' });
  t.same(file.metrics, { listen: { type: 'tcp', host: '127.0.0.1', port: 9464 }, allowRemote: false });
});
