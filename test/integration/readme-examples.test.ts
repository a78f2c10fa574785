import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { QmpClient } from '../../src/client/qmp-client.ts';
import { eventually } from '../fixtures/context.ts';
import { MAIN, runCli, type Running } from '../fixtures/cli.ts';
import { readmeExamples } from '../fixtures/consumer.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { indentedBlocks, mapPaths, normal } from '../fixtures/readme.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The README's client examples, run as written against real QEMUs: each
 * `$ qmp-mux exec|events|wait-ready ...` line in a shell, its output
 * compared with the lines under it; and the lines qmp-mux prints once it
 * serves. (The shell's transcript: readme-shell.test.ts; the TypeScript
 * examples: readme-library.test.ts.) The paths the README uses are mapped
 * to the test's; what differs from run to run (timestamps, QEMU's exact
 * version) is compared as a pattern.
 */

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

