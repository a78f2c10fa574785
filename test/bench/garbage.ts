/**
 * Clients that send qmp-mux garbage as fast as it takes it, each byte a
 * JSON parse error and so an error reply, which they read and drop. On
 * SIGTERM prints the error replies per second they got.
 * usage: node garbage.js SOCKET COUNT
 */
import { createConnection } from 'node:net';

const [path, countText] = process.argv.slice(2);
if (!path || !countText) throw new Error('usage: garbage SOCKET COUNT');
const junk = Buffer.alloc(16 * 1024, '}');
let replies = 0;
const started = Date.now();
for (let i = 0; i < Number(countText); i++) {
  const socket = createConnection(path);
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    for (const b of d) if (b === 0x0a) replies++;
  });
  const send = (): void => {
    while (socket.write(junk));
    socket.once('drain', send);
  };
  socket.once('connect', send);
}
console.log('sending');
process.on('SIGTERM', () => {
  console.log(`replies/s ${Math.round(replies / ((Date.now() - started) / 1000))}`);
  process.exit(0);
});
