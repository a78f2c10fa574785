import t from 'tap';
import { Completer } from '../../../src/client/completion.ts';
import { QmpSchema } from '../../../src/client/schema.ts';
import { json } from '../../fixtures/json-text.ts';
import { MINI_COMMANDS, MINI_SCHEMA } from '../../fixtures/mini-schema.ts';

const completer = new Completer(MINI_COMMANDS, new QmpSchema(MINI_SCHEMA));
const complete = (line: string, inTransaction = false): [string[], string] => completer.complete(line, inTransaction);

t.test('command names, sorted, by prefix', async (t) => {
  t.same(complete(''), [['blockdev-add ', 'qmp_capabilities ', 'query-commands ', 'query-status ', 'transaction '], ''], 'a completed name brings the space after it');
  t.same(complete('que'), [['query-commands ', 'query-status '], 'que']);
  t.same(complete('  query-s'), [['query-status '], 'query-s']);
  t.same(complete('nosuch'), [[], 'nosuch']);
});

t.test('argument names: required first, name= for values, name. for objects, both for alternates', async (t) => {
  t.same(complete('blockdev-add '), [['driver=', 'node-name=', 'cache.', 'read-only='], '']);
  t.same(complete('blockdev-add dr'), [['driver='], 'dr']);
  t.same(complete('blockdev-add c'), [['cache.'], 'c']);
  t.same(complete('blockdev-add driver=qcow2 '), [['file=', 'file.', 'node-name=', 'cache.', 'read-only=', 'backing=', 'backing.'], ''], "the variant's members once the discriminator is set; given ones left out");
  t.same(complete('blockdev-add driver="qcow2" read-only=true f'), [['file=', 'file.'], 'f'], 'a quoted discriminator value counts');
  t.same(complete("blockdev-add driver='qcow2' f"), [['file=', 'file.'], 'f']);
  t.same(complete('blockdev-add driver=raw '), [['node-name=', 'cache.', 'read-only='], ''], 'a variant with no members');
  t.same(complete('blockdev-add driver=nosuch '), [['node-name=', 'cache.', 'read-only='], ''], 'an unknown variant adds nothing');
  t.same(complete('query-status '), [[], '']);
  t.same(complete('nosuch-command '), [[], '']);
});

t.test('nested keys through dotted names, variants at each level', async (t) => {
  t.same(complete('blockdev-add cache.'), [['direct=', 'no-flush='], '']);
  t.same(complete('blockdev-add cache.n'), [['no-flush='], 'n']);
  t.same(complete('blockdev-add driver=qcow2 file.'), [['driver=', 'node-name=', 'cache.', 'read-only='], ''], "an alternate's object branch");
  t.same(complete('blockdev-add driver=qcow2 file.driver=file file.'), [['filename=', 'node-name=', 'cache.', 'read-only=', 'aio='], ''], 'the nested discriminator selects the nested variant');
  t.same(complete('blockdev-add driver=qcow2 file.driver=file file.cache.d'), [['direct='], 'd'], 'three levels');
  t.same(complete('blockdev-add node-name.'), [[], ''], 'a string has no members');
  t.same(complete('blockdev-add nosuch.x'), [[], 'x']);
});

t.test('values after =: enum values, booleans, null', async (t) => {
  t.same(complete('blockdev-add driver='), [['file ', 'qcow2 ', 'raw '], '']);
  t.same(complete('blockdev-add driver=q'), [['qcow2 '], 'q']);
  t.same(complete('blockdev-add driver=qcow2 file.driver=file file.aio='), [['threads ', 'native ', 'io_uring '], ''], 'an enum listed by members only');
  t.same(complete('blockdev-add read-only='), [['true ', 'false '], '']);
  t.same(complete('blockdev-add cache.direct=f'), [['false '], 'f']);
  t.same(complete('blockdev-add driver=qcow2 backing='), [['null '], ''], "an alternate's scalar branches");
  t.same(complete('blockdev-add node-name='), [[], ''], 'a string has no values to offer');
  t.same(complete('blockdev-add nosuch='), [[], '']);
  t.same(complete('blockdev-add nosuch.x='), [[], '']);
});

t.test('transaction actions and their data', async (t) => {
  t.same(complete('transaction( '), [['abort ', 'block-dirty-bitmap-add '], '']);
  t.same(complete('transaction( block-dirty-bitmap-add '), [['node=', 'name=', 'persistent='], '']);
  t.same(complete('bl', true), [['block-dirty-bitmap-add '], 'bl'], 'inside a transaction, lines start with an action type');
  t.same(complete('block-dirty-bitmap-add node=d0 persistent=', true), [['true ', 'false '], '']);
  t.same(complete('abort ', true), [[], ''], 'an action without data');
  t.same(complete('nosuch ', true), [[], '']);
  t.same(complete('transaction '), [['actions='], ''], 'transaction as a command takes actions=');
});

t.test('nothing inside JSON being typed', async (t) => {
  t.same(complete('{"execute": "qu'), [[], '']);
  t.same(complete('blockdev-add cache={"dir'), [[], '']);
  t.same(complete('blockdev-add node-name="a b'), [[], '']);
});

t.test('without a schema only command names complete; a schema without transaction has no actions', async (t) => {
  const names = new Completer(['b', 'a']);
  t.same(names.complete('', false), [['a ', 'b '], '']);
  t.same(names.complete('a ', false), [[], '']);
  t.same(names.complete('', true), [[], '']);
  const noTransaction = new Completer(['x'], new QmpSchema(json('[{"name": "x", "meta-type": "command", "arg-type": "0"}]')));
  t.same(noTransaction.complete('transaction( ', false), [[], '']);
  t.same(new Completer([], new QmpSchema(json('{"not": "a list"}'))).complete('x ', false), [[], '']);
});
