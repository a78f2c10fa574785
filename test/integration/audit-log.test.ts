import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createLogger, type Logger } from '../../src/log.ts';
import { commandLine, type CommandEntry } from '../../src/ops/audit-line.ts';
import { openAuditFile } from '../../src/ops/audit-file.ts';
import { AuditLog, type AuditLogOptions } from '../../src/ops/audit-log.ts';
import { DEFAULTS } from '../../src/config/options.ts';
import { eventually, waitingFor } from '../fixtures/context.ts';
import { clientObject as args } from '../fixtures/json-text.ts';
import { socketDir } from '../fixtures/tmp.ts';

const TIME = new Date('2026-11-21T14:02:08.959Z');

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A logger whose lines the test reads, and can wait for. */
function capture(): { logger: Logger; lines: LogLine[]; waitFor(msg: string): Promise<LogLine> } {
  const lines: LogLine[] = [];
  const waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    trace: false,
    sink: (text) => {
      const line = JSON.parse(text) as LogLine;
      lines.push(line);
      for (const w of waiters.filter((w) => line.msg === w.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    },
  });
  const waitFor = (msg: string): Promise<LogLine> => {
    const seen = lines.find((l) => l.msg === msg);
    return seen ? Promise.resolve(seen) : waitingFor(`the log line '${msg}'`, new Promise((resolve) => waiters.push({ msg, resolve })));
  };
  return { logger, lines, waitFor };
}

function cmd(n: number, over: Partial<CommandEntry> = {}): CommandEntry {
  return { endpoint: 'ep', client: 1, peer: 'local#1', command: 'stop', idText: String(n), arguments: undefined, outcome: 'return', qemuSeconds: 0.001, ...over };
}

function options(path: string, logger: Logger, over: Partial<AuditLogOptions> = {}): AuditLogOptions {
  return { ...DEFAULTS.audit, rotate: { maxBytes: 0, keep: 1 }, path, logger, now: () => TIME, retryMs: 10, ...over };
}

/** Waits for a condition the writer reaches on its own. */
async function until(what: string, cond: () => boolean): Promise<void> {
  await eventually(cond, what, { intervalMs: 5 });
}

const linesOf = (path: string): unknown[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

/** The writer's next retry delay: it doubles at each failed try (from 10 ms here), so the test sees retries happen. */
const retryDelay = (log: AuditLog): number => (log as unknown as { retryDelay: number }).retryDelay;

/** Whether this process has `path` open for writing (the audit log does; a reader in the test does not count). */
const isOpen = (path: string): boolean =>
  readdirSync('/proc/self/fd').some((fd) => {
    try {
      const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0';
      return readlinkSync(`/proc/self/fd/${fd}`) === path && (parseInt(flags, 8) & 3) !== constants.O_RDONLY;
    } catch {
      return false;
    }
  });

const ids = (lines: unknown[]): unknown[] => lines.map((l) => (l as { id?: unknown }).id);

t.test('lines, fields, record levels, arguments', async (t) => {
  const dir = socketDir(t);
  const { logger, lines } = capture();
  const path = join(dir, 'audit.jsonl');
  const log = new AuditLog(options(path, logger, { record: 'commands', arguments: true }));
  t.equal(log.recordsCommand('query-status'), true);
  t.equal(log.recordsEvents, false);
  log.command(cmd(1, { command: 'query-status', arguments: args('{}') }));
  log.refusal({ endpoint: 'ro', client: 2, peer: '127.0.0.1:5555', command: 'quit', idText: '"q"', arguments: undefined });
  log.event({ name: 'STOP', seq: 1, bytes: Buffer.from('{"event": "STOP"}') });
  await log.close();
  t.same(linesOf(path), [
    { time: TIME.toISOString(), type: 'command', endpoint: 'ep', client: 1, peer: 'local#1', command: 'query-status', id: 1, arguments: {}, outcome: 'return', 'qemu-seconds': 0.001 },
    { time: TIME.toISOString(), type: 'command', endpoint: 'ro', client: 2, peer: '127.0.0.1:5555', command: 'quit', id: 'q', outcome: 'refused' },
  ]);
  t.equal(statSync(path).mode & 0o777, 0o600, 'created private');
  t.notOk(isOpen(path), 'closed');
  t.same(log.stats, { written: 2, dropped: 0, bufferedBytes: 0 });
  t.same(lines, []);
  log.command(cmd(3));
  t.same(log.stats, { written: 2, dropped: 0, bufferedBytes: 0 }, 'entries after close are ignored');

  const changes = join(dir, 'changes.jsonl');
  const c = new AuditLog(options(changes, logger, { record: 'changes' }));
  t.equal(c.recordsCommand('query-status'), false);
  c.command(cmd(1, { command: 'query-status' }));
  c.refusal({ endpoint: 'ro', client: 2, peer: 'p', command: 'query-kvm', idText: undefined, arguments: undefined });
  c.command(cmd(2, { command: 'human-monitor-command', arguments: args('{"command-line": "info"}') }));
  c.refusal({ endpoint: 'ro', client: 2, peer: 'p', command: 'device_del', idText: '3', arguments: undefined });
  c.event({ name: 'STOP', seq: 1, bytes: Buffer.from('{"event": "STOP"}') });
  await c.close();
  t.same(ids(linesOf(changes)), [2, 3], 'only state-changing commands, refused or not');
  t.notOk(readFileSync(changes, 'utf8').includes('command-line'), 'no arguments unless asked');

  const all = join(dir, 'all.jsonl');
  const a = new AuditLog(options(all, logger, { record: 'all' }));
  t.equal(a.recordsEvents, true);
  a.command(cmd(1, { command: 'query-status' }));
  a.event({ name: 'STOP', seq: 7, bytes: Buffer.from('{"event": "STOP"}') });
  await a.close();
  t.same(linesOf(all).map((l) => (l as { type: string }).type), ['command', 'event']);
});

t.test('appends to an existing file; each line within maxEntryBytes', async (t) => {
  const dir = socketDir(t);
  const { logger } = capture();
  const path = join(dir, 'audit.jsonl');
  writeFileSync(path, '{"earlier":true}\n');
  const log = new AuditLog(options(path, logger, { arguments: true, maxEntryBytes: 1024 }));
  log.command(cmd(1, { command: 'blockdev-add', arguments: args(`{"node-name": "n", "file": "${'x'.repeat(10_000)}"}`) }));
  await log.close();
  const text = readFileSync(path, 'utf8').split('\n');
  t.equal(text[0], '{"earlier":true}');
  t.ok(Buffer.byteLength(text[1]!) <= 1024);
  t.equal((JSON.parse(text[1]!) as { 'arguments-truncated': { bytes: number } })['arguments-truncated'].bytes, 10_027);
});

t.test('rotation: by size, between lines, keeping `keep` files', async (t) => {
  const dir = socketDir(t);
  const { logger, lines } = capture();
  const path = join(dir, 'audit.jsonl');
  const line = (n: number): string =>
    `{"time":"${TIME.toISOString()}","type":"command","endpoint":"ep","client":1,"peer":"local#1","command":"stop","id":${n},"outcome":"return","qemu-seconds":0.001}\n`;
  const perFile = Math.floor(1000 / line(1000).length);
  writeFileSync(path, 'x'.repeat(1000) + '\n');
  const log = new AuditLog(options(path, logger, { rotate: { maxBytes: 1000, keep: 2 } }));
  const count = 2 * perFile + 3;
  for (let n = 1000; n < 1000 + count; n++) log.command(cmd(n));
  await log.close();
  t.same(lines, []);
  t.same(readdirSync(dir).sort(), ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'], 'the file that was there went first, then out of the kept ones');
  const files = [`${path}.2`, `${path}.1`, path].map((p) => readFileSync(p, 'utf8'));
  t.same(
    files,
    [0, perFile, 2 * perFile].map((from) => Array.from({ length: Math.min(perFile, count - from) }, (_, i) => line(1000 + from + i)).join('')),
    'full files of whole lines, in order, none lost or doubled',
  );
  for (const f of files) t.ok(Buffer.byteLength(f) <= 1000, 'no file past maxBytes');

  const log2 = new AuditLog(options(path, logger, { rotate: { maxBytes: 1000, keep: 2 } }));
  for (let n = 2000; n < 2000 + perFile; n++) log2.command(cmd(n));
  await log2.close();
  t.same(readdirSync(dir).sort(), ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'], 'never more than keep');
  t.equal(ids(linesOf(`${path}.2`))[0], 1000 + perFile, 'what was .1 is now .2');
  t.equal(ids(linesOf(`${path}.1`))[0], 1000 + 2 * perFile, 'the file being written was continued, then rotated');
});

t.test('a rotation that fails is logged and tried again; nothing is lost', async (t) => {
  const dir = socketDir(t);
  const { logger, lines, waitFor } = capture();
  const path = join(dir, 'audit.jsonl');
  writeFileSync(path, 'x'.repeat(999) + '\n');
  mkdirSync(`${path}.1`);
  writeFileSync(join(`${path}.1`, 'in-the-way'), '');
  const log = new AuditLog(options(path, logger, { rotate: { maxBytes: 1000, keep: 1 } }));
  log.command(cmd(1));
  const error = await waitFor('cannot rotate the audit log; will retry');
  t.match(error.error, /^(ENOTEMPTY|EISDIR|EEXIST)/);
  t.equal(error.path, path);
  execFileSync('rm', ['-r', `${path}.1`]);
  log.reopen();
  await waitFor('audit log written again');
  await log.close();
  t.same(ids(linesOf(path)), [1]);
  t.equal(readFileSync(`${path}.1`, 'utf8'), 'x'.repeat(999) + '\n');
  t.same(lines.map((l) => l.level), ['error', 'info']);
});

t.test('reopen (SIGUSR1 after external rotation): written lines stay, queued ones go to the new file', async (t) => {
  const dir = socketDir(t);
  const { logger, lines } = capture();
  const path = join(dir, 'audit.jsonl');
  const log = new AuditLog(options(path, logger));
  for (let n = 1; n <= 3; n++) log.command(cmd(n));
  await until('three lines written', () => log.stats.written === 3);
  renameSync(path, `${path}.old`);
  log.command(cmd(4));
  log.command(cmd(5));
  log.reopen();
  log.command(cmd(6));
  await log.close();
  t.same(ids(linesOf(`${path}.old`)), [1, 2, 3]);
  t.same(ids(linesOf(path)), [4, 5, 6]);
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(lines, []);
  t.same(log.stats, { written: 6, dropped: 0, bufferedBytes: 0 });
});

t.test('without reopen, lines follow the renamed file', async (t) => {
  const dir = socketDir(t);
  const { logger } = capture();
  const path = join(dir, 'audit.jsonl');
  const log = new AuditLog(options(path, logger));
  log.command(cmd(1));
  await until('a line written', () => log.stats.written === 1);
  renameSync(path, `${path}.old`);
  log.command(cmd(2));
  await log.close();
  t.same(ids(linesOf(`${path}.old`)), [1, 2]);
  t.notOk(existsSync(path));
});

t.test('a path that cannot be opened: one clear log line, retries, recovery on reopen', async (t) => {
  const dir = socketDir(t);
  const { logger, lines, waitFor } = capture();
  const path = join(dir, 'missing', 'audit.jsonl');
  const log = new AuditLog(options(path, logger));
  log.command(cmd(1));
  const error = await waitFor('cannot open the audit log; will retry');
  t.same(error, { time: error.time, level: 'error', msg: 'cannot open the audit log; will retry', path, error: `ENOENT: no such file or directory, open '${path}'` });
  await until('a few retries', () => retryDelay(log) >= 80);
  t.equal(lines.length, 1, 'logged once, not at every retry');
  mkdirSync(join(dir, 'missing'));
  log.command(cmd(2));
  log.reopen();
  await waitFor('audit log written again');
  await log.close();
  t.same(ids(linesOf(path)), [1, 2], 'what was queued meanwhile is written');
  t.same(
    lines.map((l) => l.msg),
    ['cannot open the audit log; will retry', 'audit log written again'],
  );

  const isDir = join(dir, 'a-directory');
  mkdirSync(isDir);
  const { logger: l2, waitFor: wait2 } = capture();
  const log2 = new AuditLog(options(isDir, l2));
  const e2 = await wait2('cannot open the audit log; will retry');
  t.equal(e2.error, `EISDIR: illegal operation on a directory, open '${isDir}'`);
  await log2.close();
});

t.test('a path whose directory is not writable (as a non-root user)', { skip: process.getuid?.() === 0 ? 'root may write anywhere' : false }, async (t) => {
  const dir = socketDir(t);
  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o500 });
  const { logger, waitFor } = capture();
  const log = new AuditLog(options(join(locked, 'audit.jsonl'), logger));
  t.match((await waitFor('cannot open the audit log; will retry')).error, /^EACCES: permission denied/);
  await log.close();
});

t.test('a full disk (/dev/full): one clear log line, no crash, retries, close is bounded, timers cleared', { skip: existsSync('/dev/full') ? false : 'no /dev/full' }, async (t) => {
  const { logger, lines, waitFor } = capture();
  const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const timersBefore = refTimers();
  // A close timeout of a day: close must give up on its own (tap's timeout would end the wait).
  const log = new AuditLog(options('/dev/full', logger, { closeTimeoutMs: 24 * 3600 * 1000 }));
  log.command(cmd(1));
  log.command(cmd(2));
  const error = await waitFor('cannot write the audit log; will retry');
  t.equal(refTimers(), timersBefore, 'the retry timer does not keep the process alive');
  t.equal(error.path, '/dev/full');
  t.equal(error.error, 'ENOSPC: no space left on device, write');
  log.reopen();
  log.command(cmd(3));
  await until('retries after reopen', () => retryDelay(log) >= 80);
  t.same(
    lines.map((l) => l.msg),
    ['cannot write the audit log; will retry'],
    'one line for the whole episode',
  );
  await log.close();
  t.pass('close gives up on a failing file rather than waiting out its timeout');
  t.same(log.stats, { written: 0, dropped: 3, bufferedBytes: 0 });
  t.same(lines.at(-1), { time: lines.at(-1)!.time, level: 'warn', msg: 'audit log closed with entries not written', path: '/dev/full', unwritten: 3, dropped: 0 });
  const timer = (log as unknown as { retryTimer: NodeJS.Timeout | undefined }).retryTimer;
  t.ok(timer === undefined || (timer as unknown as { _destroyed: boolean })._destroyed, 'no retry timer left behind');
});

/**
 * A disk with `room` bytes left for the audit log, as a small tmpfs is: the
 * write that reaches its end is cut short, the next fails with ENOSPC,
 * until `free()`.
 */
function smallDisk(room: number): { open(path: string): Promise<FileHandle>; free(): void } {
  let left = room;
  const full = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return {
    open: async (path) => {
      const file = await openAuditFile(path);
      const write = async (buf: Buffer, offset: number, length: number): Promise<{ bytesWritten: number; buffer: Buffer }> => {
        if (left === 0) throw full();
        const written = await file.write(buf, offset, Math.min(length, left));
        left -= written.bytesWritten;
        return written;
      };
      return new Proxy(file, {
        get: (target, key) => {
          if (key === 'write') return write;
          const value = Reflect.get(target, key, target) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    free: () => (left = Infinity),
  };
}

/** The line the writer writes for `cmd(n)`. */
const lineOf = (n: number, maxEntryBytes = DEFAULTS.audit.maxEntryBytes): string => commandLine(TIME, cmd(n), false, maxEntryBytes);

/** Three entries in one write, which a disk with room for one line and `cut` bytes cuts inside the second. */
async function cutInSecondLine(t: Test, cut: number): Promise<{ path: string; log: AuditLog; disk: ReturnType<typeof smallDisk> } & ReturnType<typeof capture>> {
  const dir = socketDir(t);
  const logged = capture();
  const path = join(dir, 'audit.jsonl');
  const disk = smallDisk(Buffer.byteLength(lineOf(1)) + cut);
  const log = new AuditLog(options(path, logged.logger, { open: disk.open }));
  for (let n = 1; n <= 3; n++) log.command(cmd(n));
  await logged.waitFor('cannot write the audit log; will retry');
  t.equal(readFileSync(path, 'utf8'), lineOf(1) + lineOf(2).slice(0, cut), 'the second line is torn in the file');
  t.equal(log.stats.written, 1, 'the first is written, and counted so');
  return { path, log, disk, ...logged };
}

t.test('a torn line an earlier run left (killed mid-write) is removed before the first new line', async (t) => {
  const dir = socketDir(t);
  const { logger, lines } = capture();
  const path = join(dir, 'audit.jsonl');
  const torn = '{"time":"2026-11-21T14:01:00.000Z","type":"command","endpo';
  writeFileSync(path, `{"earlier":true}\n${torn}`);
  const log = new AuditLog(options(path, logger));
  log.command(cmd(1));
  await log.close();
  t.equal(readFileSync(path, 'utf8'), '{"earlier":true}\n' + lineOf(1));
  t.same(
    lines.map((l) => [l.level, l.msg, l.path, l.bytes]),
    [['warn', 'audit log ended in a torn line; removed it', path, torn.length]],
  );
  t.same(log.stats, { written: 1, dropped: 0, bufferedBytes: 0 });

  const short = join(dir, 'short.jsonl');
  writeFileSync(short, '{"ti');
  const log2 = new AuditLog(options(short, logger));
  log2.command(cmd(2));
  await log2.close();
  t.equal(readFileSync(short, 'utf8'), lineOf(2), 'a torn line shorter than its first key, and the only one');
});

t.test('text after the last newline that is not a torn audit line is kept, and ended with a newline', async (t) => {
  const dir = socketDir(t);
  const { logger, lines } = capture();
  const texts = ['{"earlier":true}\nnot an audit line', `{"time":"${'x'.repeat(1024)}`];
  for (const [i, text] of texts.entries()) {
    const path = join(dir, `${i}.jsonl`);
    writeFileSync(path, text);
    const log = new AuditLog(options(path, logger, { maxEntryBytes: 1024 }));
    log.command(cmd(1));
    await log.close();
    t.equal(readFileSync(path, 'utf8'), `${text}\n${lineOf(1, 1024)}`, i === 0 ? 'not the start of an audit line' : 'longer than any audit line');
  }
  const msg = 'audit log ended in text that is not an audit line; added a newline';
  t.same(lines.map((l) => [l.level, l.msg, l.bytes]), [['warn', msg, undefined], ['warn', msg, undefined]]);
});

t.test('a line the full disk cut short, then SIGUSR1 with space again: the torn start is removed and the line written whole, once', async (t) => {
  const { path, log, disk, lines, waitFor } = await cutInSecondLine(t, 50);
  disk.free();
  log.reopen();
  await waitFor('audit log written again');
  await log.close();
  t.equal(readFileSync(path, 'utf8'), lineOf(1) + lineOf(2) + lineOf(3));
  t.same(
    lines.map((l) => [l.msg, l.bytes]),
    [
      ['cannot write the audit log; will retry', undefined],
      ['audit log ended in a torn line; removed it', 50],
      ['audit log written again', undefined],
    ],
  );
  t.same(log.stats, { written: 3, dropped: 0, bufferedBytes: 0 });
});

t.test('the same without SIGUSR1: the write goes on where it was cut', async (t) => {
  const { path, log, disk, lines } = await cutInSecondLine(t, 50);
  disk.free();
  await until('the retry to have written the rest', () => log.stats.written === 3);
  await log.close();
  t.equal(readFileSync(path, 'utf8'), lineOf(1) + lineOf(2) + lineOf(3));
  t.same(lines.map((l) => l.msg), ['cannot write the audit log; will retry', 'audit log written again']);
  t.same(log.stats, { written: 3, dropped: 0, bufferedBytes: 0 });
});

t.test('a line cut short, the file rotated away, SIGUSR1: the old file ends with its last whole line, the new one starts with the line cut', async (t) => {
  const { path, log, disk, lines, waitFor } = await cutInSecondLine(t, 50);
  renameSync(path, `${path}.1`);
  disk.free();
  log.reopen();
  await waitFor('audit log written again');
  await log.close();
  t.equal(readFileSync(`${path}.1`, 'utf8'), lineOf(1));
  t.equal(readFileSync(path, 'utf8'), lineOf(2) + lineOf(3));
  t.same(lines[1], { time: lines[1]?.time, level: 'warn', msg: 'audit log ended in a torn line; removed it', path, bytes: 50 });
  t.same(log.stats, { written: 3, dropped: 0, bufferedBytes: 0 });
});

t.test('stopped while the disk is full: the torn start is removed at close; the next run appends to whole lines', async (t) => {
  const { path, log, lines } = await cutInSecondLine(t, 50);
  await log.close();
  t.equal(readFileSync(path, 'utf8'), lineOf(1));
  t.same(log.stats, { written: 1, dropped: 2, bufferedBytes: 0 }, 'the counts say what is in the file');
  t.same(
    lines.map((l) => [l.msg, l.unwritten]),
    [
      ['cannot write the audit log; will retry', undefined],
      ['audit log closed with entries not written', 2],
      ['audit log ended in a torn line; removed it', undefined],
    ],
  );
  const { logger, lines: next } = capture();
  const log2 = new AuditLog(options(path, logger));
  log2.command(cmd(4));
  await log2.close();
  t.equal(readFileSync(path, 'utf8'), lineOf(1) + lineOf(4));
  t.same(next, []);
});

/**
 * A FIFO held open by a child process that never reads it: writes to it
 * block once its pipe is full. The child opens it read-write, so it is there
 * at once, and when the child dies the pipe has no reader left (EPIPE).
 */
async function stuckFifo(t: Test, dir: string): Promise<{ path: string; reader: ChildProcess }> {
  const path = join(dir, 'slow-disk');
  execFileSync('mkfifo', [path]);
  const reader = spawn('sh', ['-c', 'exec 3<>"$0"; exec sleep infinity', path], { stdio: 'ignore' });
  t.teardown(() => {
    if (reader.exitCode === null && reader.signalCode === null) reader.kill('SIGKILL');
  });
  await until('the FIFO to have its reader', () => probe(path, () => true) !== undefined);
  return { path, reader };
}

/** Runs `fn` on a non-blocking write end of the FIFO; undefined while nobody reads it. */
function probe<T>(fifo: string, fn: (fd: number) => T): T | undefined {
  let fd: number;
  try {
    fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') return undefined;
    throw e;
  }
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `chunk` without blocking; false when the pipe is full. Only for pipes whose content is thrown away. */
function tryWrite(fd: number, chunk: Buffer): boolean {
  try {
    writeSync(fd, chunk);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return false;
    throw e;
  }
}

const pipeFull = (fifo: string): boolean => probe(fifo, (fd) => !tryWrite(fd, Buffer.from('x'))) === true;

/** Fills the pipe to the last byte. */
function fillPipe(fifo: string): void {
  probe(fifo, (fd) => {
    for (const size of [4096, 1]) for (let i = 0; i < 1 << 20 && tryWrite(fd, Buffer.alloc(size, 'x')); i++);
  });
}

/** Reads a FIFO in this process, 8 KiB every 2 ms; `rest()` reads what is left up to EOF and returns it all. */
function slowReader(t: Test, fifo: string): { rest(): Buffer } {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const chunks: Buffer[] = [];
  const readSome = (): number => {
    const buf = Buffer.alloc(8192);
    try {
      const n = readSync(fd, buf);
      chunks.push(buf.subarray(0, n));
      return n;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return -1;
      throw e;
    }
  };
  const timer = setInterval(readSome, 2);
  let closed = false;
  const stop = (): void => {
    clearInterval(timer);
    if (!closed) closeSync(fd);
    closed = true;
  };
  t.teardown(stop);
  return {
    rest: () => {
      clearInterval(timer);
      for (let i = 0; i < 1 << 16 && readSome() > 0; i++);
      stop();
      return Buffer.concat(chunks);
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : waitingFor(`process ${child.pid} to exit`, new Promise((resolve) => child.once('exit', () => resolve())));
}

t.test('a disk that cannot keep up: the caller never waits; drops are counted, marked in the file and logged once', async (t) => {
  const dir = socketDir(t);
  const { path: fifo, reader } = await stuckFifo(t, dir);
  const { logger, lines, waitFor } = capture();
  const maxBufferedBytes = 256 * 1024;
  const log = new AuditLog(options(fifo, logger, { maxBufferedBytes }));
  const padding = 'p'.repeat(900);
  const entry = (n: number): CommandEntry => cmd(n, { peer: padding });
  let n = 0;
  // Far more than the pipe (64 KiB) takes: the writer's first write blocks in the kernel.
  while (n < 150) log.command(entry(n++));
  t.equal(log.stats.dropped, 0);
  await until('the writer to open the FIFO', () => isOpen(fifo));

  // Keep calling in bursts, the writer given its turns between them: every call returns at once, the buffer
  // never grows past its bound, nothing is written while the reader reads nothing, and what does not fit is
  // dropped and counted.
  const bursts = 5;
  for (let burst = 0; burst < bursts; burst++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = log.stats.dropped;
    for (let i = 0; i < 200; i++) log.command(entry(n++));
    const fitted = 200 - (log.stats.dropped - before);
    if (burst > 0) t.equal(fitted, 0, `burst ${burst}: all 200 calls returned, all dropped and counted`);
    t.ok(log.stats.bufferedBytes <= maxBufferedBytes);
    t.equal(log.stats.written, 0, 'the writer is stuck');
  }
  t.ok(log.stats.dropped > 0, `${log.stats.dropped} dropped over ${bursts} bursts`);
  t.same(lines, [], 'nothing logged per entry');

  // The disk catches up, slowly: this process reads the FIFO, 8 KiB every 2 ms. Entries keep coming, one per
  // turn of the event loop; those that come before the writer has caught up are dropped too, so the gap is in one place.
  const drain = slowReader(t, fifo);
  let caughtUp: LogLine | undefined;
  void waitFor('audit log fell behind; entries dropped').then((l) => (caughtUp = l));
  await waitingFor(
    'the audit log to catch up with a slow reader while entries keep coming',
    (async () => {
      while (caughtUp === undefined) {
        log.command(entry(n++));
        await new Promise((resolve) => setImmediate(resolve));
      }
    })(),
  );
  for (let i = 0; i < 3; i++) log.command(entry(n++));
  await log.close();
  reader.kill('SIGKILL');
  await exited(reader);
  const out = join(dir, 'drained');
  writeFileSync(out, drain.rest());

  const dropped = log.stats.dropped;
  t.same(caughtUp, { time: caughtUp?.time, level: 'warn', msg: 'audit log fell behind; entries dropped', path: fifo, dropped }, 'one line with the count of the episode');
  const written = linesOf(out) as { id?: number; type: string; entries?: number }[];
  const marker = written.findIndex((l) => l.type === 'dropped');
  t.same(written[marker], { time: TIME.toISOString(), type: 'dropped', entries: dropped }, 'the gap is marked');
  const before = written.slice(0, marker).map((l) => l.id);
  const after = written.slice(marker + 1).map((l) => l.id);
  t.ok(before.length >= 150, 'at least the first entries were all accepted');
  t.same(before, Array.from({ length: before.length }, (_, i) => i), 'before the mark: every accepted entry once, in order');
  t.same(after, Array.from({ length: after.length }, (_, i) => n - after.length + i), 'after it: the entries from the end of the gap on');
  t.equal(n - after.length - before.length, dropped, 'and the gap is exactly the entries dropped');
  t.same(lines.map((l) => l.msg), ['audit log fell behind; entries dropped'], 'logged once');
  t.same(log.stats, { written: written.length, dropped, bufferedBytes: 0 });
});

t.test('a write cut short (the reader went away): after reopen, the line it cut is written whole to the new file', async (t) => {
  const dir = socketDir(t);
  const { path: fifo, reader } = await stuckFifo(t, dir);
  const { logger, waitFor } = capture();
  const log = new AuditLog(options(fifo, logger));
  for (let n = 1000; n < 1150; n++) log.command(cmd(n, { peer: 'p'.repeat(900) }));
  // Once the pipe is full the write blocks; with its reader gone, it returns what the pipe took, and the rest fails.
  await until('the pipe to be full', () => pipeFull(fifo));
  reader.kill('SIGKILL');
  const error = await waitFor('cannot write the audit log; will retry');
  t.match(error.error, /^EPIPE/);
  const replacement = join(dir, 'replacement');
  writeFileSync(replacement, '');
  renameSync(replacement, fifo);
  log.reopen();
  await waitFor('audit log written again');
  await log.close();
  const after = ids(linesOf(fifo)) as number[];
  t.ok(after[0]! > 1000, `the lines the pipe took are not written again (from ${after[0]})`);
  t.same(after, Array.from({ length: 1150 - after[0]! }, (_, i) => after[0]! + i), 'whole lines from the one cut, to the last');
});

for (const then of ['its reader dies', 'it is read at last'] as const) {
  t.test(`close() is bounded when the disk is stuck; the file is closed when the write returns (${then})`, async (t) => {
    const dir = socketDir(t);
    const { path: fifo, reader } = await stuckFifo(t, dir);
    fillPipe(fifo);
    const { logger, lines } = capture();
    const log = new AuditLog(options(fifo, logger, { closeTimeoutMs: 100 }));
    for (let n = 0; n < 10; n++) log.command(cmd(n));
    await log.close();
    const stats = { written: 0, dropped: 10, bufferedBytes: 0 };
    t.same(log.stats, stats, 'what could not be written is counted as dropped');
    t.same(lines.map((l) => [l.msg, l.unwritten]), [['audit log closed with entries not written', 10]]);
    t.ok(isOpen(fifo), 'the file stays open while its write is stuck');
    if (then === 'its reader dies') {
      reader.kill('SIGKILL');
      await exited(reader);
    } else {
      slowReader(t, fifo);
    }
    await until('the stuck write to return and the file to be closed', () => !isOpen(fifo));
    t.equal(lines.length, 1, 'nothing more is reported');
    t.same(log.stats, stats, 'nor counted');
  });
}
