import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runProgram } from '../fixtures/programs.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The README's Install section: a package made with `npm pack` installs
 * with `npm install -g` and puts `qmp-mux` on the PATH; `npm start` passes
 * its arguments through. Offline and without scripts: the package has no
 * dependencies, and this build's dist/ is the one packed.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

async function npm(args: string[], cwd = ROOT): Promise<{ status: number | null; stdout: string }> {
  return runProgram('npm', ['--offline', '--no-audit', '--no-fund', ...args], { cwd });
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
  const prefix = join(dir, 'prefix');
  t.equal((await npm(['install', '--global', '--prefix', prefix, join(dir, made!.filename)], dir)).status, 0, 'npm install -g');
  const bin = join(prefix, 'bin', 'qmp-mux');
  t.equal(realpathSync(bin), join(prefix, 'lib', 'node_modules', 'qmp-mux', 'dist', 'cli', 'main.js'));
  const run = await runProgram(bin, ['--version']);
  t.equal(run.stdout, `qmp-mux ${version}\n`, 'runs by its shebang');
});

t.test('npm start -- ARGS: the arguments reach qmp-mux; --silent drops npm\'s own lines', async (t) => {
  const start = await npm(['start', '--silent', '--', '--version']);
  t.equal(start.status, 0);
  t.equal(start.stdout, `qmp-mux ${version}\n`);
  const bad = await npm(['start', '--silent', '--', '--bogus']);
  t.equal(bad.status, 2, 'and its exit status comes back');
});
