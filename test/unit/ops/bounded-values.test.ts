import t from 'tap';
import { BoundedValues } from '../../../src/ops/bounded-values.ts';

/** Records are the label they were made with, plus how many times each was made. */
function recorder(): { made: string[]; make: (label: string) => { label: string } } {
  const made: string[] = [];
  return { made, make: (label) => (made.push(label), { label }) };
}

t.test('first come: the first cap values get records of their own, later ones share other', async (t) => {
  const r = recorder();
  const v = new BoundedValues(r.make, { cap: 2 });
  t.equal(v.get('a').label, 'a');
  t.equal(v.get('b').label, 'b');
  t.equal(v.get('c').label, 'other');
  t.equal(v.get('d'), v.get('c'), 'one record for every other value');
  t.equal(v.get('a'), v.get('a'), 'a value keeps its record');
  t.same(r.made, ['a', 'b', 'other'], 'each record made once');
});

t.test('a flood of distinct values makes at most cap + 1 records', async (t) => {
  const r = recorder();
  const first = new BoundedValues(r.make, { cap: 50 });
  const listed = new BoundedValues(r.make, { cap: 50, allowed: ['x', 'y'] });
  for (let i = 0; i < 100_000; i++) {
    first.get(`hostile-${i}`);
    listed.get(`hostile-${i}`);
  }
  listed.get('x');
  t.equal(r.made.length, 50 + 1 + 1 + 1);
});

t.test('an allowed list: only its values get records, made when first used', async (t) => {
  const r = recorder();
  const v = new BoundedValues(r.make, { cap: 10, allowed: ['query-status', 'stop'] });
  t.same(r.made, []);
  t.equal(v.get('stop').label, 'stop');
  t.equal(v.get('quit').label, 'other');
  t.same(r.made, ['stop', 'other']);
});

t.test('a new allowed list replaces the old one; records of values still allowed are kept', async (t) => {
  const r = recorder();
  const v = new BoundedValues(r.make, { cap: 10, allowed: ['a', 'b'] });
  const a = v.get('a');
  v.get('b');
  v.allow(['a', 'c']);
  t.equal(v.get('a'), a);
  t.equal(v.get('b').label, 'other');
  t.equal(v.get('c').label, 'c');
  t.same(r.made, ['a', 'b', 'other', 'c']);
});

t.test('an allowed list longer than cap is cut to its first cap values', async (t) => {
  const r = recorder();
  const v = new BoundedValues(r.make, { cap: 2, allowed: ['a', 'b', 'c'] });
  t.same(['a', 'b', 'c'].map((x) => v.get(x).label), ['a', 'b', 'other']);
});
