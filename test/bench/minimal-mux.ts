/**
 * The least any Node.js multiplexer can do per command: forward each read
 * of a client to the one upstream connection as it is, and hand the
 * upstream's replies back to the clients in order, by line. Nothing
 * parsed, validated or rewritten; no window, no fairness. Its CPU time per
 * command is the floor for a process in qmp-mux's place. Like qmp-mux, it
 * writes to the upstream once per tick of the event loop.
 * usage: node minimal-mux.js LISTEN-SOCKET UPSTREAM-SOCKET
 */
import { createConnection, createServer, type Socket } from 'node:net';

const [listenPath, upstreamPath] = process.argv.slice(2);
if (!listenPath || !upstreamPath) throw new Error('usage: minimal-mux LISTEN-SOCKET UPSTREAM-SOCKET');
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "minimal"}, "capabilities": []}}\r\n';
const NEGOTIATED = Buffer.from('{"return": {}}\r\n');
const waiting: Socket[] = [];
let head = 0;
let partial = '';
const upstream = createConnection(upstreamPath);
upstream.setEncoding('latin1');
let greeted = false;
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
          else {
            waiting.push(client);
            if (!upstream.writableCorked) {
              upstream.cork();
              process.nextTick(() => upstream.uncork());
            }
            upstream.write(d);
          }
        });
        client.on('error', () => undefined);
      }).listen(listenPath);
      continue;
    }
    waiting[head++]?.write(line);
    if (head > 1024 && head * 2 > waiting.length) waiting.splice(0, head), (head = 0);
  }
  partial = text.slice(start);
});
