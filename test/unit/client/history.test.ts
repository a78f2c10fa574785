import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { HistoryFile } from '../../../src/client/history.ts';
import { socketDir } from '../../fixtures/tmp.ts';

const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');

t.test('a missing file is an empty history; entries are appended, mode 0600', async (t) => {
  const path = join(socketDir(t), 'h');
  const h = new HistoryFile(path, 5);
  t.same(h.load(), []);
  h.add('query-status');
  h.add('   ');
  h.add('');
  h.add('multi\nline');
  h.add('stop');
  t.same(lines(path), ['query-status', 'stop'], 'blank entries and entries with line breaks are not kept');
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(new HistoryFile(path, 5).load(), ['stop', 'query-status'], 'newest first, for readline');
});

t.test('bounded: cut back to the newest entries on load and when the file doubles', async (t) => {
  const path = join(socketDir(t), 'h');
  writeFileSync(path, Array.from({ length: 12 }, (_, i) => `c${i}\n`).join(''));
  const h = new HistoryFile(path, 3);
  t.same(h.load(), ['c11', 'c10', 'c9']);
  t.same(lines(path), ['c9', 'c10', 'c11'], 'the file is cut back on load');
  h.add('d0');
  h.add('d1');
  t.same(lines(path), ['c9', 'c10', 'c11', 'd0', 'd1'], 'appended up to twice the size');
  h.add('d2');
  t.same(lines(path), ['d0', 'd1', 'd2'], 'cut back at twice the size');
  h.add('d3');
  t.same(lines(path), ['d0', 'd1', 'd2', 'd3']);
  t.equal(statSync(path).mode & 0o777, 0o600, 'the rewritten file too');
});

t.test('two shells appending to one file both keep their entries', async (t) => {
  const path = join(socketDir(t), 'h');
  const a = new HistoryFile(path, 10);
  const b = new HistoryFile(path, 10);
  a.load();
  b.load();
  a.add('from-a');
  b.add('from-b');
  t.same(new HistoryFile(path, 10).load(), ['from-b', 'from-a']);
});

t.test('errors other than a missing file are thrown', async (t) => {
  const dir = socketDir(t);
  const asDir = join(dir, 'is-a-dir');
  mkdirSync(asDir);
  t.throws(() => new HistoryFile(asDir, 5).load(), { code: 'EISDIR' });
  const locked = join(dir, 'locked');
  mkdirSync(locked);
  chmodSync(locked, 0o500);
  t.teardown(() => chmodSync(locked, 0o700));
  if (process.getuid?.() !== 0) t.throws(() => new HistoryFile(join(locked, 'h'), 5).add('x'), { code: 'EACCES' });
});
