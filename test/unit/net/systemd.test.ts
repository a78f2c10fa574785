import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { LISTEN_FDS_START, MAX_LISTEN_FDS, listenInherited, matchSockets, readActivation, takeActivation, type Environment } from '../../../src/net/systemd.ts';
import { socketDir } from '../../fixtures/tmp.ts';

const PID = 4242;

t.test('readActivation: nothing passed', async (t) => {
  t.same(readActivation({}, PID), { kind: 'none' }, 'no variables');
  t.same(readActivation({ LISTEN_FDS: '1', LISTEN_FDNAMES: 'a' }, PID), { kind: 'none' }, 'no LISTEN_PID: nothing is for us');
  t.same(readActivation({ LISTEN_PID: '4242' }, PID), { kind: 'none' }, 'LISTEN_PID without LISTEN_FDS');
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_FDNAMES: 'a' }, PID), { kind: 'none' }, 'names without LISTEN_FDS');
});

t.test('readActivation: LISTEN_PID of another process', async (t) => {
  t.same(readActivation({ LISTEN_PID: '4243', LISTEN_FDS: '1' }, PID), { kind: 'not-ours', pid: 4243 });
  t.same(readActivation({ LISTEN_PID: '1', LISTEN_FDS: 'garbage', LISTEN_FDNAMES: 'a:b' }, PID), { kind: 'not-ours', pid: 1 }, 'the rest is not ours to judge');
});

t.test('readActivation: sockets from 3 on, named or "unknown"', async (t) => {
  t.equal(LISTEN_FDS_START, 3);
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: 'orchestrator' }, PID), { kind: 'sockets', sockets: [{ fd: 3, name: 'orchestrator' }] });
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' }, PID), {
    kind: 'sockets',
    sockets: [
      { fd: 3, name: 'a' },
      { fd: 4, name: 'b' },
    ],
  });
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_FDS: '2' }, PID), {
    kind: 'sockets',
    sockets: [
      { fd: 3, name: 'unknown' },
      { fd: 4, name: 'unknown' },
    ],
  }, 'no LISTEN_FDNAMES: every name is "unknown"');
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_FDS: '3', LISTEN_FDNAMES: 'a::b' }, PID), {
    kind: 'sockets',
    sockets: [
      { fd: 3, name: 'a' },
      { fd: 4, name: '' },
      { fd: 5, name: 'b' },
    ],
  }, 'empty names are kept in place');
  t.same(readActivation({ LISTEN_PID: '4242', LISTEN_PIDFDID: '123456789012', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' }, PID), { kind: 'sockets', sockets: [{ fd: 3, name: 'x' }] }, 'LISTEN_PIDFDID accepted');
  const most = readActivation({ LISTEN_PID: '4242', LISTEN_FDS: String(MAX_LISTEN_FDS) }, PID);
  t.equal(most.kind === 'sockets' && most.sockets.at(-1)?.fd, LISTEN_FDS_START + MAX_LISTEN_FDS - 1, 'the most descriptors');
});

t.test('readActivation: bad values, each named', async (t) => {
  const cases: [Environment, string][] = [
    [{ LISTEN_PID: '' }, 'LISTEN_PID: expected a process id, got ""'],
    [{ LISTEN_PID: 'abc' }, 'LISTEN_PID: expected a process id, got "abc"'],
    [{ LISTEN_PID: '0' }, 'LISTEN_PID: expected a process id, got "0"'],
    [{ LISTEN_PID: '-1' }, 'LISTEN_PID: expected a process id, got "-1"'],
    [{ LISTEN_PID: '+4242' }, 'LISTEN_PID: expected a process id, got "+4242"'],
    [{ LISTEN_PID: ' 4242' }, 'LISTEN_PID: expected a process id, got " 4242"'],
    [{ LISTEN_PID: '04242' }, 'LISTEN_PID: expected a process id, got "04242"'],
    [{ LISTEN_PID: '4242\n' }, 'LISTEN_PID: expected a process id, got "4242\\n"'],
    [{ LISTEN_PID: '1'.repeat(21) }, `LISTEN_PID: expected a process id, got "${'1'.repeat(21)}"`],
    [{ LISTEN_PID: '4242', LISTEN_PIDFDID: 'x', LISTEN_FDS: '1' }, 'LISTEN_PIDFDID: expected a pidfd inode number, got "x"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '0' }, 'LISTEN_FDS: expected a number of descriptors, 1 to 65536, got "0"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '' }, 'LISTEN_FDS: expected a number of descriptors, 1 to 65536, got ""'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: 'two' }, 'LISTEN_FDS: expected a number of descriptors, 1 to 65536, got "two"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '1.5' }, 'LISTEN_FDS: expected a number of descriptors, 1 to 65536, got "1.5"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '65537' }, 'LISTEN_FDS: expected a number of descriptors, 1 to 65536, got "65537"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, 'LISTEN_FDNAMES: 2 names for 1 descriptor (LISTEN_FDS=1): "a:b"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, 'LISTEN_FDNAMES: 1 name for 2 descriptors (LISTEN_FDS=2): "a"'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: '' }, 'LISTEN_FDNAMES: 0 names for 1 descriptor (LISTEN_FDS=1): ""'],
  ];
  for (const [env, message] of cases) t.throws(() => readActivation(env, PID), { code: 'QMPMUX_ACTIVATION', message }, JSON.stringify(env));
});

t.test('takeActivation: removes the variables whatever they say, and nothing else', async (t) => {
  const envs: Environment[] = [
    { LISTEN_PID: '4242', LISTEN_PIDFDID: '7', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a', PATH: '/bin' },
    { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a', PATH: '/bin' },
    { LISTEN_FDS: '1', LISTEN_FDNAMES: 'a', PATH: '/bin' },
  ];
  t.same(
    envs.map((env) => takeActivation(env, PID).kind),
    ['sockets', 'not-ours', 'none'],
  );
  const bad: Environment = { LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b', PATH: '/bin' };
  t.throws(() => takeActivation(bad, PID), { code: 'QMPMUX_ACTIVATION' });
  for (const env of [...envs, bad]) t.same(env, { PATH: '/bin' });
});

t.test('takeActivation: by default, this process and process.env', async (t) => {
  t.teardown(() => {
    for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete process.env[k];
  });
  Object.assign(process.env, { LISTEN_PID: String(process.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'orchestrator' });
  t.same(takeActivation(), { kind: 'sockets', sockets: [{ fd: 3, name: 'orchestrator' }] });
  t.same(
    Object.keys(process.env).filter((k) => k.startsWith('LISTEN_')),
    [],
    'gone from the environment children inherit',
  );
});

t.test('matchSockets: by endpoint name', async (t) => {
  const endpoints = ['orchestrator', 'metrics', 'backup'];
  const a = { fd: 3, name: 'metrics' };
  const b = { fd: 4, name: 'orchestrator' };
  t.same([...matchSockets(endpoints, [a, b])], [
    ['metrics', a],
    ['orchestrator', b],
  ], 'endpoints without a socket (backup) listen on their own');
  t.same([...matchSockets(endpoints, [])], [], 'none passed');
  t.throws(() => matchSockets(endpoints, [a, { fd: 4, name: 'unknown' }]), {
    code: 'QMPMUX_ACTIVATION',
    message:
      "the socket systemd passed as fd 4 is named 'unknown', and no endpoint has that name (endpoints: orchestrator, metrics, backup); " +
      'name it after its endpoint: FileDescriptorName= in the socket unit, --fdname= with systemd-socket-activate',
  });
  t.throws(() => matchSockets(endpoints, [a, { fd: 4, name: 'metrics' }]), {
    code: 'QMPMUX_ACTIVATION',
    message: "the sockets systemd passed as fds 3 and 4 are both named 'metrics'; an endpoint takes one socket: give each its own FileDescriptorName= (one socket unit each)",
  });
});

t.test('listenInherited: a descriptor that is not a socket', async (t) => {
  const dir = socketDir(t);
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, 'x');
  const fd = openSync(file, 'r');
  t.teardown(() => closeSync(fd));
  await t.rejects(listenInherited({ fd, name: 'orchestrator' }, { type: 'unix', path: join(dir, 'qmp.sock') }, () => undefined), {
    code: 'QMPMUX_LISTEN',
    message: `cannot listen on the socket systemd passed as 'orchestrator' (fd ${fd}): listen EINVAL: invalid argument; it must be a stream socket (ListenStream=)`,
  });
});
