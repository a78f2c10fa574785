import t from 'tap';
import { JsonStreamer } from '../../src/json/streamer.ts';
import { JsonNumber, type JsonValue } from '../../src/json/value.ts';
import { elapse } from '../fixtures/context.ts';
import { CORPUS, type Case } from '../fixtures/corpus.ts';
import { mutations } from '../fixtures/mutate.ts';
import { startMux } from '../fixtures/mux.ts';
import { needQemu, startQemu } from '../fixtures/qemu.ts';
import { TestClient } from '../fixtures/qmp-client.ts';

/**
 * The differential suite: every corpus case goes once straight to a QEMU
 * monitor and once through qmp-mux in front of another monitor of the same
 * QEMU. Replies must be the same JSON values, and in fact the same bytes
 * (timestamps masked).
 */

const TIMESTAMP = /"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}/g;
const mask = (line: string): string => line.replace(TIMESTAMP, '"timestamp": {"seconds": S, "microseconds": U}');

/** A line as a JSON value in canonical text: keys sorted, numbers by value; QEMU's `inf`/`nan` tolerated. */
function canonical(line: string): string {
  const jsonish = line.replace(/(: |\[|, )(-?inf|nan)(?=[,}\]])/g, '$1"<$2>"');
  let value: JsonValue | undefined;
  let error: string | undefined;
  new JsonStreamer((m) => ((value = m.value), (error = m.error))).feed(Buffer.from(jsonish + ' ', 'latin1'));
  if (value === undefined) return `unparsable (${error}): ${line}`;
  const write = (v: JsonValue): string => {
    if (v instanceof JsonNumber) return v.integer ? BigInt(v.text).toString() : `f${Number(v.text)}`;
    if (Array.isArray(v)) return `[${v.map(write).join(',')}]`;
    if (v instanceof Map) return `{${[...v.keys()].sort().map((k) => `${JSON.stringify(k)}:${write(v.get(k)!)}`).join(',')}}`;
    return JSON.stringify(v);
  };
  return write(value);
}

async function run(path: string, c: Case): Promise<{ lines: string[]; framingErrors: string[] }> {
  const client = await TestClient.connect(path);
  await client.waitLines(1);
  for (const step of c.steps) {
    if (typeof step === 'string' || Buffer.isBuffer(step)) {
      client.send(step);
    } else if ('pause' in step) {
      await elapse(step.pause);
    } else {
      for (const b of Buffer.from(step.byteByByte, 'latin1')) {
        client.send(Buffer.of(b));
        await elapse(1);
      }
    }
  }
  if (c.settle !== undefined) await client.waitLines(1 + c.settle);
  if (c.settleOn) await client.waitForLine(c.settleOn);
  client.endInput();
  const lines = await client.rest();
  client.close();
  return { lines: lines.map(mask), framingErrors: client.framingErrors };
}

t.test('differential: qmp-mux answers every input exactly as QEMU does', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 2 });
  const [direct, upstream] = qemu.monitors as [string, string];
  const mux = await startMux(t, upstream);
  for (const c of CORPUS) {
    const expected = await run(direct, c);
    const actual = await run(mux.path, c);
    if (c.added) {
      const added = c.added;
      const stripped = actual.lines.map((l) => l.replace(added, ''));
      t.not(stripped.join(), actual.lines.join(), `${c.name}: qmp-mux's additions are there`);
      actual.lines = stripped;
    }
    if (process.env.QMP_MUX_SHOW_CORPUS) console.error(`## ${c.name}\n${expected.lines.join('\n')}`);
    t.test(c.name, async (t) => {
      t.same(actual.lines.map(canonical), expected.lines.map(canonical), 'same JSON values');
      t.same(actual.lines, expected.lines, 'same bytes');
      t.same(actual.framingErrors, [], 'every message one CRLF-terminated line');
    });
  }
});

t.test('differential: corpus inputs mutated at random (seeded), answered exactly as QEMU does', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemu(t, { monitors: 2 });
  const [direct, upstream] = qemu.monitors as [string, string];
  const mux = await startMux(t, upstream);
  const seeds = CORPUS.filter((c) => c.settle === undefined && c.added === undefined).flatMap((c) =>
    c.steps.flatMap((s) => (typeof s === 'string' ? [Buffer.from(s, 'latin1')] : Buffer.isBuffer(s) ? [s] : [])),
  );
  const seed = Number(process.env.QMP_MUX_MUTATION_SEED ?? 1);
  const inputs = mutations(seeds, seed, 200, '{"execute":"qmp_capabilities"}');
  let differing = 0;
  // QEMU drops what it has queued when a client hangs up, and how much it has queued then depends on the
  // machine's speed: each input is followed by a byte that ends whatever it left unfinished (a lexer error)
  // and a command whose reply comes after all of the input's, which is waited for before hanging up.
  const settle = Buffer.from('\xff{"execute":"query-name","id":"settled"}', 'latin1');
  for (const input of inputs) {
    const c: Case = { name: JSON.stringify(input.toString('latin1')), steps: [input, settle], settleOn: /"id": "settled"/ };
    const expected = await run(direct, c);
    const actual = await run(mux.path, c);
    if (actual.lines.join('\n') === expected.lines.join('\n') && actual.framingErrors.length === 0) continue;
    differing++;
    t.same(actual, { lines: expected.lines, framingErrors: [] }, `input ${c.name}`);
    if (differing === 5) break;
  }
  t.equal(differing, 0, `${inputs.length} mutated inputs (seed ${seed}), same bytes back`);
});

t.test('differential: quit', async (t) => {
  if (!needQemu(t)) return;
  const results: string[][] = [];
  for (const viaMux of [false, true]) {
    const qemu = await startQemu(t, { monitors: 1 });
    const path = viaMux ? (await startMux(t, qemu.monitors[0]!)).path : qemu.monitors[0]!;
    const client = await TestClient.connect(path);
    await client.negotiate();
    client.send('{"execute":"quit","id":"q"}');
    results.push((await client.rest()).map(mask));
    await qemu.exited;
  }
  t.same(results[1], results[0], 'SHUTDOWN, the return, then EOF');
  t.match(results[0]?.[0], /"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-qmp-quit"\}/);
});
