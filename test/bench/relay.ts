/**
 * The least any Node.js proxy can do: copy bytes between one client and one
 * QEMU monitor, nothing parsed. Run as its own process next to qmp-mux, it
 * shows what the extra hop itself costs on this machine.
 * usage: node relay.js LISTEN-SOCKET QEMU-SOCKET
 */
import { createConnection, createServer } from 'node:net';

const [listenPath, qemuPath] = process.argv.slice(2);
if (!listenPath || !qemuPath) throw new Error('usage: relay LISTEN-SOCKET QEMU-SOCKET');
createServer((client) => {
  const qemu = createConnection(qemuPath);
  client.pipe(qemu);
  qemu.pipe(client);
  client.on('error', () => qemu.destroy());
  qemu.on('error', () => client.destroy());
}).listen(listenPath);
