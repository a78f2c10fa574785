import { existsSync, lstatSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULTS } from '../../src/config/options.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The audit log never writes through a symbolic link at its path (someone
 * who can write to its directory could point it at any file qmp-mux may
 * write): refused before start-up, and on reopen and rotation.
 */

const VICTIM = 'the victim file, untouched\n';

t.test('--check-config and start-up refuse an audit path that is a symbolic link', async (t) => {
  const dir = socketDir(t);
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, VICTIM);
  const audit = join(dir, 'audit.jsonl');
  symlinkSync(victim, audit);
  const config = join(dir, 'mux.json');
  writeFileSync(config, JSON.stringify({ upstream: { connect: `unix:${dir}/qemu.sock` }, endpoints: [{ name: 'e', listen: `unix:${dir}/e.sock` }], audit: { path: audit } }));
  const message = `qmp-mux: audit (${audit}): is a symbolic link, which qmp-mux does not follow for the audit log; give the path of the file itself\n`;
  for (const args of [['--check-config'], []]) {
    const run = runCli(t, ['--config', config, ...args]);
    t.same(await run.exited, { code: 2, signal: null }, `${args.join(' ') || 'start-up'}: exit status 2`);
    t.equal(run.stderr(), message);
  }
  t.equal(readFileSync(victim, 'utf8'), VICTIM);
});

t.test('a link planted at the path is refused on reopen, and at rotation links are moved, never written through', async (t) => {
  if (!needQemu(t)) return;
  const dir = socketDir(t);
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, VICTIM);
  const path = join(dir, 'audit.jsonl');
  const qemu = await startQemu(t);
  const mux = await startMux(t, qemu.monitors[0]!, {
    endpoints: [{ policy: { allow: ['*'], deny: ['x-big'] } }],
    audit: { ...DEFAULTS.audit, path, record: 'commands', arguments: true, rotate: { maxBytes: 64 * 1024, keep: 2 } },
  });
  const c = await TestClient.connect(mux.path);
  await c.negotiate();
  const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
  await c.execute('query-status', undefined, 'first');
  await eventually(() => lines(path).length === 1, 'the first line');

  // logrotate moved the file; an attacker put a link in its place before qmp-mux reopened it.
  renameSync(path, `${path}.moved`);
  symlinkSync(victim, path);
  mux.mux.audit?.reopen();
  await c.execute('query-status', undefined, 'while-linked');
  const error = await eventually(() => mux.logs.find((l) => l.includes('cannot open the audit log')), 'the error');
  t.match(error, new RegExp(`ERROR cannot open the audit log; will retry path=\\S+ error="${path.replace(/[.]/g, '\\.')} is a symbolic link, which qmp-mux does not follow for the audit log; give the path of the file itself"`));
  t.equal(readFileSync(victim, 'utf8'), VICTIM, 'nothing was written through the link');
  unlinkSync(path);
  mux.mux.audit?.reopen();
  await eventually(() => lines(path).length === 1, 'the waiting line in a new file');
  t.match(lines(path)[0], /"id":"while-linked"/, 'the line that waited is written once the path is a file again');
  t.ok(lstatSync(path).isFile());

  // Links at the names rotation moves files to are replaced by the rename, not followed.
  symlinkSync(victim, `${path}.1`);
  const big = 'b'.repeat(30_000);
  for (let i = 0; i < 4; i++) await c.execute('x-big', { data: big }, i);
  // The last record in the current file: the rotation is over (checking the files one by one could see it halfway).
  await eventually(() => lines(path).some((l) => /"id":3[,}]/.test(l)), 'a rotation, and the last record written after it');
  t.ok(existsSync(`${path}.2`) && lines(`${path}.1`).length > 0, 'the older records moved along');
  t.equal(readFileSync(victim, 'utf8'), VICTIM, 'the victim is untouched after rotation');
  t.ok(lstatSync(`${path}.1`).isFile() && lstatSync(path).isFile(), 'the audit files are regular files');
  t.ok(lstatSync(`${path}.2`).isSymbolicLink(), 'the planted link was moved along as a link');
});
