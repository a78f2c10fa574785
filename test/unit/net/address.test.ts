import t from 'tap';
import { formatAddress, isLoopback, parseAddress } from '../../../src/net/address.ts';

t.test('addresses parse and print back', async (t) => {
  for (const text of ['unix:/run/qmp.sock', 'unix:relative.sock', 'tcp:127.0.0.1:4444', 'tcp:localhost:0', 'tcp:[::1]:65535', 'tcp:host.example:1']) {
    t.equal(formatAddress(parseAddress(text)), text, text);
  }
  t.same(parseAddress('tcp:[::1]:80'), { type: 'tcp', host: '::1', port: 80 });
  t.same(parseAddress('unix:a:b'), { type: 'unix', path: 'a:b' }, 'a unix path may hold colons');
});

t.test('bad addresses say what is wrong', async (t) => {
  const cases: [string, RegExp][] = [
    ['udp:1.2.3.4:5', /expected unix:PATH or tcp:HOST:PORT/],
    ['unix:', /unix: needs a socket path/],
    ['tcp:host', /expected tcp:HOST:PORT/],
    ['tcp::80', /tcp: needs a host/],
    ['tcp:[nonsense]:80', /'nonsense' is not an IPv6 address/],
    ['tcp:h:65536', /port must be 0-65535/],
  ];
  for (const [text, message] of cases) t.throws(() => parseAddress(text), { code: 'QMPMUX_ADDRESS', message }, text);
});

t.test('loopback hosts', async (t) => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) t.notOk(isLoopback(host), host);
});
