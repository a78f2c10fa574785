import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** CI reads only the last lines of .ci/run: the count must be the real one, and a red run must name what failed. */

const script = join(import.meta.dirname, '..', '..', '.ci', 'tap-count.mjs');

function count(tap: string, status = 0): { out: string[]; code: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'qmt-count-'));
  try {
    const log = join(dir, 'log');
    writeFileSync(log, tap);
    const run = spawnSync(process.execPath, [script, log, String(status)], { encoding: 'utf8' });
    return { out: run.stdout.trim().split('\n'), code: run.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GREEN = [
  '# Subtest: test/b.test.ts',
  '    # Subtest: group',
  '        ok 1 - one',
  '        ok 2 - two # SKIP not here',
  '        1..2',
  '    ok 1 - group',
  '    ok 2 - three',
  '    1..2',
  'ok 1 - test/b.test.ts',
].join('\n');

const RED = [
  '# Subtest: test/a.test.ts',
  '    # Subtest: group one',
  '        ok 1 - fine',
  '        not ok 2 - broke here',
  '        1..2',
  '    not ok 1 - group one',
  '    # Subtest: a timeout',
  '    not ok 2 - a timeout # time=30000ms',
  '    1..2',
  'not ok 1 - test/a.test.ts',
].join('\n');

t.test('leaf assertions are counted, skips are not, a passing group is not counted twice', async (t) => {
  t.same(count(GREEN), { out: ['2 passed, 0 failed'], code: 0 });
});

t.test('each failure is named by its subtests before the count, and counted once', async (t) => {
  const { out, code } = count(`${GREEN}\n${RED}`, 1);
  t.same(out, [
    'failed: test/a.test.ts > group one > broke here',
    'failed: test/a.test.ts > a timeout',
    '3 passed, 2 failed',
  ]);
  t.equal(code, 1);
});

t.test('a run that failed outside any test (build, coverage) is one failure, never green', async (t) => {
  t.same(count(GREEN, 2), { out: ['2 passed, 1 failed'], code: 2 });
});
