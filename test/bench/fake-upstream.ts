/**
 * A stand-in QEMU for measuring qmp-mux alone, run as its own process: it
 * greets, then answers every command at once with `{"return": {}}` and the
 * command's id. usage: node fake-upstream.js SOCKET
 */
import { unlinkSync } from 'node:fs';
import { createServer } from 'node:net';

const path = process.argv[2];
if (!path) throw new Error('usage: fake-upstream SOCKET');
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "bench"}, "capabilities": ["oob"]}}\r\n';
const ID = /"id":("[^"]*"|\d+)\}/g;

const server = createServer((socket) => {
  socket.setEncoding('latin1');
  socket.write(GREETING);
  let pending = '';
  socket.on('data', (chunk: string) => {
    // qmp-mux puts its id last in every command; a command may straddle reads.
    const text = pending + chunk;
    let out = '';
    let end = 0;
    for (const m of text.matchAll(ID)) {
      out += `{"return": {}, "id": ${m[1]}}\r\n`;
      end = m.index + m[0].length;
    }
    pending = text.slice(end);
    if (out) socket.write(out);
  });
  socket.on('error', () => undefined);
});
server.listen(path, () => process.send?.('ready'));
process.on('SIGTERM', () => {
  server.close();
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
  process.exit(0);
});
