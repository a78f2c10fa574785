import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as connectTls } from 'node:tls';
import { BenchClient, sequential } from './client.ts';
import type { Row } from './main.ts';
import { adopt, workdir } from './processes.ts';
import { median, percentile, round, sortedCopy } from './stats.ts';

/**
 * Scenario 1 through a TLS endpoint (client certificate, an identity),
 * beside a plaintext TCP endpoint and the unix one of the same qmp-mux,
 * in front of the same QEMU monitor: what TLS costs one client sending
 * `query-status` one at a time. Interleaved rounds, ratios per round.
 */

const QUERY = '{"execute":"query-status"}';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in the run's directory. */
function certificates(): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const at = (name: string): string => join(workdir(), name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: workdir(), stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=bench CA');
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(at('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subject] of [['server', '/CN=127.0.0.1'], ['client', '/O=Bench/CN=admin']] as const) {
    openssl('req', ...ec, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', subject);
    openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', at(`${name}.ext`), '-out', at(`${name}.pem`));
  }
  return { ca: at('ca.pem'), serverCert: at('server.pem'), serverKey: at('server.key'), clientCert: at('client.pem'), clientKey: at('client.key') };
}

/** qmp-mux in its own process with a unix, a plaintext TCP and a TLS endpoint; resolves with where each is. */
async function startTlsMux(upstream: string, files: ReturnType<typeof certificates>): Promise<{ unix: string; tcp: number; tls: number }> {
  const unix = join(workdir(), 'tls-bench-unix.sock');
  const config = join(workdir(), 'tls-bench.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${upstream}` },
      endpoints: [
        { name: 'unix', listen: `unix:${unix}` },
        { name: 'tcp', listen: 'tcp:127.0.0.1:0' },
        { name: 'tls', listen: 'tcp:127.0.0.1:0', tls: { cert: files.serverCert, key: files.serverKey, ca: files.ca }, identities: [{ name: 'admin', match: 'CN=admin' }] },
      ],
      log: { level: 'warn' },
    }),
  );
  const main = fileURLToPath(new URL('../../../../dist/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [main, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  adopt(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ports = [...out.matchAll(/clients connect at tcp:127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    if (ports.length === 2 && out.includes(unix)) return { unix, tcp: ports[0]!, tls: ports[1]! };
    if (Date.now() > deadline) throw new Error(`qmp-mux with a TLS endpoint did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The socket once `event` says it is usable, without Nagle's delay (as qmp-mux's own client). */
function opened(socket: Socket, event: 'connect' | 'secureConnect'): Promise<Socket> {
  socket.setNoDelay(true);
  return new Promise((resolve, reject) => {
    socket.once(event, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Scenario 1 over TLS, beside plaintext TCP and the unix socket; rows as `row`, figures returned. */
export async function tlsOneClient(upstream: string, row: (r: Row) => void): Promise<Record<string, unknown>> {
  const files = certificates();
  const at = await startTlsMux(upstream, files);
  const tcp = opened(connectTcp(at.tcp, '127.0.0.1'), 'connect');
  const tls = opened(connectTls({ host: '127.0.0.1', port: at.tls, ca: readFileSync(files.ca), cert: readFileSync(files.clientCert), key: readFileSync(files.clientKey) }), 'secureConnect');
  const clients = {
    unix: await BenchClient.connect(at.unix),
    tcp: await BenchClient.over(await tcp),
    tls: await BenchClient.over(await tls),
  };
  type Key = keyof typeof clients;
  const keys = Object.keys(clients) as Key[];
  const rounds = 5;
  const count = 2000;
  const rates = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
  const lats = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
  for (const k of keys) await sequential(clients[k], QUERY, 200);
  for (let r = 0; r < rounds; r++) {
    for (const k of keys) {
      const { latencies, seconds } = await sequential(clients[k], QUERY, count);
      rates[k].push(count / seconds);
      lats[k].push(...latencies);
    }
  }
  await Promise.all(keys.map((k) => clients[k].close()));
  const vs = (a: Key, b: Key): number => median(rates[a].map((x, i) => x / rates[b][i]!));
  const sorted = Object.fromEntries(keys.map((k) => [k, sortedCopy(lats[k])])) as Record<Key, Float64Array>;
  const p = (k: Key, q: number): number => round(percentile(sorted[k], q), 0);
  const tlsVsTcp = vs('tls', 'tcp');
  row({ scenario: '1 over TLS', measure: 'commands/s: plaintext TCP | TLS (client certificate, identity)', direct: round(median(rates.tcp), 0), mux: round(median(rates.tls), 0), ratio: round(tlsVsTcp), target: '', met: '' });
  row({ scenario: '1 over TLS', measure: 'commands/s: unix socket | plaintext TCP', direct: round(median(rates.unix), 0), mux: round(median(rates.tcp), 0), ratio: round(vs('tcp', 'unix')), target: '', met: '' });
  row({ scenario: '1 over TLS', measure: 'latency p50 | p99 µs: plaintext TCP vs TLS', direct: `${p('tcp', 50)} | ${p('tcp', 99)}`, mux: `${p('tls', 50)} | ${p('tls', 99)}`, ratio: round(percentile(sorted.tls, 50) / percentile(sorted.tcp, 50)), target: '', met: '' });
  return { rounds, count, commandsPerSecond: rates, tlsVsTcpMedian: tlsVsTcp, tcpVsUnixMedian: vs('tcp', 'unix'), latencyUs: Object.fromEntries(keys.map((k) => [k, { p50: p(k, 50), p99: p(k, 99) }])) };
}
