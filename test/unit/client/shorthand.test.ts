import t from 'tap';
import { commandFromArgs, ShorthandParser, type ParsedLine } from '../../../src/client/shorthand.ts';
import { splitWords } from '../../../src/client/words.ts';
import { ShorthandError } from '../../../src/errors.ts';
import { writeCompact } from '../../../src/json/writer.ts';

/** A parsed line as text: `NAME {arguments}`, `action N`, `empty`, or `error: message`. */
function describe(parsed: ParsedLine): string {
  switch (parsed.kind) {
    case 'empty':
      return 'empty';
    case 'action':
      return `action ${parsed.actions}`;
    case 'command':
      return `${parsed.command.name} ${writeCompact(parsed.command.arguments).text}`;
  }
}

function parseLines(...lines: string[]): string[] {
  const parser = new ShorthandParser();
  return lines.map((line) => {
    try {
      return describe(parser.parse(line));
    } catch (e) {
      if (!(e instanceof ShorthandError)) throw e;
      return `error: ${e.message}`;
    }
  });
}

t.test('splitWords: spaces separate words except inside quotes and brackets', async (t) => {
  const words = (line: string): string[] => splitWords(line).words.map((w) => w.text);
  t.same(words('  a  b\tc '), ['a', 'b', 'c']);
  t.same(words('a k="x y" j=\'p q\''), ['a', 'k="x y"', "j='p q'"]);
  t.same(words('a k={"x": [1, 2], "y": {}} z=1'), ['a', 'k={"x": [1, 2], "y": {}}', 'z=1']);
  t.same(words('a k="say \\"hi there\\"" z'), ['a', 'k="say \\"hi there\\""', 'z']);
  t.same(words("a k='{' b"), ['a', "k='{'", 'b'], 'a bracket inside quotes does not open');
  t.same(words('a k=[1}] b'), ['a', 'k=[1}]', 'b'], 'any closer closes the innermost');
  t.same(words('a x} y'), ['a', 'x}', 'y'], 'a closer with nothing open is a character');
  t.same(splitWords('a b').words.map((w) => [w.start, w.end]), [[0, 1], [2, 3]], 'positions');
  t.same(splitWords('').words, []);
  t.equal(splitWords('a ').betweenWords, true);
  t.equal(splitWords('a').betweenWords, false);
  t.same(splitWords('a k="x y').unclosed, { opener: '"', at: 4 });
  t.same(splitWords("a k='x").unclosed, { opener: "'", at: 4 });
  t.same(splitWords('a k={"a": [1').unclosed, { opener: '{', at: 4 }, 'the outermost bracket left open');
  t.same(splitWords('a k="x\\"').unclosed, { opener: '"', at: 4 }, 'an escaped quote does not close');
});

t.test('commands and values', async (t) => {
  const cases: [string, string][] = [
    ['query-status', 'query-status {}'],
    ['  query-status  ', 'query-status {}'],
    ['__org.qmp-mux_query-clients', '__org.qmp-mux_query-clients {}'],
    ['cmd n=42 neg=-7 f=1.5 e=1e3 big=18446744073709551615', 'cmd {"n":42,"neg":-7,"f":1.5,"e":1e3,"big":18446744073709551615}'],
    ['cmd t=true f=false z=null', 'cmd {"t":true,"f":false,"z":null}'],
    ['cmd s=hello p=/tmp/a.img u=unix:/x.sock', 'cmd {"s":"hello","p":"/tmp/a.img","u":"unix:/x.sock"}'],
    ['cmd T=True n=0x10 z=01 d=1.2.3 m=- inf=inf', 'cmd {"T":"True","n":"0x10","z":"01","d":"1.2.3","m":"-","inf":"inf"}'],
    ['cmd q="42" s="a b" x=\'it\\\'s\' e=""', 'cmd {"q":"42","s":"a b","x":"it\'s","e":""}'],
    ['cmd empty=', 'cmd {"empty":""}'],
    ['cmd eq=a=b', 'cmd {"eq":"a=b"}'],
    ['cmd half=x"a b"y', 'cmd {"half":"x\\"a b\\"y"}'],
    ['cmd o={"a": 1, "b": [true, null]} l=[1, "two"]', 'cmd {"o":{"a":1,"b":[true,null]},"l":[1,"two"]}'],
    ["cmd o={'single': 'quotes'}", 'cmd {"o":{"single":"quotes"}}'],
    ['human-monitor-command command-line="info status"', 'human-monitor-command {"command-line":"info status"}'],
    ['blockdev-add driver=qcow2 node-name=d0 file.driver=file file.filename=/tmp/d.qcow2 file.aio.x=1', 'blockdev-add {"driver":"qcow2","node-name":"d0","file":{"driver":"file","filename":"/tmp/d.qcow2","aio":{"x":1}}}'],
    ['cmd é=ü', 'cmd {"é":"ü"}'],
  ];
  for (const [line, expected] of cases) t.same(parseLines(line), [expected], line);
});

t.test('raw JSON commands', async (t) => {
  t.same(parseLines('{"execute": "query-status"}'), ['query-status {}']);
  t.same(parseLines(' {"execute": "x", "arguments": {"a": 18446744073709551615}, "id": "mine"}'), ['x {"a":18446744073709551615}'], 'the id is dropped');
  t.same(parseLines("{'execute': 'x'}"), ['x {}'], "QEMU's single quotes");
  t.same(parseLines(
    '{"execute": 1}',
    '{"arguments": {}}',
    '{"execute": "x", "arguments": []}',
    '{"execute": "x", "foo": 1}',
    '{"exec-oob": "migrate-pause"}',
    '{"execute": "x"',
    '{"execute": "x"} {"execute": "y"}',
    '{"execute":}',
  ), [
    'error: JSON command: "execute" must be a string (the command name)',
    'error: JSON command: "execute" must be a string (the command name)',
    'error: JSON command: "arguments" must be an object',
    `error: JSON command: unexpected member 'foo' (expected {"execute": NAME, "arguments": {...}})`,
    'error: exec-oob is not supported: this client does not enable out-of-band execution',
    'error: JSON command: incomplete JSON',
    'error: JSON command: more than one JSON value',
    'error: JSON command: JSON parse error, expecting value',
  ]);
});

t.test('errors name the word and the column', async (t) => {
  t.same(parseLines(
    'cmd a',
    'cmd a=1 b',
    'k=v',
    '"cmd"',
    'cmd a..b=1',
    'cmd .a=1',
    'cmd a.=1',
    'cmd "a"=1',
    'cmd a=1 a=2',
    'cmd a=1 a.b=2',
    'cmd a.b=1 a=2',
    'cmd a.b=1 a.b.c=2',
    'cmd a={} a.b=1',
    'cmd v={"a": 1,}',
    'cmd v=[1 2]',
    'cmd v="a"b',
    "cmd v='x'y",
    'cmd v="unclosed',
    'cmd v={"a": [1, 2]',
  ), [
    "error: expected KEY=VALUE, got 'a' (column 5)",
    "error: expected KEY=VALUE, got 'b' (column 9); a value with spaces is quoted: a='1 b'",
    "error: expected a command name, got 'k=v' (column 1)",
    `error: expected a command name, got '"cmd"' (column 1)`,
    "error: bad argument name 'a..b' (column 5)",
    "error: bad argument name '.a' (column 5)",
    "error: bad argument name 'a.' (column 5)",
    `error: bad argument name '"a"' (column 5)`,
    "error: 'a' is given twice (column 9)",
    "error: 'a' is given both as a value and as an object (column 9)",
    "error: 'a' is given both as a value and as an object (column 11)",
    "error: 'a.b' is given both as a value and as an object (column 11)",
    "error: 'a' is given both as a value and as an object (column 10)",
    "error: value of 'v': JSON parse error, expecting value (column 5)",
    "error: value of 'v': JSON parse error, expected separator in list (column 5)",
    "error: value of 'v': more than one JSON value (column 5)",
    "error: value of 'v': more than one JSON value (column 5)",
    'error: unclosed " (column 7)',
    'error: unclosed { (column 7)',
  ]);
});

t.test('transactions span lines', async (t) => {
  t.same(parseLines(
    'transaction(',
    'block-dirty-bitmap-add node=drive0 name=bitmap1',
    '',
    'block-dirty-bitmap-clear node=drive0 name=bitmap0',
    ')',
    'query-status',
  ), [
    'action 0',
    'action 1',
    'empty',
    'action 2',
    'transaction {"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"drive0","name":"bitmap1"}},{"type":"block-dirty-bitmap-clear","data":{"node":"drive0","name":"bitmap0"}}]}',
    'query-status {}',
  ]);
  t.same(parseLines('transaction( abort )'), ['transaction {"actions":[{"type":"abort","data":{}}]}'], 'on one line');
  t.same(parseLines('transaction( abort', 'abort x=1 )'), ['action 1', 'transaction {"actions":[{"type":"abort","data":{}},{"type":"abort","data":{"x":1}}]}'], ') closing an action line');
  t.same(parseLines('transaction( )'), ['transaction {"actions":[]}'], 'an empty transaction');
  t.same(parseLines('transaction(', 'abort x', 'abort', ')'), ['action 0', "error: expected KEY=VALUE, got 'x' (column 7)", 'action 1', 'transaction {"actions":[{"type":"abort","data":{}}]}'], 'a bad action line is left out and the transaction stays open');
  t.same(parseLines('transaction(', 'transaction(', '{"execute": "x"}', ') abort', 'a=1', ')'), [
    'action 0',
    'error: already inside transaction( (column 1); end it with )',
    'error: inside transaction( ... ) each line is an action: TYPE KEY=VALUE...',
    'error: unexpected ) (column 1)',
    "error: expected an action type, got 'a=1' (column 1)",
    'transaction {"actions":[]}',
  ]);
  t.same(parseLines(')'), ["error: expected a command name, got ')' (column 1)"], ') outside a transaction is no command');
  const parser = new ShorthandParser();
  parser.parse('transaction(');
  parser.parse('abort');
  parser.parse('abort');
  t.equal(parser.inTransaction, true);
  t.equal(parser.reset(), 2, 'reset says how many actions it forgot');
  t.equal(parser.inTransaction, false);
  t.equal(parser.reset(), 0, 'none, with no transaction open');
  t.same(describe(parser.parse('abort')), 'abort {}', 'after reset, lines are commands again');
});

t.test('commandFromArgs: words already split by the shell', async (t) => {
  const show = (args: string[]): string => {
    try {
      const c = commandFromArgs(args);
      return `${c.name} ${writeCompact(c.arguments).text}`;
    } catch (e) {
      if (!(e instanceof ShorthandError)) throw e;
      return `error: ${e.message}`;
    }
  };
  t.equal(show(['human-monitor-command', 'command-line=info status']), 'human-monitor-command {"command-line":"info status"}', 'a value with a space: one argument');
  t.equal(
    show(['human-monitor-command', 'command-line=info', 'status']),
    "error: expected KEY=VALUE, got 'status' (argument 3); a value with spaces is quoted: command-line='info status'",
    'two arguments: the error says how to quote',
  );
  t.equal(show(['x', 'a="b"', 'c']), "error: expected KEY=VALUE, got 'c' (argument 3)", 'no advice after a quoted value');
  const transaction = 'transaction {"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"d0","name":"b0"}}]}';
  t.equal(show(['transaction(', 'block-dirty-bitmap-add', 'node=d0', 'name=b0', ')']), transaction, 'transaction( ... ) as words');
  t.equal(show(['transaction( block-dirty-bitmap-add node=d0 name=b0 )']), transaction, 'as one argument');
  t.equal(show(['transaction(', 'block-dirty-bitmap-add', 'node=d0', 'name=b0']), 'error: transaction( was not closed with )');
  t.equal(show(['transaction( abort']), 'error: transaction( was not closed with )');
  t.equal(show(['transaction(', ')']), 'transaction {"actions":[]}');
  t.equal(show(['device_del id=net0']), 'device_del {"id":"net0"}', 'a whole line as one argument');
  t.equal(show(['  query-status  ']), 'query-status {}', 'one word with spaces around it');
  t.equal(show(['x y="a b']), 'error: unclosed " (column 5)', 'a line: errors by column');
  t.equal(show(['migrate-set-parameters', 'max-bandwidth=18446744073709551615']), 'migrate-set-parameters {"max-bandwidth":18446744073709551615}');
  t.equal(show(['x', 'o={"a": [1, 2]}', 'q="s"']), 'x {"o":{"a":[1,2]},"q":"s"}');
  t.equal(show(['{"execute": "query-status"}']), 'query-status {}');
  t.equal(show(['{"execute": "x"}', 'a=1']), "error: a JSON command stands alone; got 'a=1' after it");
  t.equal(show(['x', 'a']), "error: expected KEY=VALUE, got 'a' (argument 2)");
  t.equal(show(['x', 'v="a']), "error: value of 'v': incomplete JSON (argument 2)");
  t.equal(show([]), 'error: no command given');
});

t.test('every prefix of every line, and the line cut at every character, parses or fails with a ShorthandError', async (t) => {
  const lines = [
    'blockdev-add driver=qcow2 node-name=d0 file.driver=file file.filename="/tmp/a b.qcow2" cache={"direct": true}',
    "transaction( block-dirty-bitmap-add node='d0' name=b0 )",
    '{"execute": "x", "arguments": {"a": [1, {"b": "\\u00e9"}]}}',
  ];
  let checked = 0;
  for (const line of lines) {
    for (let i = 0; i <= line.length; i++) {
      for (const piece of [line.slice(0, i), line.slice(i)]) {
        try {
          new ShorthandParser().parse(piece);
        } catch (e) {
          if (!(e instanceof ShorthandError)) throw e;
        }
        checked++;
      }
    }
  }
  t.ok(checked > 300, `${checked} pieces`);
});
