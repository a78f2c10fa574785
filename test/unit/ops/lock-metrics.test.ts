import t from 'tap';
import { LockMetrics, type LockProbe } from '../../../src/ops/lock-metrics.ts';
import { Registry } from '../../../src/ops/prometheus.ts';

t.test("the lock's metrics: which mode is held, seconds held by endpoint (the lock held now included), grants, ends, waits", async (t) => {
  let current: ReturnType<LockProbe['current']>;
  let waiting = 0;
  const registry = new Registry();
  const m = new LockMetrics(registry, { modes: ['write', 'exclusive'], current: () => current, waitingCommands: () => waiting });
  t.equal(
    registry.render(),
    [
      '# HELP qmpmux_lock_held Whether a client holds the lock (or is being granted it), by mode: 1 for the mode held, 0 for the others.',
      '# TYPE qmpmux_lock_held gauge',
      'qmpmux_lock_held{mode="write"} 0',
      'qmpmux_lock_held{mode="exclusive"} 0',
      '# HELP qmpmux_lock_waiting_commands Commands waiting behind locks now (lock requests included).',
      '# TYPE qmpmux_lock_waiting_commands gauge',
      'qmpmux_lock_waiting_commands 0',
      '',
    ].join('\n'),
    'before any lock: nothing held, nothing waiting; the counters not yet there',
  );
  m.granted('backup', 'write');
  current = { mode: 'write', endpoint: 'backup', seconds: 1.5 };
  waiting = 3;
  m.waited('ops');
  m.waited('ops');
  let text = registry.render();
  t.match(text, /qmpmux_lock_held\{mode="write"\} 1\nqmpmux_lock_held\{mode="exclusive"\} 0\n/);
  t.match(text, /qmpmux_lock_held_seconds_total\{endpoint="backup"\} 1\.5\n/, 'the lock held now counts');
  t.match(text, /qmpmux_locks_total\{endpoint="backup",mode="write"\} 1\n/);
  t.match(text, /qmpmux_lock_waits_total\{endpoint="ops"\} 2\n/);
  t.match(text, /qmpmux_lock_waiting_commands 3\n/);
  m.ended('backup', 'lease', 2);
  current = { mode: 'exclusive', endpoint: 'ops', seconds: 0.25 };
  m.granted('ops', 'exclusive');
  text = registry.render();
  t.match(text, /qmpmux_lock_held_seconds_total\{endpoint="backup"\} 2\nqmpmux_lock_held_seconds_total\{endpoint="ops"\} 0\.25\n/, 'ended locks add up; the one held now is added to its endpoint');
  t.match(text, /qmpmux_lock_ends_total\{why="lease"\} 1\n/);
  m.ended('ops', 'unlock', 1);
  current = { mode: 'write', endpoint: 'backup', seconds: 0.5 };
  text = registry.render();
  t.match(text, /qmpmux_lock_held_seconds_total\{endpoint="backup"\} 2\.5\nqmpmux_lock_held_seconds_total\{endpoint="ops"\} 1\n/);
});
