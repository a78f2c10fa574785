import t from 'tap';
import { SystemdNotifier, takeNotifier } from '../../../src/cli/systemd-notify.ts';
import { createLogger } from '../../../src/log.ts';

/** The notifier's edges: the environment it takes, and a sender that cannot even be started (systemd-notify itself is run in readiness.test.ts). */

t.test('takeNotifier: none without NOTIFY_SOCKET; takes the variable out of the environment; refuses without systemd-notify', async (t) => {
  t.equal(takeNotifier({}), undefined);
  t.equal(takeNotifier({ NOTIFY_SOCKET: '' }), undefined);
  const path = process.env.PATH;
  t.teardown(() => {
    process.env.PATH = path;
  });
  process.env.PATH = '/nonexistent';
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify' };
  t.throws(() => takeNotifier(env), { code: 'QMPMUX_CONFIG', message: /^NOTIFY_SOCKET is set \(a systemd Type=notify service\), but systemd-notify is not on PATH/ });
  t.equal(env.NOTIFY_SOCKET, '/run/systemd/notify', 'left as it was when refused');
});

t.test('a sender that cannot be started: each message settles, and the failure is logged once', async (t) => {
  const lines: string[] = [];
  const notifier = new SystemdNotifier('/nonexistent/systemd-notify', '/run/nobody');
  notifier.logTo(createLogger({ level: 'debug', format: 'text', trace: false, sink: (line) => lines.push(line) }));
  await notifier.ready('ready');
  await notifier.stopping('stopping');
  await notifier.settled();
  t.equal(lines.length, 1, lines.join('\n'));
  t.match(lines[0], /ERROR cannot notify systemd program=\/nonexistent\/systemd-notify socket=\/run\/nobody why=.*ENOENT/);
});
