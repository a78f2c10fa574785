/** A client, as `query-clients`, the log and the audit log name it. */
export interface Who {
  readonly client: number;
  readonly endpoint: string;
  readonly peer: string;
  /** The identity its certificate matched, as it is now (a reload may change it). */
  readonly identity?: string | undefined;
  /** Its certificate's subject, on a TLS endpoint with client certificates. */
  readonly subject?: string | undefined;
}

/** `client 3 on endpoint 'backup'`, and `(identity 'admin')` after it when its certificate matched one: a client named in a QMP error. */
export function describeWho(who: Who): string {
  const identity = who.identity === undefined ? '' : ` (identity '${who.identity}')`;
  return `client ${who.client} on endpoint '${who.endpoint}'${identity}`;
}

/** What names a client in a log line, first among its fields: its peer goes as `client`. */
export function logFields(who: Who): { endpoint: string; client: string; identity: string | undefined; subject: string | undefined } {
  return { endpoint: who.endpoint, client: who.peer, identity: who.identity, subject: who.subject };
}

/** What names a client in an audit record: its number as `client`, its peer as `peer`. */
export function auditFields(who: Who): { endpoint: string; client: number; peer: string; identity: string | undefined; subject: string | undefined } {
  return { endpoint: who.endpoint, client: who.client, peer: who.peer, identity: who.identity, subject: who.subject };
}
