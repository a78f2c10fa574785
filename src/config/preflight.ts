import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, TlsError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { resolveId } from '../net/owner.ts';
import { readCredentials, type TlsFiles, type TlsVersion } from '../net/tls.ts';
import { MAX_SOCKET_PATH, probeBind, socketPathProblem } from '../net/unix-socket.ts';
import { auditPathProblem } from '../ops/audit-file.ts';
import { metricsAddressProblem } from '../ops/http-server.ts';
import { findProgram } from '../upstream/spawn-source.ts';
import { checkTakeover, movedPath } from '../upstream/takeover.ts';
import { remoteProblem } from '../downstream/endpoint-options.ts';
import type { EndpointOptions, Options } from './options.ts';
import { present } from '../util/assert.ts';

/** How long the private socket path of a spawned QEMU gets beyond the temporary directory. */
const PRIVATE_SOCKET_SUFFIX = '/qmp-mux-4194304-XXXXXX/qmp.sock'.length;

/**
 * Checks, before anything is started, that this machine will let qmp-mux
 * do what `options` ask: what start-up would refuse is refused here, with
 * the same message, whether for `--check-config` or for a real start.
 * Throws a ConfigError naming what is wrong.
 */
export async function preflight(options: Options, inherited: ReadonlySet<string> = new Set()): Promise<void> {
  const seen = new Map<string, string>();
  for (const endpoint of options.endpoints) {
    const where = `endpoint '${endpoint.name}' (${formatAddress(endpoint.address)})`;
    const key = formatAddress(endpoint.address);
    const other = seen.get(key);
    if (other !== undefined && !(endpoint.address.type === 'tcp' && endpoint.address.port === 0)) throw new ConfigError(`${where}: the same address as endpoint '${other}'`);
    seen.set(key, endpoint.name);
    if (endpoint.tls) checkTls(endpoint.tls, where);
    // A socket systemd passed is systemd's: its address is not for qmp-mux to bind.
    if (!inherited.has(endpoint.name)) await checkEndpoint(endpoint, where);
  }
  if (options.audit) {
    const problem = await auditPathProblem(options.audit.path);
    if (problem !== undefined) throw new ConfigError(`audit (${options.audit.path}): ${problem}`);
  }
  if (options.metrics) {
    const { listen, allowRemote, tls } = options.metrics;
    const problem = metricsAddressProblem(listen, allowRemote);
    if (problem !== undefined) throw new ConfigError(problem);
    if (tls) checkTls(tls, `metrics (${formatAddress(listen)})`);
  }
  const u = options.upstream;
  switch (u.mode) {
    case 'connect':
      if (u.tls) checkTls(u.tls, `upstream (${formatAddress(u.address)})`);
      if (u.address.type === 'unix') {
        checkPathLength(u.address.path, `upstream (${formatAddress(u.address)})`);
        if (u.takeover) await checkTakeoverPath(u.address.path);
      }
      return;
    case 'listen':
      await checkListen(u.address, `upstream (listen:${formatAddress(u.address)})`);
      return;
    case 'spawn': {
      const program = present(u.command[0], 'the QEMU program');
      if (!findProgram(program)) throw new ConfigError(`${program}: ${program.includes('/') ? 'not found, or not executable' : 'not found on PATH'}`);
      const base = tmpdir();
      if (Buffer.byteLength(base) + PRIVATE_SOCKET_SUFFIX > MAX_SOCKET_PATH) {
        throw new ConfigError(`the temporary directory ${base} is too long a path for QEMU's private socket in it (unix socket paths are at most ${MAX_SOCKET_PATH} bytes); set TMPDIR to a shorter one`);
      }
      const problem = await probeBind(join(base, 'qmp-mux-probe'));
      if (problem !== undefined) throw new ConfigError(`the temporary directory ${base} (TMPDIR): ${problem}`);
      return;
    }
  }
}

/** TLS files that start-up could not use: each read and checked, as start-up and reload read them. */
function checkTls(files: TlsFiles & { minVersion: TlsVersion }, where: string): void {
  try {
    readCredentials(files, files.minVersion, { cert: 'tls.cert', key: 'tls.key', ca: 'tls.ca' });
  } catch (e) {
    if (e instanceof TlsError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
}

async function checkEndpoint(endpoint: EndpointOptions, where: string): Promise<void> {
  const a = endpoint.address;
  const remote = remoteProblem(endpoint, a);
  if (remote !== undefined) throw new ConfigError(`${where}: ${remote}`);
  for (const [kind, id] of [['user', endpoint.socket.owner], ['group', endpoint.socket.group]] as const) {
    if (id === undefined) continue;
    try {
      resolveId(kind, id);
    } catch (e) {
      throw new ConfigError(`${where}: ${(e as Error).message}`);
    }
  }
  await checkListen(a, where);
}

/** What binding a listener at `a` needs: a short enough path in a writable directory, with nothing live in the way. */
async function checkListen(a: Address, where: string): Promise<void> {
  if (a.type !== 'unix') return;
  checkPathLength(a.path, where);
  const problem = (await probeBind(a.path)) ?? (await socketPathProblem(a.path));
  if (problem !== undefined) throw new ConfigError(`${where}: ${problem}`);
}

function checkPathLength(path: string, where: string): void {
  const length = Buffer.byteLength(path);
  if (length > MAX_SOCKET_PATH) throw new ConfigError(`${where}: the path is ${length} bytes; unix socket paths are at most ${MAX_SOCKET_PATH}`);
}

/** A takeover needs QEMU's live socket at the path (or one taken over by a qmp-mux that died). */
async function checkTakeoverPath(path: string): Promise<void> {
  const where = `upstream (unix:${path}, takeover)`;
  const problem = await probeBind(path);
  if (problem !== undefined) throw new ConfigError(`${where}: ${problem}`);
  const moved = movedPath(path);
  if (Buffer.byteLength(moved) > MAX_SOCKET_PATH) throw new ConfigError(`${where}: the path QEMU's socket moves to, ${moved}, is longer than ${MAX_SOCKET_PATH} bytes`);
  const check = await checkTakeover(path);
  if ('problem' in check) throw new ConfigError(`${where}: ${check.problem}`);
}
