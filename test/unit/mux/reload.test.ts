import t from 'tap';
import { NO_COMMAND_LINE, resolveOptions } from '../../../src/config/resolve.ts';
import { readConfig } from '../../../src/config/file.ts';
import { planReload } from '../../../src/mux/reload.ts';

const options = (file: object) => resolveOptions(NO_COMMAND_LINE, readConfig({ upstream: { connect: 'unix:/q.sock' }, ...file }));
const endpoint = (name: string, extra: object = {}) => ({ name, listen: `unix:/run/${name}.sock`, ...extra });

t.test('a reload plan names what is added, removed and changed, and whose limits change', async (t) => {
  const before = options({ endpoints: [endpoint('a'), endpoint('b'), endpoint('c')] });
  const after = options({ endpoints: [endpoint('a'), endpoint('b', { policy: 'read-only' }), endpoint('c', { events: ['STOP'] }), endpoint('d')], window: 3 });
  const plan = planReload(before, after);
  t.same(plan.added.map((e) => e.name), ['d']);
  t.same(plan.removed, []);
  t.same(plan.changed.map((e) => e.name), ['b', 'c']);
  t.same([...plan.newLimits], ['b'], 'the read-only preset brings its own limits; an event filter changes none');
  t.same(planReload(after, before).removed, ['d']);
  t.same(planReload(before, before), { added: [], removed: [], changed: [], newLimits: new Set() }, 'nothing to do for the same file');
});

t.test('what only a restart can change is refused, all of it named', async (t) => {
  const before = options({ endpoints: [endpoint('a')] });
  t.throws(() => planReload(before, options({ endpoints: [endpoint('a')], upstream: { connect: 'unix:/other.sock' } })), { code: 'QMPMUX_CONFIG', message: 'upstream cannot change without a restart; the running configuration stays' });
  t.throws(() => planReload(before, options({ endpoints: [endpoint('a')], journal: { maxEvents: 5 }, log: { format: 'json' } })), { message: /^journal, log.format cannot change/ });
  t.doesNotThrow(() => planReload(before, options({ endpoints: [endpoint('a')], log: { level: 'debug' }, timeouts: { stallMs: 50 }, windowBytes: 4096 })), 'the log level, timeouts and windows can');
});
