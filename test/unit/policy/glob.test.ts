import t from 'tap';
import { globMatcher } from '../../../src/policy/glob.ts';

t.test('* matches any run of characters; everything else is literal and anchored', async (t) => {
  const m = globMatcher(['query-*', 'x-*-y', 'exact', 'a.b']);
  t.ok(m('query-status') && m('query-') && m('x--y') && m('x-abc-y') && m('exact') && m('a.b'));
  t.notOk(m('queryx'), 'no implicit separator');
  t.notOk(m('not-query-status'), 'anchored at the start');
  t.notOk(m('exactly'), 'anchored at the end');
  t.notOk(m('aXb'), '. is literal');
  t.ok(globMatcher(['__org.qmp-mux_*'])('__org.qmp-mux_query-proxy'));
  t.notOk(globMatcher(['(a|b)'])('a'), 'regular-expression syntax is literal');
  t.ok(globMatcher(['*'])('anything at all'));
  t.notOk(globMatcher([])('x'), 'no patterns match nothing');
  t.ok(globMatcher(['a*b*c'])('a\nbc'), 'even across line breaks');
});

t.test('clients choose patterns and names: matching takes time linear in them, whatever the stars', async (t) => {
  // As a backtracking regular expression, 201 bytes of stars took 44 s against STOP; these would
  // take years, so the test's own timeout fails it.
  const stars = globMatcher(['*'.repeat(2000) + 'Z']);
  const interleaved = globMatcher(['*S'.repeat(1000) + 'Z']);
  const long = 'S'.repeat(60000);
  for (const name of ['STOP', 'RESUME', 'BLOCK_JOB_COMPLETED', long]) {
    t.notOk(stars(name));
    t.notOk(interleaved(name));
  }
  t.ok(stars('STOPZ') && globMatcher(['*S*S*Z'])(`${long}Z`) && interleaved(`${'S'.repeat(1000)}Z`));
  t.notOk(interleaved(`${'S'.repeat(999)}Z`));
});

t.test('pieces between stars are found in order, not overlapping the ends', async (t) => {
  t.ok(globMatcher(['a*b*c'])('abc') && globMatcher(['a*b*c'])('aXbYc') && globMatcher(['a*b*c'])('abbc'));
  t.notOk(globMatcher(['a*b*c'])('acb'), 'order');
  t.notOk(globMatcher(['ab*ba'])('aba'), 'prefix and suffix may not share characters');
  t.ok(globMatcher(['ab*ba'])('abba'));
  t.notOk(globMatcher(['a*aa*a'])('aaa'), 'a middle piece may not use the suffix');
  t.ok(globMatcher(['a*aa*a'])('aaaa'));
  t.ok(globMatcher(['**'])('') && globMatcher(['a**'])('a') && globMatcher(['*a'])('a'));
  t.notOk(globMatcher(['a'])('aa'));
  t.ok(globMatcher(['x', 'y*'])('yes') && !globMatcher(['x', 'y*'])('no'));
});
