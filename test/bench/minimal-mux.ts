/**
 * The least any Node.js multiplexer can do per command: forward each read
 * of a client to the one upstream connection as it is, and hand the
 * upstream's replies back to the clients in order, by line. Nothing
 * parsed, validated or rewritten; no fairness. Its CPU time per command is
 * the floor for a process in qmp-mux's place. Like qmp-mux, it writes to
 * the upstream once per tick of the event loop.
 *
 * Given WINDOW, it keeps at most that many commands in flight, as any
 * multiplexer in front of QEMU must (QEMU stops reading its monitor when
 * 8 in-band commands are queued, which would hold exec-oob back too). It
 * then takes each read of a client for one command, which holds for the
 * benchmark's clients (one command at a time, one write each).
 * usage: node minimal-mux.js LISTEN-SOCKET UPSTREAM-SOCKET [WINDOW]
 */
import { createConnection, createServer, type Socket } from 'node:net';

const [listenPath, upstreamPath, windowArg] = process.argv.slice(2);
if (!listenPath || !upstreamPath) throw new Error('usage: minimal-mux LISTEN-SOCKET UPSTREAM-SOCKET [WINDOW]');
const window = windowArg === undefined ? Infinity : Number(windowArg);
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "minimal"}, "capabilities": []}}\r\n';
const NEGOTIATED = Buffer.from('{"return": {}}\r\n');
const waiting: Socket[] = [];
let head = 0;
let partial = '';
/** Commands read but not yet sent (only when the window is full). */
const queued: { client: Socket; data: Buffer }[] = [];
let queuedHead = 0;
let inFlight = 0;
const upstream = createConnection(upstreamPath);
upstream.setEncoding('latin1');
let greeted = false;

function send(client: Socket, data: Buffer): void {
  inFlight++;
  waiting.push(client);
  if (!upstream.writableCorked) {
    upstream.cork();
    process.nextTick(() => upstream.uncork());
  }
  upstream.write(data);
}

upstream.on('data', (chunk: string) => {
  const text = partial + chunk;
  let start = 0;
  for (let lf = text.indexOf('\n'); lf >= 0; lf = text.indexOf('\n', start)) {
    const line = text.slice(start, lf + 1);
    start = lf + 1;
    if (!greeted) {
      greeted = true;
      upstream.write('{"execute":"qmp_capabilities","id":"m"}');
      continue;
    }
    if (line.includes('"id": "m"')) {
      createServer((client) => {
        client.write(GREETING);
        client.on('data', (d: Buffer) => {
          if (d.includes('qmp_capabilities')) client.write(NEGOTIATED);
          else if (inFlight < window) send(client, d);
          else queued.push({ client, data: d });
        });
        client.on('error', () => undefined);
      }).listen(listenPath);
      continue;
    }
    waiting[head++]?.write(line);
    inFlight--;
    if (head > 1024 && head * 2 > waiting.length) waiting.splice(0, head), (head = 0);
    const next = queued[queuedHead];
    if (next !== undefined) {
      queued[queuedHead++] = undefined as never;
      send(next.client, next.data);
      if (queuedHead > 1024 && queuedHead * 2 > queued.length) queued.splice(0, queuedHead), (queuedHead = 0);
    }
  }
  partial = text.slice(start);
});
