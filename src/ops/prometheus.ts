/**
 * A small Prometheus metrics registry and its text exposition format 0.0.4.
 * Updating a series is a field update; label sets are resolved once, when
 * a series is asked for, so callers on a data path keep the series they use.
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The label value that stands for every value not given a series of its own. */
export const OTHER = 'other';

/** Content-Type of the exposition. */
export const EXPOSITION_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricOptions {
  /** Metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
  name: string;
  /** One line or more saying what it measures. */
  help: string;
  /** Label names, in the order `labels()` takes their values. Default: none. */
  labelNames?: readonly string[];
  /**
   * Distinct label sets the metric keeps. Past it, every new label set is
   * counted in one more series whose labels are all `other`, so the series
   * a metric exposes never exceed `maxSeries + 1`. Default 1000.
   */
  maxSeries?: number;
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, increasing, finite; `+Inf` is added. */
  buckets: readonly number[];
}

export interface CollectedGaugeOptions extends MetricOptions {
  /**
   * Called at each scrape; reports each value with its label values (one per
   * label name). A label set reported twice keeps the later value; reports
   * past `maxSeries` distinct label sets are left out.
   */
  collect(report: (value: number, ...labelValues: string[]) => void): void;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** A metric family: name, help, type and label names. */
abstract class Family {
  readonly name: string;
  protected readonly labelNames: readonly string[];
  protected readonly maxSeries: number;
  private readonly help: string;

  constructor(
    private readonly type: MetricType,
    options: MetricOptions,
  ) {
    checkNames(options);
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.maxSeries = options.maxSeries ?? 1000;
  }

  /** Appends the family's lines (none when it has no series). */
  abstract render(out: string[]): void;

  protected header(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
  }

  /** The label text without braces (`a="x",b="y"`; empty for no labels). */
  protected labelText(values: readonly string[]): string {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    let text = '';
    for (let i = 0; i < values.length; i++) text += `${i > 0 ? ',' : ''}${this.labelNames[i]}="${escapeLabelValue(values[i]!)}"`;
    return text;
  }
}

/** A family that keeps its series, found by label set. */
abstract class Stored<S extends { readonly labels: string }> extends Family {
  private readonly series = new Map<string, S>();
  /** The series in exposition order; recomputed only when one is added. */
  private sorted: S[] | undefined;

  /** The series for these label values, one per label name; created the first time. */
  labels(...values: string[]): S {
    let text = this.labelText(values);
    let found = this.series.get(text);
    if (found !== undefined) return found;
    if (this.series.size >= this.maxSeries) {
      text = this.labelText(values.map(() => OTHER));
      found = this.series.get(text);
      if (found !== undefined) return found;
    }
    const created = this.create(text);
    this.series.set(text, created);
    this.sorted = undefined;
    return created;
  }

  render(out: string[]): void {
    // A metric without labels has its one series from the start, at zero.
    if (this.labelNames.length === 0) this.labels();
    if (this.series.size === 0) return;
    this.sorted ??= [...this.series.values()].sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0));
    this.header(out);
    for (const s of this.sorted) this.sample(out, s);
  }

  protected abstract create(labels: string): S;
  protected abstract sample(out: string[], series: S): void;
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: string) {}

  /** Adds `n` (default 1; never negative). */
  inc(n = 1): void {
    if (!(n >= 0)) throw new RangeError(`a counter cannot go down (inc(${n}))`);
    this.value += n;
  }
}

export class Counter extends Stored<CounterSeries> {
  constructor(options: MetricOptions) {
    super('counter', options);
  }

  protected create(labels: string): CounterSeries {
    return new CounterSeries(labels);
  }

  protected sample(out: string[], s: CounterSeries): void {
    out.push(sampleLine(this.name, s.labels, s.value));
  }
}

export class GaugeSeries {
  value = 0;
  constructor(readonly labels: string) {}

  set(value: number): void {
    this.value = value;
  }
}

export class Gauge extends Stored<GaugeSeries> {
  constructor(options: MetricOptions) {
    super('gauge', options);
  }

  protected create(labels: string): GaugeSeries {
    return new GaugeSeries(labels);
  }

  protected sample(out: string[], s: GaugeSeries): void {
    out.push(sampleLine(this.name, s.labels, s.value));
  }
}

/**
 * A gauge, or a counter kept elsewhere, whose values are asked for at each
 * scrape instead of being kept here; written in the order reported.
 */
export class CollectedGauge extends Family {
  private readonly collect: CollectedGaugeOptions['collect'];

  constructor(options: CollectedGaugeOptions, type: 'gauge' | 'counter' = 'gauge') {
    super(type, options);
    this.collect = options.collect;
  }

  render(out: string[]): void {
    const values = new Map<string, number>();
    this.collect((value, ...labelValues) => {
      const text = this.labelText(labelValues);
      if (values.size < this.maxSeries || values.has(text)) values.set(text, value);
    });
    if (values.size === 0) return;
    this.header(out);
    for (const [labels, value] of values) out.push(sampleLine(this.name, labels, value));
  }
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last is `+Inf`'s own. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && !(value <= this.bounds[i]!)) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class Histogram extends Stored<HistogramSeries> {
  private readonly bounds: readonly number[];
  private readonly les: readonly string[];

  constructor(options: HistogramOptions) {
    super('histogram', options);
    if (this.labelNames.includes('le')) throw new RangeError(`${options.name}: a histogram cannot have a label named 'le'`);
    const b = options.buckets;
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
      throw new RangeError(`${options.name}: buckets must be finite and increasing`);
    }
    this.bounds = [...b];
    this.les = [...b.map(formatNumber), '+Inf'];
  }

  protected create(labels: string): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }

  protected sample(out: string[], s: HistogramSeries): void {
    const prefix = s.labels === '' ? '' : `${s.labels},`;
    let cumulative = 0;
    for (let i = 0; i < this.les.length; i++) {
      cumulative += s.counts[i]!;
      out.push(`${this.name}_bucket{${prefix}le="${this.les[i]}"} ${formatNumber(cumulative)}`);
    }
    out.push(`${this.name}_sum${braces(s.labels)} ${formatNumber(s.sum)}`, `${this.name}_count${braces(s.labels)} ${formatNumber(s.count)}`);
  }
}

/** Metrics in registration order, written together. */
export class Registry {
  private readonly families: Family[] = [];

  counter(options: MetricOptions): Counter {
    return this.add(new Counter(options));
  }

  gauge(options: MetricOptions): Gauge {
    return this.add(new Gauge(options));
  }

  collectedGauge(options: CollectedGaugeOptions): CollectedGauge {
    return this.add(new CollectedGauge(options));
  }

  /** A counter whose value something else keeps (it must only grow), read at each scrape. */
  collectedCounter(options: CollectedGaugeOptions): CollectedGauge {
    return this.add(new CollectedGauge(options, 'counter'));
  }

  histogram(options: HistogramOptions): Histogram {
    return this.add(new Histogram(options));
  }

  /** The text exposition (format 0.0.4) of every metric with at least one series. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families) f.render(out);
    return out.length === 0 ? '' : out.join('\n') + '\n';
  }

  private add<F extends Family>(family: F): F {
    if (this.families.some((f) => f.name === family.name)) throw new RangeError(`metric ${family.name} is registered twice`);
    this.families.push(family);
    return family;
  }
}

function checkNames(options: MetricOptions): void {
  if (!METRIC_NAME.test(options.name)) throw new RangeError(`'${options.name}' is not a valid metric name`);
  const labels = options.labelNames ?? [];
  for (const l of labels) {
    if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new RangeError(`${options.name}: '${l}' is not a valid label name`);
  }
  if (new Set(labels).size !== labels.length) throw new RangeError(`${options.name}: a label name is given twice`);
}

function braces(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function sampleLine(name: string, labels: string, value: number): string {
  return `${name}${braces(labels)} ${formatNumber(value)}`;
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** Help text escapes backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Numbers as Prometheus reads them: `+Inf`, `-Inf`, `NaN`, otherwise JavaScript's shortest form. */
export function formatNumber(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? '+Inf' : '-Inf';
}
