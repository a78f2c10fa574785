import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readConfig } from '../../src/config/file.ts';
import { needOpenssl } from '../fixtures/certificates.ts';
import { MAIN, runCli } from '../fixtures/cli.ts';
import { needProgram, runProgram } from '../fixtures/programs.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The README's worked example of remote access, run as written: its
 * openssl commands, its endpoint, its clients and what they print. Only
 * where things are differs: a temporary directory for /etc/qmp-mux/tls,
 * loopback and a free port for vm1.example.com:4444.
 */

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## Remote access: TLS and identities'), readme.indexOf('## Deploy'));

/** The indented code block of the section that holds `marker`, dedented. */
function block(marker: string): string {
  const blocks = section.split(/\n\n(?! {4})/).flatMap((chunk) => [...chunk.matchAll(/(?:^|\n)((?: {4}.*(?:\n|$))+)/g)].map((m) => m[1]!));
  const found = blocks.find((b) => b.includes(marker));
  if (found === undefined) throw new Error(`no code block with ${marker} in the README's Remote access`);
  return found.replace(/^ {4}/gm, '').trimEnd();
}

t.test("the README's worked example runs as written", async (t) => {
  if (!needOpenssl(t) || !needQemu(t)) return;
  const dir = socketDir(t);
  const made = await runProgram('bash', ['-euo', 'pipefail', '-c', block('openssl req -x509')], { cwd: dir });
  t.equal(made.status, 0, 'the commands succeed');
  for (const file of ['ca-cert.pem', 'server-cert.pem', 'server-key.pem', 'admin-cert.pem', 'admin-key.pem', 'collector-cert.pem', 'collector-key.pem']) t.ok(existsSync(join(dir, file)), file);
  t.match(execFileSync('openssl', ['x509', '-in', join(dir, 'server-cert.pem'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' }), /DNS:vm1\.example\.com, DNS:localhost, IP Address:127\.0\.0\.1/);

  const qemu = await startQemu(t);
  const endpoints = block('"identities"').replaceAll('/etc/qmp-mux/tls/', `${dir}/`).replace('tcp:0.0.0.0:4444', 'tcp:127.0.0.1:0');
  const config = join(dir, 'qmp-mux.json');
  writeFileSync(config, `{"upstream": {"connect": "unix:${qemu.monitors[0]}"}, ${endpoints}}`);
  const run = runCli(t, ['--config', config]);
  const port = Number((await run.waitFor(/clients connect at tcp:127\.0\.0\.1:(\d+) with TLS/))[1]);

  const session = block('$ qmp-mux exec --connect tls:');
  const steps = session.split(/^\$ /m).filter((s) => s !== '');
  t.equal(steps.length, 2, 'two commands shown');
  for (const step of steps) {
    const [command = '', ...output] = step.trimEnd().split('\n');
    const args = command.replace('vm1.example.com:4444', `127.0.0.1:${port}`).split(' ').slice(1);
    const ran = await runProgram(process.execPath, [MAIN, ...args], { cwd: dir });
    t.equal(ran.stdout + ran.stderr, `${output.join('\n')}\n`, `${command}: as the README shows`);
  }

  if (needProgram(t, 'socat', 'socat', ['-V'])) {
    const socat = block('socat - OPENSSL:').replace('vm1.example.com:4444', `127.0.0.1:${port}`).split(' ');
    const served = await runProgram(socat[0]!, ['-t', '5', ...socat.slice(1)], { cwd: dir, input: '{"execute":"qmp_capabilities"}' });
    t.match(served.stdout, /^\{"QMP": \{"version": [^\n]*\r\n\{"return": \{\}\}\r\n$/, 'socat, as shown');
  }
});

t.test("the README's upstream TLS configuration reads as it says", async (t) => {
  const upstream = readConfig(JSON.parse(`{${block('"connect": "tcp:vm1.example.com:4445"')}}`)).upstream;
  t.same(upstream, {
    mode: 'connect',
    address: { type: 'tcp', host: 'vm1.example.com', port: 4445 },
    takeover: false,
    tls: { cert: '/etc/qmp-mux/tls/qmp-mux-cert.pem', key: '/etc/qmp-mux/tls/qmp-mux-key.pem', ca: '/etc/qmp-mux/tls/ca-cert.pem', serverName: undefined, minVersion: 'TLSv1.2' },
  });
  const qemu = block('tls-creds-x509,id=tls0');
  t.match(qemu, /-chardev socket,id=mon0,host=0\.0\.0\.0,port=4445,server=on,wait=off,nodelay=on,tls-creds=tls0,tls-authz=authz0/, 'the QEMU side listens where qmp-mux connects');
});
