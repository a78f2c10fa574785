import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import ts from 'typescript';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { eventually } from '../fixtures/context.ts';
import { MAIN, runCli, type Running } from '../fixtures/cli.ts';
import { consumer, readmeExamples, ROOT } from '../fixtures/consumer.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { needProgram, runProgram } from '../fixtures/programs.ts';
import { socketDir } from '../fixtures/tmp.ts';
import { needTmux, Terminal } from '../fixtures/tmux.ts';

/**
 * The README's client and library examples, run as written against real
 * QEMUs: each `$ qmp-mux exec|events|wait-ready ...` line in a shell (its
 * output compared with the lines under it), the shell's transcript typed
 * into a real terminal (Tab included), and each TypeScript example compiled
 * and run (what it prints compared with its comments). The paths the
 * README uses are mapped to the test's; what differs from run to run
 * (timestamps, QEMU's exact version) is compared as a pattern.
 */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The README's indented code blocks, each as its lines without the indentation. */
function indentedBlocks(): string[][] {
  const blocks: string[][] = [];
  let current: string[] | undefined;
  let fenced = false;
  for (const line of README.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (!fenced && line.startsWith('    ')) {
      (current ??= []).push(line.slice(4));
    } else if (line.trim() !== '' || current === undefined) {
      if (current) blocks.push(current);
      current = undefined;
    }
  }
  if (current) blocks.push(current);
  return blocks;
}

interface CommandExample {
  command: string;
  output: string[];
}

/** `$ COMMAND` lines of the client subcommands (or a pipe into one), with the output lines under each. */
function commandExamples(): CommandExample[] {
  const out: CommandExample[] = [];
  for (const block of indentedBlocks()) {
    if (block.some((l) => l.startsWith('(QEMU) '))) continue;
    let current: CommandExample | undefined;
    for (const line of block) {
      if (line.startsWith('$ ')) {
        current = { command: line.slice(2), output: [] };
        // Those over TLS need the worked example's certificates: tls-readme.test.ts runs them.
        if (/(^|\| )qmp-mux (exec|events|wait-ready)\b/.test(current.command) && !current.command.includes(' tls:')) out.push(current);
      } else current?.output.push(line);
    }
  }
  return out;
}

/** What may differ between the README and a run: timestamps, QEMU's version, its package, the time of day. */
function normal(text: string): string {
  return text
    .replace(/"seconds":\d+,"microseconds":\d+/g, '"seconds":N,"microseconds":N')
    .replace(/QEMU \d+\.\d+\.\d+( \([^)]*\))?/g, 'QEMU VERSION')
    .replace(/micro: \d+/g, 'micro: N')
    .replace(/^(event \S+) \d\d:\d\d:\d\d\.\d{6}/, '$1 TIME')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Replaces each README path with the test's (longest first, so no path is cut inside another). */
function mapPaths(text: string, paths: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(paths).sort((a, b) => b[0].length - a[0].length)) out = out.split(from).join(to);
  return out;
}

/** A directory with `qmp-mux` on the PATH (this build) and a qmp-mux serving ./qmp-mux.sock in front of a QEMU. */
async function muxInDirectory(t: Test, qemuArgs: string[] = []): Promise<{ dir: string; env: NodeJS.ProcessEnv; mux: Running }> {
  const dir = socketDir(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'qmp-mux'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(join(bin, 'qmp-mux'), 0o755);
  const qemu = await startQemu(t, { dir, names: ['qemu.sock'], args: qemuArgs });
  const mux = runCli(t, ['--upstream', `unix:${qemu.monitors[0]!}`, '--listen', `unix:${join(dir, 'qmp-mux.sock')}`], { cwd: dir });
  await mux.waitFor(/QEMU connected/);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  delete env.QMP_SOCKET;
  return { dir, env, mux };
}

async function shell(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn('bash', ['-c', `${command} 2>&1`], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.once('close', r));
  return out;
}

t.test('the README has the examples this test runs', async (t) => {
  const commands = commandExamples().map((e) => e.command);
  t.ok(commands.some((c) => c.startsWith('qmp-mux exec')) && commands.some((c) => c.startsWith('qmp-mux events')) && commands.some((c) => c.startsWith('qmp-mux wait-ready')), commands.join('\n'));
  t.ok(indentedBlocks().some((b) => b[0]?.startsWith('$ qmp-mux shell')), 'the shell transcript');
  t.ok(readmeExamples().length >= 3, 'the TypeScript examples');
});

t.test('every `$ qmp-mux exec|events|wait-ready` example prints what the README shows', async (t) => {
  if (!needQemu(t)) return;
  // One with a device net1 that unplugs at once (USB), for device_del --wait-event; held at start (-S), so no guest code runs.
  const pcDir = socketDir(t);
  const pc = await startQemuReady(t, { dir: pcDir, names: ['pc.sock'], args: ['-machine', 'pc', '-S', '-device', 'qemu-xhci', '-device', 'usb-tablet,id=net1'] });
  const main = await muxInDirectory(t);
  for (const example of commandExamples()) {
    const paths = { '/run/vm1.qmp': pc.monitors[0]!, '/run/qmp-mux/vm1/qmp.sock': join(main.dir, 'qmp-mux.sock') };
    const command = mapPaths(example.command, paths);
    let printed: string;
    if (/^qmp-mux events .*SHUTDOWN/.test(command)) {
      // SHUTDOWN comes when QEMU quits: a QEMU of its own, told to once the example is listening.
      const own = await muxInDirectory(t);
      const running = shell(command, own.dir, own.env);
      const control = await QmpClient.connect(join(own.dir, 'qmp-mux.sock'));
      await eventually(async () => (await control.execute('__org.qmp-mux_query-clients')).filter((c) => c.negotiated).length === 2, 'the example to negotiate');
      await control.execute('quit');
      await control.done;
      printed = await running;
    } else {
      printed = await shell(command, main.dir, main.env);
    }
    const shown = mapPaths(printed, Object.fromEntries(Object.entries(paths).map(([a, b]) => [b, a])));
    t.same(shown.trimEnd().split('\n').map(normal), example.output.map(normal), `$ ${example.command}`);
  }
});

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

t.test('every TypeScript example, compiled and run against QEMU, prints what its comments say', async (t) => {
  if (!needQemu(t) || !needProgram(t, 'qemu-img', 'qemu-utils')) return;
  const dir = socketDir(t);
  // A disk for the backup under a lock (Locks' worked example), backed up through a qmp-mux of its own.
  const qemu = await startQemuReady(t, { dir, names: ['vm1.qmp', 'qemu-vm1.qmp', 'backup-vm1.qmp'], monitors: 3, args: ['-blockdev', 'driver=null-co,node-name=drive0,size=1048576,read-zeroes=on'] });
  const target = join(dir, 'vm1-drive0.qcow2');
  const made = await runProgram('qemu-img', ['create', '-q', '-f', 'qcow2', target, '1M']);
  t.equal(made.status, 0, `qemu-img makes the backup's target: ${made.stderr}`);
  const paths = { '/run/vm1.qmp': qemu.monitors[0]!, '/run/qemu/vm1.qmp': qemu.monitors[1]!, '/run/qmp-mux/vm1.sock': join(dir, 'tools.sock'), '/backup/vm1-drive0.qcow2': target };
  const examples = readmeExamples();
  const project = consumer(t);
  // Transpiled one by one, not type-checked again: declarations.test.ts type-checks these examples, as they are,
  // under the same strict settings (a tsc run is most of a minute on a loaded machine).
  for (const [i, code] of examples.entries()) {
    const js = ts.transpileModule(mapPaths(code, paths), { fileName: `example${i}.ts`, reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    t.same(js.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `example ${i} transpiles`);
    writeFileSync(join(project, `example${i}.js`), js.outputText);
  }
  examples.forEach((code, i) => {
    for (const path of code.match(/unix:\/[^'"\s]+/g) ?? []) t.ok(path.slice('unix:'.length) in paths, `example ${i}: ${path} is mapped to the test's`);
  });
  for (const [i, code] of examples.entries()) {
    const locking = code.includes('withLock');
    // A qmp-mux of its own, in a process of its own, for the backup under a lock.
    const mux = locking ? runCli(t, ['--upstream', `unix:${qemu.monitors[2]!}`, '--listen', `unix:${join(dir, 'tools.sock')}`]) : undefined;
    await mux?.waitFor(/clients connect at/);
    const run = await runProgram(process.execPath, [join(project, `example${i}.js`)], { cwd: project });
    t.equal(run.status, 0, `example ${i} runs: ${run.stderr}`);
    if (mux) {
      const ended = await mux.waitFor(/lock ended .*why=unlock.*\n/);
      t.match(mux.stderr().slice(0, ended.index), /lock granted .*mode=write reason="nightly backup of drive0"/, `example ${i} took the lock, then released it`);
      mux.child.kill('SIGTERM');
      t.same(await mux.exited, { code: 0, signal: null });
    }
    const printed = run.stdout.split('\n').map(normal);
    const expected = [...code.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => normal(m[1]!));
    let at = 0;
    for (const want of expected) {
      const found = printed.indexOf(want, at);
      t.ok(found >= 0, `example ${i} prints "${want}" (after what came before): ${JSON.stringify(printed)}`);
      if (found >= 0) at = found + 1;
    }
  }
});

t.test("the lines qmp-mux prints on stdout once it serves are the README's", async (t) => {
  if (!needQemu(t)) return;
  const shown = indentedBlocks().find((b) => b[0]?.startsWith('qmp-mux: clients connect at unix:'))!;
  t.equal(shown.length, 3, 'a unix endpoint, a TCP one, the metrics listener');
  const dir = socketDir(t);
  const mux = runCli(t, ['--listen', 'unix:qmp-mux.sock', '--listen', 'tcp:127.0.0.1:0', '--metrics', 'tcp:127.0.0.1:0'], { cwd: dir });
  const [, port] = await mux.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+) /);
  const [, metrics] = await mux.waitFor(/metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics\n/);
  const expected = shown.map((line) => line.replaceAll('/home/me', dir).replaceAll(':4444', `:${port}`).replaceAll(':9464', `:${metrics}`));
  t.same(mux.stdout().trimEnd().split('\n'), expected);
});

