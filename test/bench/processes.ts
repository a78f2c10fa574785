import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchClient } from './client.ts';

/** The processes a benchmark run needs, all stopped by `stopAll`. */
const children: ChildProcess[] = [];
let dir: string | undefined;

/** The run's directory for sockets and files, made when first asked for (importing a bench module leaves nothing behind); `stopAll` removes it. */
export function workdir(): string {
  return (dir ??= mkdtempSync(join(tmpdir(), 'qmp-mux-bench-')));
}

/** A process of the run's own making: stopped by `stopAll` too. */
export function adopt(child: ChildProcess): void {
  children.push(child);
}

export function stopAll(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

async function until(ready: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `qemu-system-x86_64 -machine none` with the given number of QMP monitors; returns their socket paths. */
export async function startQemu(monitors: number): Promise<string[]> {
  const paths = Array.from({ length: monitors }, (_, i) => join(workdir(), `qemu${i}.sock`));
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none'];
  for (const p of paths) args.push('-qmp', `unix:${p},server=on,wait=off`);
  children.push(spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'inherit'] }));
  await until(() => paths.every((p) => existsSync(p)), 'QEMU');
  return paths;
}

/** The fake upstream (instant answers) in its own process; returns its socket path. */
export async function startFakeUpstream(): Promise<string> {
  const path = join(workdir(), `fake${children.length}.sock`);
  const script = fileURLToPath(new URL('./fake-upstream.js', import.meta.url));
  children.push(spawn(process.execPath, [script, path], { stdio: ['ignore', 'inherit', 'inherit'] }));
  await until(() => existsSync(path), 'the fake upstream');
  return path;
}

/** The bare echo server in its own process; returns its pid and socket path. */
export async function startEcho(): Promise<{ pid: number; path: string }> {
  const path = join(workdir(), 'echo.sock');
  const script = fileURLToPath(new URL('./echo.js', import.meta.url));
  const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  await until(() => existsSync(path), 'the echo server');
  return { pid: child.pid!, path };
}

/** The minimal multiplexer in its own process, in front of `upstream`, with at most `window` commands in flight if given; returns its pid and where clients connect. */
export async function startMinimalMux(upstream: string, window?: number): Promise<{ pid: number; path: string }> {
  const path = join(workdir(), `minimal-mux${window ?? ''}.sock`);
  const script = fileURLToPath(new URL('./minimal-mux.js', import.meta.url));
  const child = spawn(process.execPath, [script, path, upstream, ...(window === undefined ? [] : [String(window)])], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  await until(() => existsSync(path), 'the minimal multiplexer');
  return { pid: child.pid!, path };
}

/** A bare byte relay (no parsing) in its own process, in front of `upstream`; returns where clients connect. */
export async function startRelay(upstream: string): Promise<string> {
  const path = join(workdir(), 'relay.sock');
  const script = fileURLToPath(new URL('./relay.js', import.meta.url));
  children.push(spawn(process.execPath, [script, path, upstream], { stdio: ['ignore', 'inherit', 'inherit'] }));
  await until(() => existsSync(path), 'the relay');
  return path;
}

/**
 * `count` clients sending garbage to `path` as fast as they can, in their
 * own process; `stop` ends them and resolves with the error replies per
 * second they got.
 */
export async function startGarbage(path: string, count: number): Promise<{ stop(): Promise<number> }> {
  const script = fileURLToPath(new URL('./garbage.js', import.meta.url));
  const child = spawn(process.execPath, [script, path, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => out.includes('sending'), 'the garbage senders');
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return Number(/replies\/s (\d+)/.exec(out)?.[1] ?? 0);
    },
  };
}

export interface MuxProcess {
  pid: number;
  /** Where clients connect (the first endpoint). */
  path: string;
  /** Where each endpoint's clients connect, by name. */
  paths: Record<string, string>;
  /** Its configuration file. */
  config: string;
  stop(): Promise<void>;
}

/**
 * `count` clients costing as much as they may (see hostile-clients.ts), in
 * their own process; `stop` ends them and resolves with the replies they read.
 */
export async function startHostile(path: string, count: number, mode: 'pipeline' | 'oob' | 'noread', size: number, depth: number): Promise<{ stop(): Promise<number> }> {
  const script = fileURLToPath(new URL('./hostile-clients.js', import.meta.url));
  const child = spawn(process.execPath, [script, path, String(count), mode, String(size), String(depth)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => out.includes('sending'), 'the hostile clients');
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return Number(/replies (\d+)/.exec(out)?.[1] ?? 0);
    },
  };
}

/** Endpoints of a qmp-mux started with `startMux`, each named and given its own socket (besides `listen`). */
export type EndpointConfig = Record<string, unknown> & { name: string };

/**
 * qmp-mux (the built CLI) in its own process, in front of `upstream`;
 * resolves once it greets clients. Clients connect to `path` (the first
 * endpoint), or to `paths[name]`.
 */
export async function startMux(
  upstream: string,
  name: string,
  endpoints: EndpointConfig[] = [{ name, maxClients: 20000 }],
  extra: Record<string, unknown> = {},
  /** Another build's `dist/cli/main.js`, to compare with. */
  program = fileURLToPath(new URL('../../../../dist/cli/main.js', import.meta.url)),
): Promise<MuxProcess> {
  const paths = Object.fromEntries(endpoints.map((e) => [e.name, join(workdir(), `${name}-${e.name}.sock`)]));
  const path = paths[endpoints[0]!.name]!;
  const config = join(workdir(), `${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${upstream}` },
      endpoints: endpoints.map((e) => ({ listen: `unix:${paths[e.name]}`, ...e })),
      log: { level: 'warn' },
      ...extra,
    }),
  );
  const child = spawn(process.execPath, [program, '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await until(() => existsSync(path), 'qmp-mux');
  const probe = await BenchClient.connect(path, 'none');
  probe.close();
  return {
    pid: child.pid!,
    path,
    paths,
    config,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** CPU time (user + system) a process has used, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
