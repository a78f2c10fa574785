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
