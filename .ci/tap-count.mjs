// Counts test results in a raw TAP stream (tap's output when not on a
// terminal) and prints "N passed, M failed". Leaf assertions are counted;
// a subtest's own summary point only counts when it failed with no failing
// assertion inside (a crash, a timeout, a missed plan). Each failure is
// named first, by its path of subtests, so that the last lines of a red
// run say which test it was.
// usage: node .ci/tap-count.mjs LOG EXIT_STATUS
import { readFileSync } from 'node:fs';

const [logPath, statusArg = '0'] = process.argv.slice(2);
const lines = readFileSync(logPath, 'utf8').split('\n');
let passed = 0;
let failed = 0;
const failures = [];
// For each open subtest (by indentation): its name, and failures counted inside it so far.
const open = [];

for (const line of lines) {
  const subtest = /^( *)# Subtest: ?(.*)$/.exec(line);
  if (subtest) {
    open.push({ indent: subtest[1].length, name: subtest[2], failuresBefore: failed });
    continue;
  }
  const point = /^( *)(not ok|ok) \d+(?: - )?(.*)$/.exec(line);
  if (!point) continue;
  const indent = point[1].length;
  const ok = point[2] === 'ok';
  const skipped = /# (SKIP|TODO)\b/i.test(line);
  const top = open.at(-1);
  const where = () => open.map((s) => s.name).join(' > ');
  if (top && top.indent === indent) {
    open.pop();
    if (!ok && !skipped && failed === top.failuresBefore) {
      failed++;
      failures.push([where(), top.name].filter(Boolean).join(' > '));
    }
    continue;
  }
  if (skipped) continue;
  if (ok) passed++;
  else {
    failed++;
    failures.push([where(), point[3]].filter(Boolean).join(' > '));
  }
}

const status = Number(statusArg);
for (const name of failures) console.log(`failed: ${name}`);
if (status !== 0 && failed === 0) failed = 1; // the run failed outside any test (build, typecheck, coverage)
console.log(`${passed} passed, ${failed} failed`);
process.exit(status !== 0 ? status : failed > 0 ? 1 : 0);
