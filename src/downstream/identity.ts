import type { PeerCertificate } from 'node:tls';
import { globMatcher } from '../policy/glob.ts';

/**
 * Client certificates as identity rules see them: a rule's `match` is a
 * list of conditions, each a subject attribute (`CN=collector`) or a
 * subject alternative name (`DNS:*.ops.example.com`) with a glob (`*`
 * matches any run of characters, dots and slashes included), all of which
 * must hold.
 */

/** Subject alternative name types a condition can name, and how Node writes each in `subjectaltname`. */
const SAN_TYPES = { DNS: 'DNS', email: 'email', URI: 'URI', IP: 'IP Address' } as const;
type SanType = keyof typeof SAN_TYPES;

/** One condition on a certificate. */
export type CertificateCondition =
  /** A subject attribute (by OpenSSL's short name: CN, O, OU, C, ST, L, emailAddress...), any of its values. */
  | { kind: 'subject'; attribute: string; glob: string }
  /** Any subject alternative name of the type. */
  | { kind: 'san'; type: SanType; glob: string };

/** What a verified client certificate says about its holder. */
export interface CertificateNames {
  /** Its subject as QEMU's `tls-authz` identities write it (GnuTLS's form: the certificate's order, RFC 4514 escapes): `O=Example,CN=admin`. */
  readonly subject: string;
  /** Subject attributes by short name; a repeated attribute has several values. */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
  /** Subject alternative names, as `DNS`, `IP Address`, `email`, `URI`... with their values. */
  readonly altNames: readonly { readonly type: string; readonly value: string }[];
}

/**
 * Parses a condition: `ATTRIBUTE=GLOB` or `TYPE:GLOB` with TYPE one of
 * DNS, email, URI, IP. Returns why not, as a string, when it is neither.
 */
export function parseCondition(text: string): CertificateCondition | string {
  const san = /^([A-Za-z]+):(.+)$/s.exec(text);
  if (san) {
    const type = san[1] ?? '';
    if (!Object.hasOwn(SAN_TYPES, type)) return `'${text}': a subject alternative name is DNS:, email:, URI: or IP: followed by a glob`;
    return { kind: 'san', type: type as SanType, glob: san[2] ?? '' };
  }
  const subject = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/s.exec(text);
  if (!subject) return `'${text}': expected ATTRIBUTE=GLOB (CN=collector, O=Example) or DNS:, email:, URI:, IP: and a glob`;
  return { kind: 'subject', attribute: subject[1] ?? '', glob: subject[2] ?? '' };
}

/** A matcher for all of `conditions` together. */
export function certificateMatcher(conditions: readonly CertificateCondition[]): (names: CertificateNames) => boolean {
  const checks = conditions.map((c): ((names: CertificateNames) => boolean) => {
    if (c.kind === 'subject') {
      const match = globMatcher([c.glob]);
      const attribute = c.attribute.toLowerCase();
      return (names) => {
        for (const [name, values] of names.attributes) if (name.toLowerCase() === attribute && values.some(match)) return true;
        return false;
      };
    }
    // Host names are case-insensitive; the other kinds are compared as written.
    const dns = c.type === 'DNS';
    const match = globMatcher([dns ? c.glob.toLowerCase() : c.glob]);
    const type = SAN_TYPES[c.type];
    return (names) => names.altNames.some((n) => n.type === type && match(dns ? n.value.toLowerCase() : n.value));
  });
  return (names) => checks.every((check) => check(names));
}

/** The names in a certificate Node verified (`tlsSocket.getPeerCertificate()`). */
export function certificateNames(cert: PeerCertificate): CertificateNames {
  const attributes = new Map<string, readonly string[]>();
  // Typed as strings; Node gives an array for an attribute that appears more than once.
  for (const [name, value] of Object.entries(cert.subject ?? {}) as [string, string | string[]][]) attributes.set(name, Array.isArray(value) ? value : [value]);
  const rdns = [...attributes].flatMap(([name, values]) => values.map((v) => `${name}=${escapeDnValue(v)}`));
  return { subject: rdns.join(','), attributes, altNames: cert.subjectaltname ? parseAltNames(cert.subjectaltname) : [] };
}

/**
 * Node's `subjectaltname` text, `DNS:a.example, IP Address:10.0.0.1,
 * email:"a, b"`: entries separated by `, `, a value holding characters
 * that would make that ambiguous written as a JSON string.
 */
export function parseAltNames(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) break;
    const type = text.slice(at, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 2);
      value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      end++;
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end < 0) end = text.length;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    at = end + 2;
  }
  return out;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}

/** A value as RFC 4514 writes it in a distinguished name (`,` and the like escaped). */
function escapeDnValue(value: string): string {
  return value.replace(/[,+"\\<>;]/g, '\\$&').replace(/^[ #]/, '\\$&').replace(/ $/, '\\ ');
}
