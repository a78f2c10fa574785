import { closeSync, openSync } from 'node:fs';
import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { FakeQemu } from '../fixtures/fake-qemu.ts';

/**
 * A client whose output cannot be written (a full disk: /dev/full) says so
 * in one line and exits 5, whatever it was writing; a reader that goes
 * away is another matter (exit 0, see processIo).
 */

t.test('every client: one line on stderr and exit 5, no stack trace', async (t) => {
  const fake = await FakeQemu.start(t);
  const full = openSync('/dev/full', 'w');
  t.teardown(() => closeSync(full));
  const runs: [string, string[], string?][] = [
    ['exec', ['query-name']],
    ['exec', ['--help']],
    ['wait-ready', []],
    ['shell', [], 'query-name\n'],
  ];
  for (const [name, args, input] of runs) {
    const run = runCli(t, [name, '--connect', fake.path, ...args], { stdout: full, ...(input === undefined ? {} : { input }) });
    t.same(await run.exited, { code: 5, signal: null }, `${name} ${args.join(' ')}: exit 5`);
    t.equal(run.stderr(), `qmp-mux ${name}: cannot write the output: ENOSPC: no space left on device, write\n`, `${name} ${args.join(' ')}: one line`);
  }
  const before = fake.received.length;
  const events = runCli(t, ['events', '--connect', fake.path], { stdout: full });
  await fake.until(() => fake.received.length > before);
  fake.emit('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n');
  t.same(await events.exited, { code: 5, signal: null }, 'events: exit 5');
  t.equal(events.stderr(), 'qmp-mux events: cannot write the output: ENOSPC: no space left on device, write\n');
});
