import t from 'tap';
import { clientAddress, parseClientAddress } from '../../../src/client/address.ts';

/** Where the clients connect: qmp-mux's forms, and qmp-shell's (a bare path, HOST:PORT). */

t.test('addresses as qmp-mux and qmp-shell users write them', async (t) => {
  t.same(parseClientAddress('unix:/run/vm.sock'), { type: 'unix', path: '/run/vm.sock' });
  t.same(parseClientAddress('tcp:127.0.0.1:4444'), { type: 'tcp', host: '127.0.0.1', port: 4444 });
  t.same(parseClientAddress('/run/vm.sock'), { type: 'unix', path: '/run/vm.sock' }, 'a bare path');
  t.same(parseClientAddress('vm.sock'), { type: 'unix', path: 'vm.sock' });
  t.same(parseClientAddress('localhost:4444'), { type: 'tcp', host: 'localhost', port: 4444 }, "HOST:PORT, as qmp-shell reads it");
  t.same(parseClientAddress('127.0.0.1:0'), { type: 'tcp', host: '127.0.0.1', port: 0 });
  t.same(parseClientAddress('[::1]:4444'), { type: 'tcp', host: '::1', port: 4444 }, '[V6]:PORT');
  t.same(parseClientAddress('./vm:4444'), { type: 'unix', path: './vm:4444' }, 'a socket file named so is written with a directory');
  t.same(parseClientAddress('/tmp/a:1'), { type: 'unix', path: '/tmp/a:1' });
  t.throws(() => parseClientAddress('localhost:99999'), { code: 'QMPMUX_ADDRESS', message: "'tcp:localhost:99999': port must be 0-65535" });
  t.throws(() => parseClientAddress('udp:1.2.3.4:5'), { code: 'QMPMUX_ADDRESS' }, 'another scheme is not a path');
  t.throws(() => parseClientAddress(''), { code: 'QMPMUX_ADDRESS', message: "'': expected unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, HOST:PORT or a socket path" });
  t.throws(() => parseClientAddress('foo:bar:baz'), { message: "'foo:bar:baz': expected unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, HOST:PORT or a socket path (./foo:bar:baz for a file of that name)" }, 'every form the clients take');
  t.throws(() => parseClientAddress('unix:'), { message: "'unix:': unix: needs a socket path" }, "qmp-mux's own forms say what is wrong with them");
  t.same(clientAddress(undefined, { QMP_SOCKET: 'h:1' }), { type: 'tcp', host: 'h', port: 1 }, '$QMP_SOCKET too');
  t.same(clientAddress(undefined, {}), { type: 'unix', path: 'qmp-mux.sock' });
});
