import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { makePki, needOpenssl, type Issued, type Pki } from '../fixtures/certificates.ts';
import { runCli } from '../fixtures/cli.ts';
import { eventually } from '../fixtures/context.ts';
import { needProgram } from '../fixtures/programs.ts';
import { startPrometheus } from '../fixtures/prometheus.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { socketDir } from '../fixtures/tmp.ts';

/**
 * The HTTP listener over HTTPS with client certificates: a real Prometheus
 * scrapes it with its `tls_config`; a client without a certificate gets
 * nothing.
 */

/** GET `path` over HTTPS, as `who` (or without a certificate): status and body, or the error. */
function fetchTls(port: number, path: string, pki: Pki, who?: Issued): Promise<{ status: number; body: string } | Error> {
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path, agent: false, ca: readFileSync(pki.ca.cert), ...(who && { cert: readFileSync(who.cert), key: readFileSync(who.key) }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', resolve);
    }).on('error', resolve);
  });
}

t.test('a real Prometheus scrapes /metrics over HTTPS with its client certificate; a client without one gets nothing', async (t) => {
  if (!needQemu(t) || !needOpenssl(t) || !needProgram(t, 'prometheus', 'prometheus')) return;
  const dir = socketDir(t);
  const pki = makePki(join(dir, 'pki'));
  const scraper = pki.ca.issue('prometheus', { subject: '/O=Example/CN=prometheus', usage: 'client' });
  const qemu = await startQemu(t);
  const config = join(dir, 'qmp-mux.json');
  writeFileSync(
    config,
    JSON.stringify({
      upstream: { connect: `unix:${qemu.monitors[0]}` },
      endpoints: [{ name: 'local', listen: `unix:${dir}/mux.sock` }],
      metrics: { listen: 'tcp:127.0.0.1:0', tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert } },
    }),
  );
  const run = runCli(t, ['--config', config]);
  const port = Number((await run.waitFor(/metrics at https:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  await run.waitFor(/QEMU connected/);

  const anonymous = await fetchTls(port, '/metrics', pki);
  t.ok(anonymous instanceof Error, `no client certificate, no answer (${String(anonymous)})`);
  await run.waitFor(/WARN {2}metrics: TLS handshake failed client=127\.0\.0\.1:\d+ why=no-certificate/);
  const rogue = await fetchTls(port, '/healthz', pki, pki.rogue);
  t.ok(rogue instanceof Error, 'a certificate from another CA, no answer');
  t.same(await fetchTls(port, '/healthz', pki, scraper), { status: 200, body: 'ok\n' }, 'a certificate the CA signed is answered');

  const prometheus = await startPrometheus(t, port, 1, { caFile: pki.ca.cert, certFile: scraper.cert, keyFile: scraper.key });
  await eventually(async () => (await prometheus.query('up'))['{}']?.[0] === '1', 'Prometheus to see the target up over HTTPS', { intervalMs: 250 });
  t.same(await prometheus.query('qmpmux_upstream_state{state="ready"}'), { '{state="ready"}': ['1'] }, 'and read what qmp-mux says');
});
