import t from 'tap';
import { writeQemu } from '../../../src/json/writer.ts';
import { lockValue } from '../../../src/mux/lock-commands.ts';
import type { LockClock, LockParty } from '../../../src/mux/lock-model.ts';
import { MonitorLock } from '../../../src/mux/monitor-lock.ts';
import type { Who } from '../../../src/mux/who.ts';

/** A clock standing still at a known moment: the texts below are exact. */
const STILL: LockClock = { now: () => 0, date: () => new Date(Date.UTC(2026, 10, 22, 5, 33, 0)), after: () => () => undefined };

function setup() {
  const lock = new MonitorLock({ granted: () => undefined, ended: () => undefined, waited: () => undefined }, STILL);
  const join = (who: Who): LockParty => lock.join(who, { lockChanged: () => undefined, lockReset: () => undefined, room: () => undefined });
  const refusal = (party: LockParty, waitMs = 0): string => {
    const now = lock.request(party, { mode: 'write', waitMs, leaseMs: 60_000, reason: undefined }, () => undefined);
    return now !== undefined && 'refused' in now ? now.refused : 'not refused';
  };
  return { lock, join, refusal };
}

const admin: Who = { client: 1, endpoint: 'remote', peer: '192.0.2.7:51234', identity: 'admin', subject: 'O=Example,CN=admin' };

t.test('a holder known by its certificate is named by its identity, in errors and in query-lock', async (t) => {
  const { lock, join, refusal } = setup();
  const holder = join(admin);
  const other = join({ client: 2, endpoint: 'local', peer: 'local#2' });
  t.equal(refusal(holder), 'not refused');
  t.equal(refusal(other), "Cannot take a write lock: client 1 on endpoint 'remote' (identity 'admin') has held a write lock since 2026-11-22T05:33:00.000Z");
  const shown = lockValue(lock.snapshot(), other);
  t.same(['endpoint', 'peer', 'identity', 'subject'].map((k) => shown.get(k)), ['remote', '192.0.2.7:51234', 'admin', 'O=Example,CN=admin'], 'named as query-clients names it');
  t.equal(writeQemu(shown.get('client')!), '1');
});

t.test('a client without a certificate is named as before: no identity, no subject', async (t) => {
  const { lock, join, refusal } = setup();
  const holder = join({ client: 3, endpoint: 'local', peer: 'local#3' });
  refusal(holder);
  t.equal(refusal(join(admin)), "Cannot take a write lock: client 3 on endpoint 'local' has held a write lock since 2026-11-22T05:33:00.000Z");
  const shown = lockValue(lock.snapshot());
  t.same(['endpoint', 'peer'].map((k) => shown.get(k)), ['local', 'local#3']);
  t.notOk(shown.has('identity') || shown.has('subject'), 'no member for what it does not have');
});

t.test('a waiter the lock is passing to is named by its identity too', async (t) => {
  const { lock, join, refusal } = setup();
  const holder = join({ client: 3, endpoint: 'local', peer: 'local#3' });
  const waiter = join(admin);
  let during = '';
  // Told the lock changed while it passes to the waiter, this client asks at once.
  const late: LockParty = lock.join({ client: 4, endpoint: 'local', peer: 'local#4' }, { lockChanged: () => (during = refusal(late)), lockReset: () => undefined, room: () => undefined });
  refusal(holder);
  t.equal(refusal(waiter, 1000), 'not refused', 'it waits');
  lock.holdBack(late, true);
  lock.unlock(holder, () => undefined);
  t.equal(during, "Cannot take a write lock: client 1 on endpoint 'remote' (identity 'admin') asked for it first");
});
