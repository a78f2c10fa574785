import t from 'tap';
import { ConfigError } from '../../../src/errors.ts';
import { metricsAddress, readMetricsOptions, resolveMetricsOptions } from '../../../src/config/ops-fields.ts';

t.test('the config file\'s metrics object', async (t) => {
  t.same(readMetricsOptions({ listen: 'tcp:127.0.0.1:9464' }, 'config.metrics'), { listen: { type: 'tcp', host: '127.0.0.1', port: 9464 }, allowRemote: false });
  t.same(readMetricsOptions({ listen: 'tcp:[::]:0', allowRemote: true, $comment: 'x' }, 'config.metrics'), { listen: { type: 'tcp', host: '::', port: 0 }, allowRemote: true });
});

t.test('mistakes name the field and the reason', async (t) => {
  const mistakes: [unknown, RegExp][] = [
    ['tcp:127.0.0.1:9464', /^config\.metrics: expected an object, got string "tcp:127.0.0.1:9464"$/],
    [{}, /^config\.metrics\.listen: expected a string, got undefined/],
    [{ listen: 'unix:/run/m.sock' }, /^config\.metrics\.listen: 'unix:\/run\/m\.sock': the metrics listener takes tcp:HOST:PORT/],
    [{ listen: '127.0.0.1:9464' }, /^config\.metrics\.listen: '127\.0\.0\.1:9464': the metrics listener takes tcp:HOST:PORT \(Prometheus scrapes over TCP\); did you mean tcp:127\.0\.0\.1:9464\?$/],
    [{ listen: 'tcp:127.0.0.1:9464', allowRemote: 'yes' }, /^config\.metrics\.allowRemote: expected true or false/],
    [{ listen: 'tcp:127.0.0.1:9464', port: 1 }, /^config\.metrics\.port: unknown key; known keys: listen, allowRemote$/],
  ];
  for (const [value, message] of mistakes) {
    t.throws(() => readMetricsOptions(value, 'config.metrics'), { message, code: 'QMPMUX_CONFIG' }, JSON.stringify(value));
    t.throws(() => readMetricsOptions(value, 'config.metrics'), ConfigError);
  }
});

t.test('--metrics takes tcp:HOST:PORT only', async (t) => {
  t.same(metricsAddress('tcp:localhost:0'), { type: 'tcp', host: 'localhost', port: 0 });
  t.throws(() => metricsAddress('unix:/x'), { code: 'QMPMUX_ADDRESS', message: /^'unix:\/x': the metrics listener takes tcp:HOST:PORT/ });
  t.throws(() => metricsAddress('tcp:x'), { code: 'QMPMUX_ADDRESS' });
});

t.test('--metrics replaces the file\'s address and keeps its allowRemote', async (t) => {
  const flag = { type: 'tcp' as const, host: '0.0.0.0', port: 1 };
  const file = { listen: { type: 'tcp' as const, host: '127.0.0.1', port: 2 }, allowRemote: true };
  t.same(resolveMetricsOptions(flag, file), { listen: flag, allowRemote: true });
  t.same(resolveMetricsOptions(flag, undefined), { listen: flag, allowRemote: false });
  t.equal(resolveMetricsOptions(undefined, file), file);
  t.equal(resolveMetricsOptions(undefined, undefined), undefined);
});
