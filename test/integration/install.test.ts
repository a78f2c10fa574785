import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runProgram, type Ran } from '../fixtures/programs.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The README's Install section: a package made with `npm pack` installs
 * with `npm install -g` and puts `qmp-mux` on the PATH; `npm start` passes
 * its arguments through. Offline and without scripts: the package has no
 * dependencies, and this build's dist/ is the one packed.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

function npm(args: string[], cwd = ROOT, program = 'npm'): Promise<Ran> {
  return runProgram(program, ['--offline', '--no-audit', '--no-fund', ...args], { cwd });
}

/** The README's line starting with `start`, in its Install section. */
function readmeLine(start: string): string {
  const line = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').find((l) => l.startsWith(start));
  if (line === undefined) throw new Error(`README: no line starting ${start}`);
  return line;
}

t.test('npm pack, then npm install -g: qmp-mux on the PATH, with the deployment examples', async (t) => {
  const dir = socketDir(t);
  const pack = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
  t.equal(pack.status, 0, 'npm pack');
  const [made] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  const files = made?.files.map((f) => f.path) ?? [];
  for (const path of ['dist/cli/main.js', 'dist/net/systemd.js', 'README.md', 'config/example.json', 'config/systemd/qmp-mux@.service', 'config/systemd/qmp-mux@.socket', 'config/systemd/vm1.json', 'config/container/compose.yaml']) {
    t.ok(files.includes(path), `the package holds ${path}`);
  }
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(manifest.scripts[script], `no ${script} script: nothing would run, or be asked about, when the package is installed`);
  const prefix = join(dir, 'prefix');
  const install = await npm(['install', '--global', '--prefix', prefix, join(dir, made!.filename)], dir);
  t.equal(install.status, 0, 'npm install -g');
  t.notMatch(install.stderr, /install-scripts|allow-scripts|allowScripts/i, `npm says nothing about install scripts: ${install.stderr}`);
  const bin = join(prefix, 'bin', 'qmp-mux');
  t.equal(realpathSync(bin), join(prefix, 'lib', 'node_modules', 'qmp-mux', 'dist', 'cli', 'main.js'));
  const run = await runProgram(bin, ['--version']);
  t.equal(run.stdout, `qmp-mux ${version}\n`, 'runs by its shebang');

  // The README's npx line, without a terminal (npx asks before installing on one, and fails without one unless --yes).
  const npxLine = readmeLine('Without installing: `npx ');
  const npx = /`npx ([^`]*) --help`/.exec(npxLine)?.[1]?.split(' ');
  t.same(npx, ['--yes', `--package=./qmp-mux-${version}.tgz`, 'qmp-mux'], 'the README runs npx with --yes');
  const cache = join(dir, 'npm-cache');
  const env = { ...process.env, npm_config_cache: cache, npm_config_offline: 'true', npm_config_update_notifier: 'false' };
  const viaNpx = await runProgram('npx', [...npx!, '--version'], { cwd: dir, env });
  t.equal(viaNpx.stdout, `qmp-mux ${version}\n`, `npx runs it from the tarball: ${viaNpx.stderr}`);
  const withoutYes = await runProgram('npx', [...npx!.filter((a) => a !== '--yes'), '--version'], { cwd: dir, env: { ...env, npm_config_cache: join(dir, 'other-cache') } });
  t.not(withoutYes.status, 0, 'without --yes and without a terminal, npx refuses (why the README says --yes)');
  const inClone = await runProgram('npx', ['.', '--version'], { cwd: ROOT, env });
  t.equal(inClone.stdout, `qmp-mux ${version}\n`, '`npx . --help` in the clone (built)');
});

t.test('.gitignore keeps npm pack\'s tarballs out of the repository', async (t) => {
  const ignored = readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n');
  t.ok(ignored.includes('*.tgz'), '*.tgz');
  // Without git, or outside a clone (status 128), there is nothing more to ask.
  const git = await runProgram('git', ['check-ignore', '-q', `qmp-mux-${version}.tgz`], { cwd: ROOT }).catch(() => undefined);
  if (git !== undefined && git.status !== 128) t.equal(git.status, 0, 'git agrees');
});

t.test('npm start -- ARGS: the arguments reach qmp-mux; --silent drops npm\'s own lines', async (t) => {
  const start = await npm(['start', '--silent', '--', '--version']);
  t.equal(start.status, 0);
  t.equal(start.stdout, `qmp-mux ${version}\n`);
  const bad = await npm(['start', '--silent', '--', '--bogus']);
  t.equal(bad.status, 2, 'and its exit status comes back');
});
