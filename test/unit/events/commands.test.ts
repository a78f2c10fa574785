import t from 'tap';
import { clientObject } from '../../fixtures/json-text.ts';
import { readQueryEventsArguments, readSetEventsArguments } from '../../../src/events/commands.ts';
import { QUERY_EVENTS, SET_EVENTS } from '../../../src/qmp/extensions.ts';

t.test('names', async (t) => {
  t.equal(QUERY_EVENTS, '__org.qmp-mux_query-events');
  t.equal(SET_EVENTS, '__org.qmp-mux_set-events');
});

t.test('query-events arguments', async (t) => {
  const cases: [string | undefined, unknown][] = [
    [undefined, { since: undefined, events: undefined }],
    ['{}', { since: undefined, events: undefined }],
    ['{"since": 0}', { since: 0, events: undefined }],
    ['{"since": 42, "events": ["BLOCK_JOB_*", "STOP"]}', { since: 42, events: ['BLOCK_JOB_*', 'STOP'] }],
    ['{"events": []}', { since: undefined, events: [] }],
    ['{"since": 18446744073709551615}', { since: 18446744073709551615, events: undefined }],
    ['{"since": "1"}', { error: "Invalid parameter type for 'since', expected: integer" }],
    ['{"since": null}', { error: "Invalid parameter type for 'since', expected: integer" }],
    ['{"since": -1}', { error: "Parameter 'since' expects uint64" }],
    ['{"since": 1.5}', { error: "Parameter 'since' expects uint64" }],
    ['{"since": 1e3}', { error: "Parameter 'since' expects uint64" }],
    ['{"since": 18446744073709551616}', { error: "Parameter 'since' expects uint64" }],
    ['{"events": "STOP"}', { error: "Invalid parameter type for 'events', expected: array" }],
    ['{"events": ["STOP", 1]}', { error: "Invalid parameter type for 'events[1]', expected: string" }],
    ['{"since": 1, "bogus": 2}', { error: "Parameter 'bogus' is unexpected" }],
  ];
  for (const [text, expected] of cases) t.same(readQueryEventsArguments(text === undefined ? undefined : clientObject(text)), expected, String(text));
});

t.test('set-events arguments', async (t) => {
  const cases: [string | undefined, unknown][] = [
    ['{"events": ["*"]}', { events: ['*'] }],
    ['{"events": []}', { events: [] }],
    [undefined, { error: "Parameter 'events' is missing" }],
    ['{}', { error: "Parameter 'events' is missing" }],
    ['{"events": {}}', { error: "Invalid parameter type for 'events', expected: array" }],
    ['{"events": [null]}', { error: "Invalid parameter type for 'events[0]', expected: string" }],
    ['{"events": ["*"], "since": 1}', { error: "Parameter 'since' is unexpected" }],
  ];
  for (const [text, expected] of cases) t.same(readSetEventsArguments(text === undefined ? undefined : clientObject(text)), expected, String(text));
});
