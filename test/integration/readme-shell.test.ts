import t from 'tap';
import { MAIN, runCli } from '../fixtures/cli.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { indentedBlocks, mapPaths, normal } from '../fixtures/readme.ts';
import { socketDir } from '../fixtures/tmp.ts';
import { needTmux, Terminal } from '../fixtures/tmux.ts';

/**
 * The README's transcript of `qmp-mux shell`, typed into a real terminal
 * (Tab included) against a real QEMU, the screen compared line by line.
 */

t.test("the shell's transcript, typed into a real terminal", async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const block = indentedBlocks().find((b) => b[0]?.startsWith('$ qmp-mux shell'))!;
  const dir = socketDir(t);
  const qemu = await startQemuReady(t, { dir, names: ['vm1.qmp', 'other.qmp'], monitors: 2, args: ['-blockdev', 'driver=null-co,node-name=drive0'] });
  const paths = { '/run/vm1.qmp': qemu.monitors[0]! };
  const [program, ...args] = mapPaths(block[0]!.slice(2), paths).split(' ');
  t.equal(program, 'qmp-mux');
  const term = await Terminal.start(t, [process.execPath, MAIN, ...args, '--no-history'], { env: { HOME: dir }, height: 60, width: 100 });
  const rows = async (): Promise<string[]> => (await term.screen()).map((l) => normal(mapPaths(l, { [qemu.monitors[0]!]: '/run/vm1.qmp' })));
  /** Waits until the screen shows `expected` (normalized) after row `after`; returns that row. */
  const see = async (expected: string, after: number): Promise<number> => {
    const want = normal(expected);
    let found = -1;
    await term.waitFor(async () => (found = (await rows()).findIndex((r, i) => i > after && r === want)) >= 0, `"${expected}" below row ${after}`);
    return found;
  };
  let row = await see(block[1]!, -1);
  // The first prompt may come before completion has learnt the commands (it waits for them a second at most); the
  // reply to a command typed first comes after theirs, so once it shows, a Tab completes. Not in the README's transcript.
  /** The input row, read back: the last non-empty one. */
  const inputRow = async (): Promise<string> => normal([...(await rows())].reverse().find((r) => r !== '') ?? '');
  await term.waitFor(async () => (await inputRow()) === '(QEMU)', 'the first prompt');
  await term.type('query-name');
  await term.press('Enter');
  row = await see('{}', row);
  let typed = '';
  const lines = block.slice(2);
  for (const [i, line] of lines.entries()) {
    const prompt = /^(\(QEMU\) |TRANS> )(.*)$/.exec(line);
    if (prompt) {
      const [, shown, input] = prompt;
      const tab = input!.endsWith('<Tab>');
      const text = tab ? input!.slice(0, -'<Tab>'.length) : input!;
      // A line that continues what a Tab left is already on the screen; any other is typed afresh.
      if (typed === '' || !text.startsWith(typed)) {
        if (typed !== '') await term.press('C-u');
        await term.type(text);
      }
      typed = text;
      await term.waitFor(async () => (await inputRow()) === normal(`${shown}${text}`), `"${shown}${text}" on the input row`);
      if (!tab) {
        await term.press('Enter');
        typed = '';
        row = await see(line, row - 1);
        continue;
      }
      // What the Tab must bring: the next line, as the input row or as a list of candidates.
      const next = lines[i + 1]!;
      const nextPrompt = /^(\(QEMU\) |TRANS> )(.*?)(<Tab>)?$/.exec(next);
      const done = async (): Promise<boolean> =>
        nextPrompt ? (await inputRow()) === normal(`${nextPrompt[1]}${nextPrompt[2]}`) : (await rows()).some((r, at) => at > row && r === normal(next));
      await term.press('Tab');
      await term.waitFor(done, `the Tab after "${line}" to show "${next}"`);
      continue;
    }
    const event = /^event (STOP|RESUME) /.exec(line);
    if (event) {
      // From another client, as in the README (the shell has QEMU's first monitor; this one, the second).
      const run = runCli(t, ['exec', '--connect', qemu.monitors[1]!, event[1] === 'STOP' ? 'stop' : 'cont']);
      await run.exited;
    }
    row = await see(line, row);
  }
  await term.press('C-d');
  t.equal(await term.exited(), 0, 'Ctrl-D quits');
});
