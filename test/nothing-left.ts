import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import { describeProcess, processesWithEnv } from './fixtures/proc.ts';
import { RUN_VARIABLE, runDirectory } from './fixtures/marks.ts';

/**
 * Run by tap after every test file of the run (tap's `after`): nothing the
 * tests made is left, whether they passed, failed or timed out. What is
 * found is reported, then removed all the same, so that a failed run
 * leaves nothing either. The run is tap's runner, this process's parent
 * (see fixtures/scope.ts).
 */

const run = String(process.ppid);
const dir = runDirectory(tmpdir(), run);

// Top-level assertions, not a subtest: --grep and --only, which pick the run's tests, do not skip this check.
const processes = processesWithEnv(RUN_VARIABLE, run);
t.same(processes.map(describeProcess), [], 'nothing left behind by the run: no process a test started is still running');
for (const pid of processes) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}
const files = existsSync(dir) ? readdirSync(dir, { recursive: true }) : [];
t.same(files, [], `nothing left behind by the run: no file or socket in its temporary directory ${dir}`);
rmSync(dir, { recursive: true, force: true });
