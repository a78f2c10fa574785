import { QmpMuxError } from '../errors.ts';
import type { JsonValue } from '../json/value.ts';
import { LOCK } from '../qmp/extensions.ts';
import { hasUnsafe } from '../util/unsafe-text.ts';
import { Completer, type Completions } from './completion.ts';
import type { QmpClient } from './qmp-client.ts';
import { QmpSchema } from './schema.ts';

/** What completion needs from the server, and the commands it has; what it refuses (an endpoint's policy) just completes less. */
export async function learnCompletion(client: QmpClient): Promise<{ completer: Completer; names: string[] }> {
  const ask = (command: string): Promise<JsonValue | undefined> =>
    client.executeJson(command).catch((e: unknown) => {
      if (e instanceof QmpMuxError) return undefined;
      throw e;
    });
  const [commands, schema] = await Promise.all([ask('query-commands'), ask('query-qmp-schema')]);
  const names = Array.isArray(commands) ? commands.flatMap((c) => (c instanceof Map && typeof c.get('name') === 'string' ? [c.get('name') as string] : [])) : [];
  // The shell's own words for qmp-mux's lock complete as commands do.
  const words = names.includes(LOCK) ? ['lock', 'unlock'] : [];
  return { completer: new Completer([...names, ...words], schema === undefined ? undefined : new QmpSchema(schema)), names };
}

/** Candidates a terminal can show as they are (a server's names could hold escape sequences). */
export function printable([candidates, replaced]: Completions): Completions {
  return [candidates.filter((c) => !hasUnsafe(c)), replaced];
}
