import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { runCli } from '../fixtures/cli.ts';
import { consumer, readmeExamples } from '../fixtures/consumer.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';
import { needProgram, runProgram } from '../fixtures/programs.ts';
import { mapPaths, normal } from '../fixtures/readme.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The README's TypeScript examples, each compiled and run against a real
 * QEMU, what it prints compared with its comments.
 */

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
