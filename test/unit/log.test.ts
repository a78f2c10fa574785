import t from 'tap';
import { createLogger } from '../../src/log.ts';

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
