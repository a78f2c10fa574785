import t from 'tap';
import { filterCommandList } from '../../../src/mux/own-commands.ts';
import { Policy } from '../../../src/policy/policy.ts';
import { UpstreamFramer } from '../../../src/qmp/upstream-framer.ts';
import type { UpstreamMessage } from '../../../src/qmp/upstream-message.ts';
import { replyForClient, wireBuffer } from '../../../src/qmp/wire.ts';

t.test('query-commands cut down to the policy, whether QEMU\'s reply came in one read or several', async (t) => {
  // Large enough to be passed on in pieces when it comes in several reads.
  const reply = `{"return": [{"name": "query-status"}, {"name": "stop"}, {"name": "quit"}, {"name": "query-block"}, {"name": "${'x'.repeat(70 * 1024)}"}]}`;
  const filter = filterCommandList(new Policy({ allow: ['query-*'], deny: [] }));
  for (const at of [reply.length, 40000]) {
    const messages: UpstreamMessage[] = [];
    const framer = new UpstreamFramer({ message: (m) => messages.push(m), garbage: () => undefined }, Infinity);
    framer.feed(Buffer.from(reply.slice(0, at)));
    framer.feed(Buffer.from(reply.slice(at) + '\r\n'));
    t.equal(messages[0]!.pieces !== undefined, at < reply.length, at < reply.length ? 'in pieces' : 'in one read');
    const names = (JSON.parse(wireBuffer(replyForClient(filter(messages[0]!), '1')).toString()) as { return: { name: string }[] }).return.map((c) => c.name);
    t.same(names.slice(0, 2), ['query-status', 'query-block'], 'only what the policy allows');
    t.notOk(names.includes('stop') || names.includes('quit'), 'never QEMU\'s own list');
  }
});
