import t from 'tap';
import { commandNames } from '../../../src/ops/command-names.ts';

t.test('the names in a query-commands reply, as QEMU 7.2 writes it', async (t) => {
  const reply = Buffer.from('{"return": [{"name": "device_add"}, {"name": "x-query-virtio"}, {"name": "qmp_capabilities"}]}\r\n', 'latin1');
  t.same(commandNames(reply), ['device_add', 'x-query-virtio', 'qmp_capabilities']);
});

t.test('anything else gives no names; entries without a string name are skipped', async (t) => {
  t.same(commandNames(Buffer.from('{"error": {"class": "GenericError", "desc": "x"}}\r\n')), []);
  t.same(commandNames(Buffer.from('{"return": {}}\r\n')), []);
  t.same(commandNames(Buffer.from('[1]\r\n')), []);
  t.same(commandNames(Buffer.from('{"return": [{"name": 1}, "stop", {"name": "stop"}]}\r\n')), ['stop']);
});
