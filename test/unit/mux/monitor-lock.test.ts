import t from 'tap';
import { JsonNumber, type JsonObject } from '../../../src/json/value.ts';
import { changesState, type LockAnswer, type LockClock, type LockEnd, type LockParty, type LockRequest, type LockReset } from '../../../src/mux/lock-model.ts';
import { MonitorLock } from '../../../src/mux/monitor-lock.ts';

/** A clock that moves only when told, running the timers that fall due on the way. */
class FakeClock implements LockClock {
  t = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];

  now(): number {
    return this.t;
  }

  date(): Date {
    return new Date(Date.UTC(2026, 10, 22, 5, 33, 0) + this.t);
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => (timer.live = false);
  }

  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.t = target;
  }
}

function setup() {
  const clock = new FakeClock();
  const said: string[] = [];
  const lock = new MonitorLock(
    {
      granted: (h, waitedMs) => said.push(`granted ${h.party.who.client} ${h.mode} waited ${waitedMs}`),
      ended: (h, why, heldMs) => said.push(`ended ${h.party.who.client} ${why} held ${heldMs}`),
      waited: (who) => said.push(`waited ${who.client}`),
    },
    clock,
  );
  const heard = new Map<number, string[]>();
  const join = (client: number, endpoint = 'ep'): LockParty => {
    const log: string[] = [];
    heard.set(client, log);
    return lock.join(
      { client, endpoint, peer: `local#${client}` },
      {
        lockChanged: () => {
          log.push('changed');
          said.push(`changed ${client}`);
        },
        lockReset: (why: LockReset) => log.push(`reset ${why}`),
        room: () => log.push('room'),
      },
    );
  };
  const answers: string[] = [];
  const ask = (party: LockParty, request: Partial<LockRequest> = {}): string | undefined => {
    const later = (a: LockAnswer): void => {
      answers.push(`${party.who.client}: ${describe(a)}`);
    };
    const now = lock.request(party, { mode: 'write', waitMs: 0, leaseMs: 60_000, reason: undefined, ...request }, later);
    return now && describe(now);
  };
  /** Unlocks: undefined when it ended at once, `later` when its answer is to come, else why not. */
  const unlock = (party: LockParty): string | undefined => {
    const now = lock.unlock(party, (a) => answers.push(`${party.who.client}: ${'ended' in a ? 'unlocked' : `refused: ${a.refused}`}`));
    return now === undefined ? 'later' : 'ended' in now ? undefined : now.refused;
  };
  return { clock, lock, said, heard, join, ask, unlock, answers };
}

const describe = (a: LockAnswer): string => ('granted' in a ? `granted ${a.granted.mode}` : `refused: ${a.refused}`);

t.test('a free lock is granted at once; another client is refused, told who holds it, since when and why', async (t) => {
  const { lock, join, ask, unlock, said } = setup();
  const a = join(1, 'backup');
  const b = join(2);
  t.equal(ask(a, { reason: 'nightly backup' }), 'granted write');
  t.equal(ask(b), "refused: Cannot take a write lock: client 1 on endpoint 'backup' has held a write lock since 2026-11-22T05:33:00.000Z (reason: nightly backup)");
  t.equal(ask(a), 'refused: This client already holds a write lock (since 2026-11-22T05:33:00.000Z); unlock it first');
  t.same(lock.stateOf(1), { lock: 'holds', waitingCommands: 0 });
  t.same(lock.stateOf(2), { lock: undefined, waitingCommands: 0 });
  t.equal(unlock(b), 'This client holds no lock');
  t.equal(unlock(a), undefined);
  t.equal(lock.holding, undefined);
  t.same(said, ['granted 1 write waited 0', 'ended 1 unlock held 0']);
  t.equal(unlock(a), 'This client holds no lock', 'once');
});

t.test('write holds back what changes state; exclusive holds back everything; the holder is never held back', async (t) => {
  const { lock, join, ask, unlock } = setup();
  const a = join(1);
  const b = join(2);
  t.equal(lock.blocks(b, true), undefined, 'no lock: nothing held back');
  ask(a, { mode: 'write' });
  t.ok(lock.blocks(b, true), "write: another client's stop");
  t.equal(lock.blocks(b, false), undefined, "write: another client's query-status goes");
  t.equal(lock.blocks(a, true), undefined, "the holder's own");
  unlock(a);
  ask(a, { mode: 'exclusive' });
  t.ok(lock.blocks(b, false), 'exclusive: even a query');
  t.equal(lock.blocks(a, true), undefined);
});

t.test('what changes state is what the read-only preset refuses, arguments included', async (t) => {
  const args = (o: Record<string, string>): JsonObject => new Map(Object.entries(o));
  t.notOk(changesState('query-status', undefined));
  t.notOk(changesState('qom-get', args({ path: '/machine', property: 'type' })));
  t.ok(changesState('qom-get', args({ path: '/objects/sec0', property: 'data' })), 'qom-get of a secret is not a read the preset allows');
  t.ok(changesState('stop', undefined));
  t.ok(changesState('human-monitor-command', args({ 'command-line': 'info status' })));
  t.ok(changesState('transaction', new Map([['actions', []]])));
  t.ok(changesState('migrate-set-parameters', new Map([['max-bandwidth', new JsonNumber('1', true)]])));
});

t.test("the holder is answered once others' earlier commands that the lock holds back are answered", async (t) => {
  const { lock, join, ask, unlock, answers, said } = setup();
  const a = join(1);
  const b = join(2);
  const c = join(3);
  lock.sent(b, true); // stop, queued or at QEMU
  lock.sent(c, false); // query-status
  lock.sent(a, true); // the asker's own
  t.equal(ask(a, { mode: 'write' }), undefined, 'not at once');
  t.ok(lock.blocks(b, true), 'yet from now on it holds back what it would');
  t.same(lock.snapshot()?.holding.grantedAt, undefined);
  lock.answered(c, false);
  t.same(answers, [], "a query's answer does not count for a write lock");
  lock.answered(b, true);
  t.same(answers, ['1: granted write'], "once the other client's stop is answered");
  t.match(said, ['granted 1 write waited 0']);
  t.equal(unlock(a), 'later', 'its own stop is still unanswered: the unlock waits for it');
  lock.answered(a, true);
  t.same(answers, ['1: granted write', '1: unlocked']);

  lock.sent(c, false);
  lock.sent(b, true);
  t.equal(ask(b, { mode: 'exclusive' }), undefined, 'exclusive waits for the query too');
  lock.answered(b, true);
  t.equal(answers.length, 2, 'its own do not count');
  lock.answered(c, false);
  t.same(answers, ['1: granted write', '1: unlocked', '2: granted exclusive']);
});

t.test("a client that leaves stops counting: its commands are dropped or ahead of the holder's", async (t) => {
  const { lock, join, ask, answers } = setup();
  const a = join(1);
  const b = join(2);
  lock.sent(b, true);
  ask(a);
  lock.leave(b);
  t.same(answers, ['1: granted write']);
  lock.answered(b, true);
  t.equal(lock.snapshot()?.holding.party, a, 'an answer for a client gone changes nothing');
});

t.test('waiters get the lock in the order they asked; a wait runs out naming the holder', async (t) => {
  const { clock, lock, join, ask, unlock, answers, said } = setup();
  const [a, b, c, d] = [join(1), join(2), join(3), join(4)];
  ask(a, { reason: 'first' });
  t.equal(ask(b, { waitMs: 10_000 }), undefined);
  t.equal(ask(c, { waitMs: 10_000, mode: 'exclusive' }), undefined);
  t.equal(ask(d, { waitMs: 500 }), undefined);
  t.same(lock.snapshot()?.waiting.map((w) => w.client), [2, 3, 4]);
  t.same(lock.stateOf(3).lock, 'waits');
  clock.advance(500);
  t.same(answers, ["4: refused: Cannot take a write lock within 500 ms: client 1 on endpoint 'ep' has held a write lock since 2026-11-22T05:33:00.000Z (reason: first)"]);
  clock.advance(100);
  unlock(a);
  t.same(answers.slice(1), ['2: granted write']);
  unlock(b);
  t.same(answers.slice(2), ['3: granted exclusive']);
  t.match(said, ['granted 1 write waited 0', 'waited 2', 'waited 3', 'waited 4', 'ended 1 unlock held 600', 'granted 2 write waited 600', 'ended 2 unlock held 0', 'granted 3 exclusive waited 600']);
  clock.advance(20_000);
  t.equal(answers.length, 3, 'timers of waiters granted do not fire');
});

t.test('a waiter that leaves is forgotten; the holder leaving passes the lock on', async (t) => {
  const { lock, join, ask, answers, said } = setup();
  const [a, b, c] = [join(1), join(2), join(3)];
  ask(a);
  ask(b, { waitMs: 1000 });
  ask(c, { waitMs: 1000 });
  lock.leave(b);
  lock.leave(a);
  t.same(answers, ['3: granted write']);
  t.match(said, ['granted 1 write waited 0', 'waited 2', 'waited 3', 'ended 1 disconnect held 0', 'granted 3 write waited 0']);
});

t.test('when a lock ends, the commands it held back go before the next waiter is granted', async (t) => {
  const { lock, join, ask, unlock, heard, said } = setup();
  const [a, b, c] = [join(1), join(2), join(3)];
  ask(a);
  lock.holdBack(b, true);
  lock.holdBack(b, false);
  ask(c, { waitMs: 1000 });
  unlock(a);
  t.same(heard.get(2), ['changed'], 'told once');
  t.match(said, ['granted 1 write waited 0', 'waited 2', 'waited 3', 'ended 1 unlock held 0', 'changed 2', 'granted 3 write waited 0'], 'held-back commands first, then the next waiter');
  unlock(c);
  t.same(heard.get(2), ['changed'], 'a client that no longer waits is not told again');
});

t.test('the lease: renewed by what the holder sends (not by its own queries), stopped while a command of its is at QEMU', async (t) => {
  const { clock, lock, join, ask, unlock, said } = setup();
  const [a, b] = [join(1), join(2)];
  ask(a, { leaseMs: 1000 });
  clock.advance(900);
  lock.active(a, 'query-status');
  lock.active(b, 'stop');
  clock.advance(900);
  t.ok(lock.holding, 'renewed at 900');
  t.equal(lock.snapshot()?.leaseLeftMs, 100);
  lock.active(a, '__org.qmp-mux_query-lock');
  lock.sent(a, true);
  clock.advance(5000);
  t.ok(lock.holding, 'a command of its at QEMU: the lease does not run');
  t.equal(lock.snapshot()?.leaseLeftMs, 1000);
  lock.answered(a, true);
  clock.advance(999);
  t.ok(lock.holding, 'it starts again from the answer');
  clock.advance(1);
  t.equal(lock.holding, undefined, 'then runs out');
  t.match(said.at(-1), /^ended 1 lease held 7800$/);
  t.equal(unlock(a), 'This client holds no lock: its write lock ended at 2026-11-22T05:33:07.800Z, when its lease of 1000 ms ran out');
});

t.test('QEMU going away: the lock ends, waiters are dropped, everyone with commands waiting hears they will not run', async (t) => {
  const { clock, lock, join, ask, heard, answers, said } = setup();
  const [a, b, c, d] = [join(1), join(2), join(3), join(4)];
  ask(a);
  ask(b, { waitMs: 1000 });
  lock.waiting(b, 1, 40);
  lock.holdBack(c, true);
  lock.waiting(c, 2, 100);
  lock.reset('qemu-gone');
  t.equal(lock.holding, undefined);
  t.same(heard.get(2), ['reset qemu-gone']);
  t.same(heard.get(3), ['reset qemu-gone']);
  t.same(heard.get(4), [], 'nothing waiting: nothing to hear');
  clock.advance(5000);
  t.same(answers, [], 'the waiter is not answered by the lock (its router answers what it had waiting)');
  t.match(said.at(-1), /^ended 1 qemu-gone/);
  t.equal(ask(d), 'granted write', 'the lock is free afterwards');
});

t.test('commands waiting behind locks count toward the total: others are not read until there is room; the holder always is', async (t) => {
  const { lock, join, ask, heard } = setup();
  const [a, b, c] = [join(1), join(2), join(3)];
  ask(a);
  t.notOk(lock.crowded(b, 1000, 1000), 'nothing waiting: the dispatcher alone decides');
  lock.waiting(b, 1, 600);
  t.notOk(lock.crowded(c, 300, 1000));
  t.ok(lock.crowded(c, 400, 1000));
  t.notOk(lock.crowded(a, 400, 1000), 'the holder must stay able to unlock');
  lock.sent(b, false);
  lock.answered(b, false);
  t.same(heard.get(3), ['room'], 'told when commands were answered');
  t.ok(lock.crowded(c, 400, 1000));
  lock.waiting(b, -1, -600);
  t.same(heard.get(3), ['room', 'room'], 'and when waiting commands go on');
  t.equal(lock.waitingBytes, 0);
});

t.test('a client gone takes its waiting commands out of the count', async (t) => {
  const { lock, join, ask } = setup();
  const [a, b] = [join(1), join(2)];
  ask(a);
  lock.waiting(b, 3, 300);
  t.equal(lock.commandsWaiting, 3);
  t.equal(lock.snapshot()?.waitingCommands, 3);
  lock.leave(b);
  t.equal(lock.commandsWaiting, 0);
  t.equal(lock.waitingBytes, 0);
  lock.waiting(b, -3, -300);
  t.equal(lock.waitingBytes, 0, 'what a router drops after leaving changes nothing');
  t.same(lock.stateOf(2), { lock: undefined, waitingCommands: 0 });
});

const ENDS: LockEnd[] = ['unlock', 'lease', 'disconnect', 'qemu-gone', 'stopping'];
t.test('every way a lock ends is said, with how long it was held', async (t) => {
  for (const why of ENDS) {
    const { clock, lock, join, ask, unlock, said } = setup();
    const a = join(1);
    ask(a, { leaseMs: 5000 });
    clock.advance(why === 'lease' ? 5000 : 250);
    if (why === 'unlock') unlock(a);
    else if (why === 'disconnect') lock.leave(a);
    else if (why !== 'lease') lock.reset(why);
    t.equal(said.at(-1), `ended 1 ${why} held ${why === 'lease' ? 5000 : 250}`, why);
  }
});

t.test("an unlock waits until what the holder sent before it is answered: its queued steps still run under the lock", async (t) => {
  const { lock, join, ask, unlock, answers, heard } = setup();
  const [a, b] = [join(1), join(2)];
  ask(a);
  lock.sent(a, true);
  lock.sent(a, false);
  lock.holdBack(b, true);
  t.equal(unlock(a), 'later');
  t.ok(lock.blocks(b, true), 'still held meanwhile');
  lock.answered(a, true);
  t.same(answers, [], 'one of its commands still unanswered');
  lock.answered(a, false);
  t.same(answers, ['1: unlocked']);
  t.equal(lock.holding, undefined);
  t.same(heard.get(2), ['changed'], 'then what it held back goes');
});

t.test('a request without wait-ms while the lock is passing to a waiter is refused naming that waiter', async (t) => {
  const { lock, join, ask, unlock, answers } = setup();
  const [a, c] = [join(1), join(3)];
  let during: string | undefined;
  const b = lock.join(
    { client: 2, endpoint: 'ep', peer: 'local#2' },
    {
      lockChanged: () => {
        const now = lock.request(b, { mode: 'write', waitMs: 0, leaseMs: 1000, reason: undefined }, () => undefined);
        during = now && ('refused' in now ? now.refused : 'granted');
      },
      lockReset: () => undefined,
      room: () => undefined,
    },
  );
  ask(a);
  lock.holdBack(b, true);
  ask(c, { waitMs: 1000 });
  unlock(a);
  t.equal(during, "Cannot take a write lock: client 3 on endpoint 'ep' asked for it first", 'the waiter before it comes first');
  t.same(answers, ['3: granted write']);
});
