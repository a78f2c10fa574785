import t from 'tap';
import { readConfig } from '../../../src/config/file.ts';
import { memoryBound } from '../../../src/config/memory.ts';
import { NO_COMMAND_LINE, resolveOptions } from '../../../src/config/resolve.ts';
import { LOG_BACKLOG } from '../../../src/log.ts';

const MIB = 1024 * 1024;
const tls = { cert: '/tls/server.pem', key: '/tls/server.key', ca: '/tls/ca.pem' };
const options = (identities: object[]) =>
  resolveOptions(
    NO_COMMAND_LINE,
    readConfig({
      upstream: { connect: 'unix:/q.sock' },
      endpoints: [{ name: 'remote', listen: 'tcp:127.0.0.1:0', tls, maxClients: 4, limits: { maxOutputBuffer: MIB, maxInputBytes: MIB }, identities }],
    }),
  );

t.test("the memory bound counts each endpoint's clients at the most an identity of it allows", async (t) => {
  const plain = memoryBound(options([{ name: 'collector', match: 'CN=collector' }]));
  t.equal(plain.output, 4 * MIB, "an identity with the endpoint's limits: the endpoint's");
  const generous = memoryBound(options([{ name: 'collector', match: 'CN=collector' }, { name: 'admin', match: 'CN=admin', maxClients: 1, limits: { maxOutputBuffer: 32 * MIB, maxInputBytes: 8 * MIB } }]));
  t.equal(generous.output, 4 * 32 * MIB, 'every client may be of the identity allowed most');
  t.ok(generous.input - plain.input >= 4 * 7 * MIB, 'its input bound too');
  t.ok(generous.total > plain.total);
});

t.test('the log lines waiting for a slow reader of the log count in the bound, with the journal', async (t) => {
  const o = options([]);
  t.equal(memoryBound(o).records, o.journal.maxBytes + o.journal.maxEvents * 256 + LOG_BACKLOG);
});
