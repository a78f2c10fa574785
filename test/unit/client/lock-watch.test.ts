import t from 'tap';
import { describeLockView, lockPromptTag, lockShorthand, LockWatch, readLockView, type LockView } from '../../../src/client/lock-watch.ts';
import type { QmpClient } from '../../../src/client/qmp-client.ts';
import { ConnectionError } from '../../../src/errors.ts';
import { JsonNumber, type JsonValue } from '../../../src/json/value.ts';
import { elapse, eventually } from '../../fixtures/context.ts';

const held = (over: Record<string, JsonValue> = {}): JsonValue =>
  new Map<string, JsonValue>(Object.entries({ mine: false, mode: 'write', client: new JsonNumber('3', true), endpoint: 'backup', since: '2026-11-22T02:00:00.120Z', ...over }));

t.test("the shell's lock words are the commands they stand for", async (t) => {
  const cases: [string, string][] = [
    ['lock write', '__org.qmp-mux_lock mode=write'],
    ['  lock exclusive wait-ms=5000 reason="a b"', '__org.qmp-mux_lock mode=exclusive wait-ms=5000 reason="a b"'],
    ['lock mode=write', '__org.qmp-mux_lock mode=write'],
    ['lock', '__org.qmp-mux_lock '],
    ['unlock', '__org.qmp-mux_unlock'],
    ['unlock now=1', '__org.qmp-mux_unlock now=1'],
    ['locked', 'locked'],
    ['query-status', 'query-status'],
    ['lockstep x=1', 'lockstep x=1'],
  ];
  for (const [line, shorthand] of cases) t.equal(lockShorthand(line), shorthand, line);
});

t.test('query-lock read as a view, said in a line and in the prompt', async (t) => {
  t.equal(readLockView(new Map()), undefined, '{}: no lock');
  t.equal(readLockView('nonsense'), undefined);
  t.equal(readLockView(held({ client: 'three' })), undefined, 'not what qmp-mux answers');
  const other = readLockView(held({ reason: 'nightly' }));
  t.same(other, { mine: false, mode: 'write', client: 3, endpoint: 'backup', identity: undefined, reason: 'nightly', since: '2026-11-22T02:00:00.120Z' });
  t.equal(describeLockView(other), "lock: client 3 on endpoint 'backup' holds a write lock since 2026-11-22T02:00:00.120Z (reason: nightly)");
  const known = readLockView(held({ endpoint: 'remote', identity: 'admin', subject: 'O=Example,CN=admin' }));
  t.equal(describeLockView(known), "lock: client 3 on endpoint 'remote' (identity 'admin') holds a write lock since 2026-11-22T02:00:00.120Z", 'a holder known by its certificate, by its identity');
  t.equal(lockPromptTag(other), ', locked by client 3');
  const mine = readLockView(held({ mine: true, mode: 'exclusive' }));
  t.equal(describeLockView(mine), 'lock: this shell holds an exclusive lock');
  t.equal(lockPromptTag(mine), ', exclusive-locked');
  t.equal(describeLockView(undefined), 'lock: none held now');
  t.equal(lockPromptTag(undefined), '');
});

t.test('the watch says only what changed, and goes quiet when the connection does', async (t) => {
  const answers: (JsonValue | Error)[] = [new Map(), held(), held(), held({ since: 'later' }), new Map(), new ConnectionError('gone')];
  const client = {
    executeJson: async (name: string): Promise<JsonValue> => {
      t.equal(name, '__org.qmp-mux_query-lock');
      const next = answers.shift()!;
      if (next instanceof Error) throw next;
      return next;
    },
  } as unknown as QmpClient;
  const said: (LockView | undefined)[] = [];
  const watch = new LockWatch(client, (view) => said.push(view));
  for (let i = 0; i < 6; i++) await watch.check();
  t.same(
    said.map((v) => v?.since),
    ['2026-11-22T02:00:00.120Z', 'later', undefined],
    'none at first is not news; the same lock twice is said once; a new lock and its end are',
  );
  const failing = new LockWatch({ executeJson: async () => Promise.reject(new TypeError('a bug')) } as unknown as QmpClient, () => undefined);
  await t.rejects(failing.check(), TypeError, 'anything but a connection problem is not swallowed');
});

t.test('the watch asks at once, then every period until stopped, one question at a time', async (t) => {
  let asked = 0;
  let release: (() => void) | undefined;
  const client = {
    executeJson: async (): Promise<JsonValue> => {
      asked++;
      await new Promise<void>((resolve) => (release = resolve));
      return held();
    },
  } as unknown as QmpClient;
  const said: (LockView | undefined)[] = [];
  const watch = new LockWatch(client, (view) => said.push(view));
  watch.start(5);
  t.equal(asked, 1, 'asked at once');
  // Time is the subject: eight periods pass, and no second question while the first is unanswered.
  await elapse(40);
  t.equal(asked, 1, 'no second question while the first is unanswered');
  release!();
  await eventually(() => asked >= 2, () => `a second question, on the next period (${asked} asked)`);
  t.pass('asked again on the next period');
  t.equal(said.length, 1, 'the lock said once');
  watch.stop();
  release!();
  const after = asked;
  await elapse(40);
  t.equal(asked, after, 'nothing asked once stopped');
});
