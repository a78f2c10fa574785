import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/log.ts';
import { OpsServer, type OpsHandlers, type OpsServerOptions } from '../../src/ops/http-server.ts';
import { waitingFor } from '../fixtures/context.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on its own connection. */
function fetchPath(port: number, path: string, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw connection; resolves with everything received once the server closes it. */
function raw(port: number, send: string): { socket: Socket; received: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  const received = waitingFor(() => `the HTTP listener to close a connection; it sent ${JSON.stringify(text)}`, new Promise<string>((resolve) => socket.on('close', () => resolve(text))));
  socket.on('error', () => undefined);
  socket.write(send);
  return { socket, received };
}

interface Fixture {
  server: OpsServer;
  port: number;
  state: { ready: string | undefined; metrics: string; renders: number; fail: boolean };
  logged: string[];
}

async function start(t: Test, options: Partial<OpsServerOptions> = {}): Promise<Fixture> {
  const state = { ready: 'QEMU is not connected' as string | undefined, metrics: 'a_total 1\n', renders: 0, fail: false };
  const logged: string[] = [];
  const handlers: OpsHandlers = {
    metrics: () => {
      if (state.fail) throw new Error('broken renderer');
      state.renders++;
      return state.metrics;
    },
    notReady: () => state.ready,
    status: () => '{"proxy": {"clients": 0}, "clients": []}',
  };
  const log = createLogger({ level: 'debug', format: 'text', trace: false, sink: (l) => logged.push(l) });
  const server = new OpsServer(handlers, { address: { type: 'tcp', host: '127.0.0.1', port: 0 }, metricsCacheMs: 0, log, ...options });
  t.teardown(() => server.stop());
  const { port } = await server.start();
  t.equal(server.address.port, port);
  return { server, port, state, logged };
}

t.test('each route and status code', async (t) => {
  const { port, state } = await start(t);
  const metrics = await fetchPath(port, '/metrics');
  t.equal(metrics.status, 200);
  t.equal(metrics.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(metrics.body, 'a_total 1\n');
  t.equal((await fetchPath(port, '/metrics?name[]=a_total')).body, 'a_total 1\n', 'a query string is ignored');
  t.match(await fetchPath(port, '/healthz'), { status: 200, body: 'ok\n', headers: { 'content-type': 'text/plain; charset=utf-8' } });
  t.match(await fetchPath(port, '/readyz'), { status: 503, body: 'not ready: QEMU is not connected\n' });
  state.ready = undefined;
  t.match(await fetchPath(port, '/readyz'), { status: 200, body: 'ready\n' });
  const status = await fetchPath(port, '/status');
  t.equal(status.headers['content-type'], 'application/json; charset=utf-8');
  t.same(JSON.parse(status.body), { proxy: { clients: 0 }, clients: [] });
  t.match(await fetchPath(port, '/'), { status: 404, body: 'not found\n' });
  t.match(await fetchPath(port, '/metrics/'), { status: 404 });
  t.match(await fetchPath(port, '/nope', 'POST'), { status: 404 });
});

t.test('HEAD where GET is allowed; 405 with Allow for other methods', async (t) => {
  const { port } = await start(t);
  const head = await fetchPath(port, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal(head.headers['content-length'], String(Buffer.byteLength('a_total 1\n')));
  t.match(await fetchPath(port, '/readyz', 'HEAD'), { status: 503, body: '' });
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const answer = await fetchPath(port, '/metrics', method);
    t.equal(answer.status, 405, method);
    t.equal(answer.headers.allow, 'GET, HEAD');
  }
});

t.test('a request body is not read: the connection closes after the answer', async (t) => {
  const { port } = await start(t);
  const { received } = raw(port, 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial body');
  const text = await received;
  t.match(text, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
  t.match(text, /\r\nConnection: close\r\n/);
  const chunked = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  t.match(await chunked.received, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n[^]*\r\n\r\nok\n$/);
});

t.test('a failing handler gets 500 and a log line; the server goes on', async (t) => {
  const { port, state, logged } = await start(t);
  state.fail = true;
  t.match(await fetchPath(port, '/metrics'), { status: 500, body: 'internal error\n' });
  t.match(logged, [/ERROR metrics: a route failed path=\/metrics error="broken renderer"/]);
  state.fail = false;
  t.match(await fetchPath(port, '/metrics'), { status: 200 });
});

t.test('scrapes within metricsCacheMs of the last rendering get the same text', async (t) => {
  const { port, state } = await start(t, { metricsCacheMs: 3_600_000 });
  t.equal((await fetchPath(port, '/metrics')).body, 'a_total 1\n');
  state.metrics = 'a_total 2\n';
  t.equal((await fetchPath(port, '/metrics')).body, 'a_total 1\n');
  t.equal(state.renders, 1);
  const fresh = await start(t);
  fresh.state.metrics = 'b 1\n';
  await fetchPath(fresh.port, '/metrics');
  fresh.state.metrics = 'b 2\n';
  t.equal((await fetchPath(fresh.port, '/metrics')).body, 'b 2\n', 'with metricsCacheMs 0, every scrape renders');
});

t.test('bounds: header size, slow headers, connection count', async (t) => {
  const { port } = await start(t, { maxHeaderSize: 1024, headersTimeoutMs: 300, maxConnections: 2 });
  t.match(await fetchPath(port, '/healthz', 'GET', { 'x-big': 'a'.repeat(2000) }), { status: 431 });
  const slow = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
  t.match(await slow.received, /^HTTP\/1\.1 408 /, 'headers that do not finish in time get 408 and the connection closes');
  const held = [raw(port, ''), raw(port, '')];
  await Promise.all(held.map((h) => new Promise((r) => h.socket.once('connect', r))));
  const extra = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(await extra.received, /^HTTP\/1\.1 200 OK\r\n/, 'a connection past maxConnections is answered');
  t.equal(await held[0]!.received, '', 'the oldest was closed to make room');
  for (const h of held) h.socket.destroy();
});

t.test('stop closes open connections and resolves; stopping twice, or before starting, is fine', async (t) => {
  const long = 600_000;
  const { server, port } = await start(t, { idleTimeoutMs: long, headersTimeoutMs: long, requestTimeoutMs: long });
  const kept = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  // Sent in one write: once the first answer is back, the server has read the start of the second request.
  const midRequest = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n');
  await Promise.all([kept, midRequest].map((c) => new Promise((r) => c.socket.once('data', r))));
  await waitingFor('stop to close the open connections and resolve', server.stop());
  const answered = /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok\n$/;
  t.match(await kept.received, answered, 'an idle kept-alive connection is closed');
  t.match(await midRequest.received, answered, 'a connection in the middle of a request is closed, unanswered');
  await server.stop();
  const never = new OpsServer({ metrics: () => '', notReady: () => undefined, status: () => '{}' }, { address: { type: 'tcp', host: '127.0.0.1', port: 0 } });
  await never.stop();
  await t.rejects(fetchPath(port, '/healthz'), { code: 'ECONNREFUSED' });
});

t.test('loopback only unless allowRemote', async (t) => {
  const handlers: OpsHandlers = { metrics: () => '', notReady: () => undefined, status: () => '{}' };
  for (const host of ['0.0.0.0', '192.0.2.1', '::', 'example.com']) {
    const server = new OpsServer(handlers, { address: { type: 'tcp', host, port: 0 } });
    await t.rejects(server.start(), { code: 'QMPMUX_LISTEN', message: /^metrics \(tcp:.*\): not a loopback address; set allowRemote to expose it$/ }, host);
  }
  // With allowRemote the address is tried: a documentation address that is not this machine's fails to bind.
  const remote = new OpsServer(handlers, { address: { type: 'tcp', host: '192.0.2.1', port: 0 }, allowRemote: true });
  await t.rejects(remote.start(), { code: 'QMPMUX_LISTEN', message: /^metrics: cannot listen on tcp:192\.0\.2\.1:0: / });
  for (const host of ['127.0.0.2', 'localhost']) {
    const local = new OpsServer(handlers, { address: { type: 'tcp', host, port: 0 } });
    t.teardown(() => local.stop());
    const { port } = await local.start();
    t.ok(port > 0, host);
  }
});

t.test('a port in use is a start-up error naming the address', async (t) => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const server = new OpsServer({ metrics: () => '', notReady: () => undefined, status: () => '{}' }, { address: { type: 'tcp', host: '127.0.0.1', port } });
  await t.rejects(server.start(), { code: 'QMPMUX_LISTEN', message: new RegExp(`^metrics: cannot listen on tcp:127\\.0\\.0\\.1:${port}: .*EADDRINUSE`) });
});
