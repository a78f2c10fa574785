import t from 'tap';
import { createLogger } from '../../../src/log.ts';
import { CONNECTION_LOG_WINDOW_MS as WINDOW, CONNECTIONS_LOGGED as LOGGED, ConnectionLog } from '../../../src/mux/connection-log.ts';

/** A ConnectionLog on a clock the test turns, and the lines it wrote. */
function connectionLog() {
  let now = 1_000_000;
  const due: { at: number; then: () => void }[] = [];
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'text', trace: false, sink: (l) => lines.push(l.replace(/^\S+ /, '')) });
  const c = new ConnectionLog(log, 'ro', { now: () => now, after: (ms, then) => void due.push({ at: now + ms, then }) });
  const advance = (ms: number): void => {
    now += ms;
    for (const d of due.splice(0).sort((a, b) => a.at - b.at)) {
      if (d.at <= now) d.then();
      else due.push(d);
    }
  };
  const admitted = (n: number): number => Array.from({ length: n }, () => c.admit()).filter(Boolean).length;
  return { advance, admitted, lines, due };
}

t.test('the first CONNECTIONS_LOGGED of a window are logged; the others are one line when the window ends', async (t) => {
  const { advance, admitted, lines, due } = connectionLog();
  t.equal(admitted(LOGGED), LOGGED, 'all of the first ones');
  t.equal(admitted(250), 0, 'none past them');
  t.same(lines, [], 'nothing said yet');
  t.equal(due.length, 1, 'one summary due, however many were left out');
  advance(WINDOW - 1);
  t.same(lines, []);
  advance(1);
  t.same(lines, [`WARN  connections not logged one by one endpoint=ro connections=250 why="more than ${LOGGED} in ${WINDOW / 1000} s"`]);
  t.equal(admitted(LOGGED), LOGGED, 'a new window: logged again');
  t.equal(admitted(1), 0);
  advance(WINDOW);
  t.equal(lines.length, 2);
  t.match(lines[1], /connections=1 /);
});

t.test('a quiet window says nothing, and the window starts with the first connection after a quiet spell', async (t) => {
  const { advance, admitted, lines, due } = connectionLog();
  t.equal(admitted(10), 10);
  advance(WINDOW * 5);
  t.same([lines, due.length], [[], 0]);
  advance(123);
  t.equal(admitted(LOGGED + 1), LOGGED);
  advance(WINDOW - 1);
  t.same(lines, [], 'the window runs from its first connection');
  advance(1);
  t.equal(lines.length, 1);
});
