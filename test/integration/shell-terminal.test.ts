import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { MAIN } from '../fixtures/cli.ts';
import { named, waitingFor } from '../fixtures/context.ts';
import { startMux, type Mux, type MuxOptions } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';
import { inputRow, needTmux, Terminal } from '../fixtures/tmux.ts';

/**
 * The shell as a person uses it: in a real terminal (tmux), with keys
 * pressed and the screen read back, against a real QEMU behind qmp-mux.
 */

const PROMPT = '(QEMU) ';

function shell(t: Parameters<typeof Terminal.start>[0], args: string[], home: string): Promise<Terminal> {
  // Wide enough for the longest line a test waits for (the run's temporary directory is in it) to fit on one row.
  return Terminal.start(t, [process.execPath, MAIN, 'shell', ...args], { env: { HOME: home }, width: 120 });
}

/**
 * A shell in a terminal, through qmp-mux in front of a real QEMU, at a
 * prompt with what completion needs learned; undefined (the test skipped)
 * without QEMU or tmux.
 */
async function shellAtPrompt(t: Parameters<typeof Terminal.start>[0], endpoint?: MuxOptions['endpoints']): Promise<{ mux: Mux; term: Terminal } | undefined> {
  if (!needQemu(t) || !needTmux(t)) return undefined;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, endpoint === undefined ? {} : { endpoints: endpoint });
  const term = await shell(t, ['--connect', mux.path, '--no-history'], socketDir(t));
  await term.waitForLine(/^\(QEMU\)$/);
  // The first prompt may come before completion has learned the commands (it
  // waits at most a second for them). A command's reply comes after theirs,
  // on the same connection: once it shows, completion knows what it needs.
  await term.type('query-name');
  await term.press('Enter');
  await term.waitFor((s) => s.includes('{}') && inputRow(s) === '(QEMU)', 'the reply to query-name, and the prompt again');
  return { mux, term };
}

/*
 * readline takes a Tab for completion only when it is the last key of what
 * it reads at once (a pasted Tab is a character), so each Tab here is
 * pressed after the effect of the keys before it has shown.
 */
t.test('Tab completes command names, argument names (nested, by variant) and enum values', async (t) => {
  const at = await shellAtPrompt(t);
  if (!at) return;
  const { term } = at;

  await term.type('query-sta');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-stat`, 'the common prefix of the command names');
  await term.press('Tab');
  await term.waitForLine(/^query-stats\s+query-stats-schemas\s+query-status\s*$/);
  await term.type('u');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-status`, 'a unique command name');
  await term.waitFor(async () => (await term.cursor()).x === `${PROMPT}query-status `.length, 'the cursor after the space that follows the name');
  t.pass('with the space after it');
  await term.press('C-u');

  await term.type('blockdev-add driver=qco');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}blockdev-add driver=qcow`, 'an enum value, as far as it is unique');
  await term.press('Tab');
  await term.waitForLine(/^qcow\s+qcow2\s*$/);
  await term.type('2 pass-d');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}blockdev-add driver=qcow2 pass-discard-`, 'an argument name of the qcow2 variant');
  await term.press('Tab');
  const listed = await term.waitForLine(/^pass-discard-request=\s+pass-discard-snapshot=\s+pass-discard-other=\s*$/);
  t.pass(`the argument names are offered: ${listed.find((l) => l.startsWith('pass-discard-request'))}`);
  await term.type('other=t');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s).endsWith('pass-discard-other=true'), 'a boolean value');

  await term.type('file.dri');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s).endsWith('pass-discard-other=true file.driver='), 'a nested argument name');
  await term.type('fi');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s).endsWith('file.driver=file'), 'a nested enum value');
  await term.type('file.fil');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s).endsWith('file.driver=file file.filename='), "the nested variant's argument, once file.driver is set");
  await term.press('Left', 'Left', 'C-c');
  await term.waitFor((s) => inputRow(s) === '(QEMU)', 'Ctrl-C clears the line, wherever the cursor is');
  await term.press('C-c');
  t.equal(await term.exited(), 0, 'Ctrl-C on an empty line quits');
});

t.test('Ctrl-C at TRANS> clears the line, then abandons the transaction; the shell goes on', async (t) => {
  const at = await shellAtPrompt(t);
  if (!at) return;
  const { term } = at;
  await term.type('transaction(');
  await term.press('Enter');
  await term.waitFor((s) => inputRow(s) === 'TRANS>', 'the transaction prompt');
  for (const action of ['block-dirty-bitmap-add node=drive0 name=b0', 'abort']) {
    await term.type(action);
    await term.press('Enter');
  }
  await term.type('abo');
  await term.waitFor((s) => inputRow(s) === 'TRANS> abo', 'a third action half typed');
  await term.press('C-c');
  await term.waitFor((s) => inputRow(s) === 'TRANS>', 'the first Ctrl-C clears the typed line, the transaction still open');
  await term.press('C-c');
  const screen = await term.waitFor((s) => inputRow(s) === '(QEMU)', 'the second abandons the transaction: the normal prompt');
  t.equal(screen[screen.lastIndexOf('(QEMU)') - 1], 'transaction abandoned (2 actions)', 'said once, right above it');
  t.equal(screen.filter((l) => l.startsWith('transaction abandoned')).length, 1, 'and only once');
  await term.type('query-name');
  await term.press('Enter');
  await term.waitFor((s) => s.filter((l) => l === '{}').length === 2 && inputRow(s) === '(QEMU)', 'a command runs as one, not as an action');
  await term.press('C-c');
  t.equal(await term.exited(), 0, 'Ctrl-C on an empty line at the normal prompt quits');
});

t.test("completion follows the endpoint's policy", async (t) => {
  const at = await shellAtPrompt(t, [{ policy: { allow: ['*'], deny: ['quit'] } }]);
  if (!at) return;
  const { term } = at;
  await term.type('qu');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-`, 'with quit denied, every command starting qu starts query-');
  await term.press('C-u', 'C-d');
  t.equal(await term.exited(), 0);
});

t.test('an event printed while a line is half typed leaves the typed text and the cursor where they were', async (t) => {
  const at = await shellAtPrompt(t);
  if (!at) return;
  const { mux, term } = at;
  await term.type('query-sta');
  await term.press('Left', 'Left');
  await term.waitFor(async () => (await term.cursor()).x === PROMPT.length + 'query-s'.length, 'the cursor moved left');

  const other = named('the other client', await waitingFor('the other client to connect', QmpClient.connect(mux.path)));
  t.teardown(() => other.close());
  await other.execute('stop');
  await other.execute('cont');
  // The event and the redrawn prompt are separate writes: wait for both.
  const screen = await term.waitFor((s) => s.some((l) => /^event RESUME \d\d:\d\d:\d\d\.\d{6}$/.test(l)) && inputRow(s).startsWith('(QEMU)'), 'the events, then the prompt');
  t.ok(screen.some((l) => /^event STOP \d\d:\d\d:\d\d\.\d{6}$/.test(l)), 'the events are shown as they come, above the prompt');
  t.equal(inputRow(screen), `${PROMPT}query-sta`, 'the half-typed line is intact below them');
  t.equal(screen.indexOf(inputRow(screen)), screen.findIndex((l) => l.startsWith('event RESUME')) + 1, 'right below the last event');
  await term.waitFor(async () => (await term.cursor()).x === PROMPT.length + 'query-s'.length, 'the cursor back where it was');
  t.pass('the cursor is where it was');
  await term.type('X');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-sXta`, 'typing goes on at the cursor');
  await term.press('C-e', 'BSpace', 'BSpace', 'BSpace');
  await term.type('tatus');
  await term.press('Enter');
  await term.waitForLine(/^\{"status":"running","singlestep":false,"running":true\}$/);

  await term.waitForLine(/^\(QEMU\)$/);
  await term.type(`human-monitor-command command-line="${'x'.repeat(120)}`);
  await term.waitFor((s) => s.filter((l) => l.includes('xxxx')).length === 2, 'a line that wraps');
  for (const [event, more] of [['STOP', 'yy'], ['RESUME', '']] as const) {
    // The screen already shows a STOP and a RESUME from above: wait for one more.
    const shown = (s: string[]): number => s.filter((l) => l.startsWith(`event ${event} `)).length;
    const before = shown(await term.screen());
    await other.execute(event === 'STOP' ? 'stop' : 'cont');
    const screen = await term.waitFor((s) => shown(s) > before && inputRow(s).includes('xxxx'), `another event ${event}, then the line`);
    const rows = screen.filter((l) => l.includes('xxxx'));
    t.equal(rows.length, 2, `${event}: a line wrapped over two rows is redrawn whole`);
    const last = screen.map((l) => l.startsWith(`event ${event} `)).lastIndexOf(true);
    t.equal(screen.indexOf(rows[0]!), last + 1, `${event}: right below the event, no blank row`);
    await term.type(more);
  }
  await term.waitFor((s) => s.some((l) => l.endsWith('xxyy')), 'the typing between the events, echoed');
  t.pass('typing went on between the events');
  await other.execute('cont');
  await term.press('C-u', 'C-d');
  t.equal(await term.exited(), 0);
});

t.test('history persists across runs, in the file given', async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!);
  const home = socketDir(t);
  const history = join(home, 'hist');
  const first = await shell(t, ['--connect', mux.path, '--history', history], home);
  await first.waitForLine(/^\(QEMU\)$/);
  for (const line of ['query-name', 'query-status', 'query-version']) {
    await first.type(line);
    await first.press('Enter');
  }
  await first.waitForLine(/"qemu":\{"micro"/);
  await first.press('C-d');
  t.equal(await first.exited(), 0);
  t.same(readFileSync(history, 'utf8'), 'query-name\nquery-status\nquery-version\n');

  const second = await shell(t, ['--connect', mux.path, '--history', history], home);
  await second.waitForLine(/^\(QEMU\)$/);
  await second.press('Up');
  await second.waitFor((s) => inputRow(s) === `${PROMPT}query-version`, 'Up brings back the last command of the last run');
  await second.press('Up', 'Up');
  await second.waitFor((s) => inputRow(s) === `${PROMPT}query-name`, 'and the ones before');
  await second.press('Enter');
  await second.waitForLine(/^\{\}$/);
  await second.press('C-d');
  t.equal(await second.exited(), 0);
  t.same(readFileSync(history, 'utf8').split('\n'), ['query-name', 'query-status', 'query-version', 'query-name', '']);
});

t.test('QEMU restarting behind qmp-mux: the shell says so, shows the new version, and carries on', async (t) => {
  if (!needQemu(t) || !needTmux(t)) return;
  const dir = socketDir(t);
  const first = await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'first'] });
  const mux = await startMux(t, first.monitors[0]!);
  const term = await shell(t, ['--connect', mux.path, '--no-history'], dir);
  await term.waitForLine(/^Connected to QEMU 7\.2\.\d+ .*at unix:/);
  await term.waitForLine(/^\(QEMU\)$/);
  await term.type('query-name');
  await term.press('Enter');
  await term.waitForLine(/^\{"name":"first"\}$/);
  await term.type('query-st');
  await first.stop();
  await term.waitForLine(/^connection lost: unix:.*: the server closed the connection; reconnecting\.\.\.$/);
  await startQemu(t, { dir, names: ['qemu.sock'], args: ['-name', 'second'] });
  const screen = await term.belowRow(/^reconnected: QEMU 7\.2\.\d+/);
  t.equal(inputRow(screen), `${PROMPT}query-st`, 'what was being typed survives');
  await term.press('C-u');
  await term.type('query-name');
  await term.press('Enter');
  await term.waitForLine(/^\{"name":"second"\}$/);
  await term.type('query-sta');
  await term.press('Tab');
  await term.waitFor((s) => inputRow(s) === `${PROMPT}query-stat`, 'completion works with the new QEMU');
  await term.press('C-u', 'C-d');
  t.equal(await term.exited(), 0);
});
