import t from 'tap';
import { runCli } from '../fixtures/cli.ts';
import { needQemu } from '../fixtures/qemu.ts';
import { startQemuReady } from '../fixtures/qemu-ready.ts';

/**
 * `qmp-mux exec` as a shell runs it, with the forms the README gives: a
 * transaction as words or as one argument, HMP commands (a value with
 * spaces quoted, or -H), and the advice when a value with spaces is not
 * quoted. Against a real QEMU with a block node `d0`.
 */

t.test('transaction( ... ), HMP commands and values with spaces, as a shell passes them', async (t) => {
  if (!needQemu(t)) return;
  const qemu = await startQemuReady(t, { args: ['-blockdev', 'driver=null-co,node-name=d0'] });
  const env = { ...process.env, QMP_SOCKET: qemu.monitors[0]! };
  const exec = async (...args: string[]): Promise<{ code: number | null; out: string; err: string }> => {
    const run = runCli(t, ['exec', ...args], { env });
    const { code } = await run.exited;
    return { code, out: run.stdout(), err: run.stderr() };
  };

  t.same(await exec('transaction( block-dirty-bitmap-add node=d0 name=b0 )'), { code: 0, out: '{}\n', err: '' }, 'one argument holding the line');
  t.same(await exec('transaction(', 'block-dirty-bitmap-add', 'node=d0', 'name=b1', ')'), { code: 0, out: '{}\n', err: '' }, 'split into words');
  const bitmaps = await exec('query-named-block-nodes');
  t.match(bitmaps.out, /"dirty-bitmaps":\[\{"name":"b1".*\{"name":"b0"/, 'both bitmaps are there');
  t.same(await exec('transaction(', 'abort'), { code: 2, out: '', err: "qmp-mux exec: transaction( was not closed with )\ntry 'qmp-mux exec --help'\n" });

  const status = 'VM status: running\n';
  t.same(await exec('human-monitor-command', 'command-line=info status'), { code: 0, out: '"VM status: running\\r\\n"\n', err: '' }, "command-line='info status' as the shell passes it");
  t.same(await exec('-H', 'info', 'status'), { code: 0, out: status, err: '' }, '-H: the words are the HMP command, its output text');
  t.same(await exec('--hmp', 'info status'), { code: 0, out: status, err: '' });
  const lines = runCli(t, ['exec', '-H'], { env, input: 'info status\n\ninfo name\n' });
  t.same(await lines.exited, { code: 0, signal: null });
  t.equal(lines.stdout(), status, '-H on stdin: each line an HMP command (info name prints nothing without a name)');
  t.same(
    await exec('human-monitor-command', 'command-line=info', 'status'),
    { code: 2, out: '', err: "qmp-mux exec: expected KEY=VALUE, got 'status' (argument 3); a value with spaces is quoted: command-line='info status'\ntry 'qmp-mux exec --help'\n" },
    'unquoted: the error says how to quote',
  );
});
