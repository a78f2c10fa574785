/**
 * A stand-in QEMU for measuring qmp-mux alone, run as its own process: it
 * greets, then answers every command at once with `{"return": {}}`, in
 * order, with the command's id if it has one (as QEMU does).
 * usage: node fake-upstream.js SOCKET
 */
import { unlinkSync } from 'node:fs';
import { createServer } from 'node:net';

const path = process.argv[2];
if (!path) throw new Error('usage: fake-upstream SOCKET');
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "bench"}, "capabilities": ["oob"]}}\r\n';
const ID_AT_END = /"id":("[^"]*"|\d+)\}$/;

const server = createServer((socket) => {
  socket.setEncoding('latin1');
  socket.write(GREETING);
  // Commands are split on top-level braces (qmp-mux writes compact JSON; a command may straddle reads).
  let pending = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  socket.on('data', (chunk: string) => {
    let out = '';
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        const id = ID_AT_END.exec(pending + chunk.slice(start, i + 1))?.[1];
        out += id === undefined ? '{"return": {}}\r\n' : `{"return": {}, "id": ${id}}\r\n`;
        pending = '';
        start = i + 1;
      }
    }
    pending += chunk.slice(start);
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
