/**
 * Clients that cost qmp-mux and QEMU as much as they are allowed: each
 * sends its largest command (`SIZE` bytes as qmp-mux sends it) again and
 * again. `pipeline` keeps DEPTH commands outstanding and reads the replies;
 * `oob` does the same with exec-oob; `noread` writes as fast as the socket
 * takes it and never reads a reply. On SIGTERM prints the replies read.
 * usage: node hostile-clients.js SOCKET COUNT pipeline|oob|noread SIZE DEPTH
 */
import { createConnection, type Socket } from 'node:net';

const [path, countText, mode, sizeText, depthText] = process.argv.slice(2);
if (!path || !countText || !mode || !sizeText || !depthText) throw new Error('usage: hostile-clients SOCKET COUNT pipeline|oob|noread SIZE DEPTH');
const size = Number(sizeText);
const depth = Number(depthText);
const verb = mode === 'oob' ? 'exec-oob' : 'execute';
const name = mode === 'oob' ? 'query-yank' : 'query-status';
const frame = `{"${verb}":"${name}","arguments":{"a":""}}`.length;
const command = Buffer.from(`{"${verb}":"${name}","arguments":{"a":"${'x'.repeat(size - frame)}"}}`);
let replies = 0;
let ready = 0;

function start(socket: Socket): void {
  let buffer = '';
  let phase: 'greeting' | 'negotiating' | 'running' = 'greeting';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    buffer += d;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (line.startsWith('{"timestamp"')) continue;
      if (phase === 'greeting') {
        phase = 'negotiating';
        socket.write(mode === 'oob' ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}' : '{"execute":"qmp_capabilities"}');
      } else if (phase === 'negotiating') {
        phase = 'running';
        run(socket);
      } else {
        replies++;
        socket.write(command);
      }
    }
  });
}

function run(socket: Socket): void {
  if (++ready === Number(countText)) console.log('sending');
  if (mode !== 'noread') {
    for (let i = 0; i < depth; i++) socket.write(command);
    return;
  }
  socket.pause();
  const send = (): void => {
    while (socket.write(command));
    socket.once('drain', send);
  };
  send();
}

for (let i = 0; i < Number(countText); i++) {
  const socket = createConnection(path);
  socket.on('error', () => undefined);
  socket.once('connect', () => start(socket));
}
process.on('SIGTERM', () => {
  console.log(`replies ${replies}`);
  process.exit(0);
});
