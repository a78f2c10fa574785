import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

/**
 * A user or group given by name or number, as a numeric id. Names are looked
 * up in /etc/passwd and /etc/group (no NSS: qmp-mux has no native code).
 */
export function resolveId(kind: 'user' | 'group', id: string | number): number {
  if (typeof id === 'number') return id;
  if (/^\d+$/.test(id)) return Number(id);
  const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // fall through to "not found"
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === id && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new ConfigError(`no ${kind} named '${id}' in ${file}`);
}
