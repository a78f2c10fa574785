import { EventEmitter } from 'node:events';
import t from 'tap';
import { createLogger, LOG_BACKLOG, type LogStream } from '../../src/log.ts';

const at = () => new Date('2026-11-21T12:00:00.000Z');

t.test('text lines: level, message, fields quoted when needed', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'text', trace: false, sink: (l) => lines.push(l), now: at });
  log.info('client connected', { endpoint: 'ep0', client: 'local#1', reason: 'closed by the client', gone: undefined });
  log.debug('not shown');
  t.same(lines, ['2026-11-21T12:00:00.000Z INFO  client connected endpoint=ep0 client=local#1 reason="closed by the client"']);
});

t.test('JSON lines; the threshold; trace lines whatever the level', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'error', format: 'json', trace: true, sink: (l) => lines.push(l), now: at });
  log.warn('below the threshold');
  log.error('shown', { n: 1 });
  log.trace('to-qemu', { peer: 'qemu' }, '{"execute":"stop"}\r\n');
  t.same(lines.map((l) => JSON.parse(l) as unknown), [
    { time: '2026-11-21T12:00:00.000Z', level: 'error', msg: 'shown', n: 1 },
    { time: '2026-11-21T12:00:00.000Z', level: 'trace', msg: 'to-qemu', peer: 'qemu', message: '{"execute":"stop"}' },
  ]);
  t.equal(log.tracing, true);
});

t.test('text trace lines: the message ends the line as it is, not escaped again', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'text', trace: true, sink: (l) => lines.push(l), now: at });
  log.trace('to-client', { endpoint: 'ep0', client: 'local#1' }, Buffer.from('{"return": {"status": "running"}, "id": "a b"}\r\n'));
  t.same(lines, ['2026-11-21T12:00:00.000Z TRACE to-client endpoint=ep0 client=local#1 {"return": {"status": "running"}, "id": "a b"}']);
});

t.test('no trace lines unless asked for', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'text', trace: false, sink: (l) => lines.push(l), now: at });
  log.trace('to-qemu', { peer: 'qemu' }, 'x');
  t.same(lines, []);
});

/** A stream whose reader takes nothing until told: what a paused pager or a busy journald is to stderr. */
class StalledReader extends EventEmitter implements LogStream {
  writableLength = 0;
  taken: string[] = [];
  private waiting: string[] = [];

  write(text: string): boolean {
    this.waiting.push(text);
    this.writableLength += text.length;
    return false;
  }

  /** The reader takes everything waiting; `drain` unless told it comes later. */
  read(drain = true): void {
    this.taken.push(...this.waiting);
    this.waiting = [];
    this.writableLength = 0;
    if (drain) this.emit('drain');
  }
}

const notice = (dropped: number): string => `2026-11-21T12:00:00.000Z WARN  log lines dropped: the log was not read as fast as it was written dropped=${dropped}\n`;

t.test('a log nobody reads holds at most LOG_BACKLOG bytes; the rest is dropped, counted, and said once it is read again', async (t) => {
  const output = new StalledReader();
  const log = createLogger({ level: 'info', format: 'text', trace: false, output, now: at });
  for (let i = 0; i < 3000; i++) log.info(`line ${i} ${'x'.repeat(1000)}`);
  t.ok(output.writableLength <= LOG_BACKLOG && output.writableLength > LOG_BACKLOG - 1100, `up to LOG_BACKLOG waiting, no more (${output.writableLength})`);
  t.equal(output.listenerCount('drain'), 1, 'one wait for the reader, however many lines went');
  output.read();
  const kept = output.taken.length;
  t.match(output.taken[kept - 1], new RegExp(`^\\S+ INFO  line ${kept - 1} x+\\n$`), 'the lines that fitted, in order');
  output.read(false);
  t.equal(output.taken[kept], notice(3000 - kept), 'then, written as it drained, how many did not');
  log.info('caught up');
  output.read();
  t.same(output.taken.slice(kept + 1), ['2026-11-21T12:00:00.000Z INFO  caught up\n'], 'then lines go as before, the notice once');
  t.equal(output.listenerCount('drain'), 0);

  for (let i = 0; i < kept + 5; i++) log.info(`line ${i} ${'x'.repeat(1000)}`);
  output.read();
  output.read(false);
  t.equal(output.taken.at(-1), notice(5), 'falling behind again is said again');
});

t.test('room again before the stream has drained: the notice goes first, in the log\'s format', async (t) => {
  const output = new StalledReader();
  const log = createLogger({ level: 'info', format: 'json', trace: false, output, now: at });
  for (let i = 0; i < 1100; i++) log.info('x'.repeat(1000));
  output.read(false);
  const kept = output.taken.length;
  t.ok(kept < 1100, 'some were dropped');
  log.info('next');
  output.read();
  t.same(
    output.taken.slice(kept).map((l) => JSON.parse(l) as unknown),
    [
      { time: '2026-11-21T12:00:00.000Z', level: 'warn', msg: 'log lines dropped: the log was not read as fast as it was written', dropped: 1100 - kept },
      { time: '2026-11-21T12:00:00.000Z', level: 'info', msg: 'next' },
    ],
    'the late drain says nothing more',
  );
});

t.test('a stream its reader keeps up with (stderr on a terminal or a file) gets every line', async (t) => {
  const output = new StalledReader();
  const log = createLogger({ level: 'info', format: 'text', trace: false, output, now: at });
  for (let i = 0; i < 3000; i++) {
    log.info('x'.repeat(1000));
    output.read(false);
  }
  t.equal(output.taken.length, 3000);
  t.equal(output.listenerCount('drain'), 0);
});

t.test('a line longer than the backlog is written when nothing waits (a large message under --trace), and only then', async (t) => {
  const output = new StalledReader();
  const log = createLogger({ level: 'info', format: 'text', trace: true, output, now: at });
  const large = 'x'.repeat(2 * LOG_BACKLOG);
  log.trace('from-qemu', {}, large);
  t.ok(output.writableLength > LOG_BACKLOG, 'written');
  log.trace('from-qemu', {}, large);
  log.info('small');
  output.read();
  output.read(false);
  t.same(
    output.taken.map((l) => l.length),
    [`2026-11-21T12:00:00.000Z TRACE from-qemu ${large}\n`.length, notice(2).length],
    'the second, with one waiting, is dropped, and what came after it',
  );
});
