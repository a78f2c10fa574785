/**
 * The least any Node.js server can do per request: answer each read with a
 * fixed reply, nothing parsed, no upstream. Its CPU time per request is the
 * floor for qmp-mux's own on this machine.
 * usage: node echo.js SOCKET
 */
import { createServer } from 'node:net';

const path = process.argv[2];
if (!path) throw new Error('usage: echo SOCKET');
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "echo"}, "capabilities": []}}\r\n';
const REPLY = Buffer.from('{"return": {}}\r\n');
createServer((s) => {
  s.write(GREETING);
  s.on('data', () => s.write(REPLY));
  s.on('error', () => undefined);
}).listen(path);
