import t from 'tap';
import { JsonNumber, type JsonObject, type JsonValue } from '../../../src/json/value.ts';
import { writeCompact } from '../../../src/json/writer.ts';
import { encodeCommand } from '../../../src/qmp/wire.ts';

const cap = { maxBytes: 64 * 1024, endpoint: 'ep', setting: 'its maxCommandBytes' };
const numbers = (n: number): JsonObject => new Map<string, JsonValue>([['a', Array.from({ length: n }, () => new JsonNumber('1', true))]]);

t.test('arguments far past the cap are measured, not written, and the error states their exact size', async (t) => {
  for (const [oob, n] of [[false, 128 * 1024], [true, 128 * 1024], [false, 32 * 1024], [true, 32 * 1024 - 20]] as const) {
    const args = numbers(n);
    const size = Buffer.byteLength(`{"${oob ? 'exec-oob' : 'execute'}":"query-status","arguments":${writeCompact(args).text}}`) + (oob ? 15 : 0);
    const got = encodeCommand('query-status', args, oob, cap);
    if (size > cap.maxBytes) t.same(got, { tooLarge: `The command query-status is larger than endpoint 'ep' accepts (${size} bytes as sent to QEMU; its maxCommandBytes is ${cap.maxBytes})` }, `${n} numbers, oob ${oob}: ${size} bytes`);
    else t.ok(Buffer.isBuffer(got), `${n} numbers, oob ${oob}: ${size} bytes, sent`);
  }
});

t.test("QEMU's limits still come before the endpoint's cap, counted exactly", async (t) => {
  const n = 2 * 1024 * 1024;
  const args = numbers(n);
  // The command's braces, verb, name, colons, comma and `arguments`: 8; the arguments' braces, key and colon: 4; the list: 2n + 1 with its brackets.
  t.same(encodeCommand('query-yank', args, false, cap), { tooLarge: `The command query-yank does not fit in one QEMU message once re-encoded by qmp-mux (${2 * n + 13} tokens; QEMU reads at most ${n})` });
});
