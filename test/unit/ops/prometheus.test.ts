import t from 'tap';
import { escapeHelp, escapeLabelValue, formatNumber, Registry } from '../../../src/ops/prometheus.ts';

t.test('counters, labelled counters, gauges, collected gauges: the exposition byte for byte', async (t) => {
  const r = new Registry();
  const plain = r.counter({ name: 'app_requests_total', help: 'Requests.' }).labels();
  const byKind = r.counter({ name: 'app_things_total', help: 'Things, by kind and colour.', labelNames: ['kind', 'colour'] });
  r.gauge({ name: 'app_temperature_celsius', help: 'Temperature.' }).labels().set(-3.5);
  r.collectedGauge({
    name: 'app_queue_bytes',
    help: 'Queued, by queue.',
    labelNames: ['queue'],
    collect: (report) => {
      report(7, 'b');
      report(1, 'a');
      report(9, 'b');
    },
  });
  plain.inc();
  plain.inc(2);
  byKind.labels('z', 'red').inc(5);
  byKind.labels('a', 'blue').inc();
  byKind.labels('z', 'red').inc();
  t.equal(
    r.render(),
    [
      '# HELP app_requests_total Requests.',
      '# TYPE app_requests_total counter',
      'app_requests_total 3',
      '# HELP app_things_total Things, by kind and colour.',
      '# TYPE app_things_total counter',
      'app_things_total{kind="a",colour="blue"} 1',
      'app_things_total{kind="z",colour="red"} 6',
      '# HELP app_temperature_celsius Temperature.',
      '# TYPE app_temperature_celsius gauge',
      'app_temperature_celsius -3.5',
      '# HELP app_queue_bytes Queued, by queue.',
      '# TYPE app_queue_bytes gauge',
      'app_queue_bytes{queue="b"} 9',
      'app_queue_bytes{queue="a"} 1',
      '',
    ].join('\n'),
  );
});

t.test('a histogram: cumulative buckets with +Inf, _sum, _count, labelled and not', async (t) => {
  const r = new Registry();
  const h = r.histogram({ name: 'op_seconds', help: 'Op time.', labelNames: ['op'], buckets: [0.001, 0.5, 2] });
  const plain = r.histogram({ name: 'all_seconds', help: 'All.', buckets: [1] });
  const read = h.labels('read');
  read.observe(0.0005);
  read.observe(0.001);
  read.observe(0.25);
  read.observe(3);
  h.labels('write').observe(1);
  plain.labels().observe(0.5);
  t.equal(
    r.render(),
    [
      '# HELP op_seconds Op time.',
      '# TYPE op_seconds histogram',
      'op_seconds_bucket{op="read",le="0.001"} 2',
      'op_seconds_bucket{op="read",le="0.5"} 3',
      'op_seconds_bucket{op="read",le="2"} 3',
      'op_seconds_bucket{op="read",le="+Inf"} 4',
      'op_seconds_sum{op="read"} 3.2515',
      'op_seconds_count{op="read"} 4',
      'op_seconds_bucket{op="write",le="0.001"} 0',
      'op_seconds_bucket{op="write",le="0.5"} 0',
      'op_seconds_bucket{op="write",le="2"} 1',
      'op_seconds_bucket{op="write",le="+Inf"} 1',
      'op_seconds_sum{op="write"} 1',
      'op_seconds_count{op="write"} 1',
      '# HELP all_seconds All.',
      '# TYPE all_seconds histogram',
      'all_seconds_bucket{le="1"} 1',
      'all_seconds_bucket{le="+Inf"} 1',
      'all_seconds_sum 0.5',
      'all_seconds_count 1',
      '',
    ].join('\n'),
  );
});

t.test('escaping: backslash, double quote and line feed in label values; backslash and line feed in help', async (t) => {
  const r = new Registry();
  r.counter({ name: 'x_total', help: 'A \\ path\nand "quotes"', labelNames: ['v'] }).labels('C:\\dir "q"\nnext').inc();
  t.equal(r.render(), '# HELP x_total A \\\\ path\\nand "quotes"\n# TYPE x_total counter\nx_total{v="C:\\\\dir \\"q\\"\\nnext"} 1\n');
  t.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  t.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
});

t.test('numbers as Prometheus reads them', async (t) => {
  t.same([0, -0, 1.5, 1e21, 1e-7, Infinity, -Infinity, NaN].map(formatNumber), ['0', '0', '1.5', '1e+21', '1e-7', '+Inf', '-Inf', 'NaN']);
});

t.test('labelled metrics without series are left out; unlabelled ones show zero from the start', async (t) => {
  const r = new Registry();
  r.counter({ name: 'a_total', help: 'A.', labelNames: ['x'] });
  r.histogram({ name: 'b_seconds', help: 'B.', labelNames: ['x'], buckets: [1] });
  r.collectedGauge({ name: 'c', help: 'C.', collect: () => undefined });
  t.equal(r.render(), '');
  r.counter({ name: 'd_total', help: 'D.' });
  t.equal(r.render(), '# HELP d_total D.\n# TYPE d_total counter\nd_total 0\n');
});

t.test('series are written in label order, whatever order they were made in, and the order is kept up to date', async (t) => {
  const r = new Registry();
  const c = r.counter({ name: 'n_total', help: 'N.', labelNames: ['k'] });
  for (const k of ['m', 'b', 'x']) c.labels(k).inc();
  t.match(r.render(), /k="b".*\n.*k="m".*\n.*k="x"/);
  c.labels('a').inc();
  t.match(r.render(), /k="a".*\n.*k="b".*\n.*k="m".*\n.*k="x"/);
});

t.test('past maxSeries, new label sets share one series labelled other: a flood stays bounded', async (t) => {
  const r = new Registry();
  const c = r.counter({ name: 'flood_total', help: 'F.', labelNames: ['a', 'b'], maxSeries: 3 });
  const h = r.histogram({ name: 'flood_seconds', help: 'F.', labelNames: ['a'], buckets: [1], maxSeries: 2 });
  for (let i = 0; i < 10_000; i++) {
    c.labels(`name${i}`, 'x').inc();
    h.labels(`name${i}`).observe(0.5);
  }
  const text = r.render();
  const counterLines = text.split('\n').filter((l) => l.startsWith('flood_total'));
  t.same(counterLines, ['flood_total{a="name0",b="x"} 1', 'flood_total{a="name1",b="x"} 1', 'flood_total{a="name2",b="x"} 1', 'flood_total{a="other",b="other"} 9997']);
  t.same(
    text.split('\n').filter((l) => l.startsWith('flood_seconds_count')),
    ['flood_seconds_count{a="name0"} 1', 'flood_seconds_count{a="name1"} 1', 'flood_seconds_count{a="other"} 9998'],
  );
  t.equal(c.labels('name1', 'x').value, 1, 'series made before the cap are still found');
});

t.test('a collected gauge keeps at most maxSeries label sets', async (t) => {
  const r = new Registry();
  r.collectedGauge({
    name: 'g',
    help: 'G.',
    labelNames: ['k'],
    maxSeries: 2,
    collect: (report) => {
      for (let i = 0; i < 100; i++) report(i, `k${i}`);
      report(-1, 'k0');
    },
  });
  t.equal(r.render(), '# HELP g G.\n# TYPE g gauge\ng{k="k0"} -1\ng{k="k1"} 1\n');
});

t.test('mistakes are refused when the metric is made or used', async (t) => {
  const r = new Registry();
  t.throws(() => r.counter({ name: '1bad', help: '' }), /'1bad' is not a valid metric name/);
  t.throws(() => r.counter({ name: 'ok_total', help: '', labelNames: ['bad-label'] }), /'bad-label' is not a valid label name/);
  t.throws(() => r.counter({ name: 'ok_total', help: '', labelNames: ['__reserved'] }), /'__reserved' is not a valid label name/);
  t.throws(() => r.counter({ name: 'ok_total', help: '', labelNames: ['a', 'a'] }), /a label name is given twice/);
  t.throws(() => r.histogram({ name: 'h', help: '', labelNames: ['le'], buckets: [1] }), /cannot have a label named 'le'/);
  t.throws(() => r.histogram({ name: 'h', help: '', buckets: [] }), /buckets must be finite and increasing/);
  t.throws(() => r.histogram({ name: 'h', help: '', buckets: [1, 1] }), /buckets must be finite and increasing/);
  t.throws(() => r.histogram({ name: 'h', help: '', buckets: [1, Infinity] }), /buckets must be finite and increasing/);
  const c = r.counter({ name: 'c_total', help: '', labelNames: ['a'] });
  t.throws(() => r.gauge({ name: 'c_total', help: '' }), /metric c_total is registered twice/);
  t.throws(() => c.labels(), /c_total: expected 1 label values, got 0/);
  t.throws(() => c.labels('x').inc(-1), /a counter cannot go down/);
  t.throws(() => c.labels('x').inc(NaN), /a counter cannot go down/);
  t.equal(c.labels('x').value, 0);
});
