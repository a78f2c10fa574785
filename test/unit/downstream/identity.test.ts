import t from 'tap';
import type { PeerCertificate } from 'node:tls';
import { defaultEndpoint, type IdentityOptions } from '../../../src/downstream/endpoint-options.ts';
import { Endpoint } from '../../../src/downstream/endpoint.ts';
import { certificateMatcher, certificateNames, parseAltNames, parseCondition, type CertificateCondition, type CertificateNames } from '../../../src/downstream/identity.ts';
import { LIMIT_DEFAULTS } from '../../../src/downstream/endpoint-options.ts';
import { POLICY_PRESETS } from '../../../src/policy/presets.ts';

/** What Node's getPeerCertificate() gives, reduced to what identities read. */
function peer(subject: Record<string, string | string[]>, subjectaltname?: string): PeerCertificate {
  return { subject, ...(subjectaltname !== undefined && { subjectaltname }) } as unknown as PeerCertificate;
}

function conditions(...texts: string[]): CertificateCondition[] {
  return texts.map((text) => {
    const c = parseCondition(text);
    if (typeof c === 'string') throw new Error(c);
    return c;
  });
}

const matches = (names: CertificateNames, ...texts: string[]): boolean => certificateMatcher(conditions(...texts))(names);

t.test('conditions: ATTRIBUTE=GLOB or TYPE:GLOB, anything else said why', async (t) => {
  t.same(parseCondition('CN=collector'), { kind: 'subject', attribute: 'CN', glob: 'collector' });
  t.same(parseCondition('O=Example, Inc.'), { kind: 'subject', attribute: 'O', glob: 'Example, Inc.' });
  t.same(parseCondition('CN=a:b'), { kind: 'subject', attribute: 'CN', glob: 'a:b' }, 'a colon in the value is the value');
  t.same(parseCondition('DNS:*.ops.example.com'), { kind: 'san', type: 'DNS', glob: '*.ops.example.com' });
  t.same(parseCondition('URI:spiffe://example/ns/a=b'), { kind: 'san', type: 'URI', glob: 'spiffe://example/ns/a=b' }, 'an = in a SAN is the value');
  t.same(parseCondition('IP:10.0.0.*'), { kind: 'san', type: 'IP', glob: '10.0.0.*' });
  t.same(parseCondition('email:*@example.com'), { kind: 'san', type: 'email', glob: '*@example.com' });
  t.match(parseCondition('DNSNAME:x'), /'DNSNAME:x': a subject alternative name is DNS:, email:, URI: or IP: followed by a glob/);
  t.match(parseCondition('constructor:x'), /a subject alternative name is/, 'no property of an object taken for a type');
  t.match(parseCondition('collector'), /'collector': expected ATTRIBUTE=GLOB/);
  t.match(parseCondition('CN='), /expected ATTRIBUTE=GLOB/);
  t.match(parseCondition('=x'), /expected ATTRIBUTE=GLOB/);
});

t.test('a certificate matches when every condition holds, on any value of an attribute or any SAN of the type', async (t) => {
  const names = certificateNames(
    peer({ C: 'GB', O: 'Example', OU: ['ops', 'backup'], CN: 'collector-7' }, 'DNS:Collector.Ops.Example.com, IP Address:10.0.0.7, email:c7@example.com, URI:spiffe://example/collector'),
  );
  t.ok(matches(names, 'CN=collector-7'), 'exact');
  t.ok(matches(names, 'CN=collector-*'), 'glob');
  t.notOk(matches(names, 'CN=collector'), 'exact means all of it');
  t.notOk(matches(names, 'CN=Collector-7'), 'subject values are compared as written');
  t.ok(matches(names, 'cn=collector-7'), 'attribute names are not case-sensitive');
  t.ok(matches(names, 'OU=backup') && matches(names, 'OU=ops'), 'any value of a repeated attribute');
  t.ok(matches(names, 'O=Example', 'CN=collector-*'), 'all of several');
  t.notOk(matches(names, 'O=Other', 'CN=collector-*'), 'all means all');
  t.notOk(matches(names, 'L=*'), 'an attribute it lacks matches nothing, not even *');
  t.ok(matches(names, 'DNS:*.ops.example.com'), 'host names ignore case');
  t.ok(matches(names, 'IP:10.0.0.*'));
  t.ok(matches(names, 'email:*@example.com'));
  t.notOk(matches(names, 'email:*@EXAMPLE.com'), 'other kinds are compared as written');
  t.ok(matches(names, 'URI:spiffe://example/*'));
  t.notOk(matches(names, 'URI:spiffe://other/*'));
  t.notOk(matches(names, 'DNS:10.0.0.7'), 'a SAN of another type does not count');
});

t.test("Node's subjectaltname text, values with a comma or a quote written as JSON strings", async (t) => {
  t.same(parseAltNames('DNS:a.example, IP Address:127.0.0.1'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'IP Address', value: '127.0.0.1' },
  ]);
  t.same(parseAltNames('URI:"spiffe://x/a, b", DNS:c, email:"q\\"x@y"'), [
    { type: 'URI', value: 'spiffe://x/a, b' },
    { type: 'DNS', value: 'c' },
    { type: 'email', value: 'q"x@y' },
  ]);
  t.same(parseAltNames(''), []);
  t.same(parseAltNames('no colon at all'), [], 'text that is no entry gives none');
});

t.test("the subject as QEMU's tls-authz identities write it: the certificate's order, RFC 4514 escapes", async (t) => {
  t.equal(certificateNames(peer({ O: 'Example', CN: 'admin' })).subject, 'O=Example,CN=admin');
  t.equal(certificateNames(peer({ O: 'Example, Inc.', OU: ['a', 'b'], CN: ' lead#' })).subject, 'O=Example\\, Inc.,OU=a,OU=b,CN=\\ lead#');
  t.equal(certificateNames(peer({})).subject, '', 'an empty subject (a SPIFFE certificate)');
  t.same(certificateNames(peer({})).altNames, []);
});

t.test("an endpoint's identities: the first that matches gives the access; none is a refusal; without rules, the endpoint's", async (t) => {
  const identity = (name: string, match: string[], policy = POLICY_PRESETS.all): IdentityOptions => ({ name, match, policy, events: ['*'], limits: { ...LIMIT_DEFAULTS }, maxClients: 4 });
  const options = defaultEndpoint('remote', { type: 'tcp', host: '127.0.0.1', port: 0 });
  options.identities = [identity('ops', ['O=Example', 'OU=ops']), identity('collector', ['CN=collector*'], POLICY_PRESETS['read-only']), identity('also-ops', ['OU=ops'])];
  const endpoint = new Endpoint(options);
  const of = (subject: Record<string, string | string[]>) => endpoint.accessFor(certificateNames(peer(subject)));
  const ops = of({ O: 'Example', OU: 'ops', CN: 'collector-1' });
  t.equal('access' in ops && ops.access.identity, 'ops', 'the first rule that matches, though a later one would too');
  const collector = of({ O: 'Other', CN: 'collector-2' });
  t.equal('access' in collector && collector.access.identity, 'collector');
  t.notOk('access' in collector && collector.access.policy.mayAllow('stop'), 'with its own policy');
  t.same(of({ CN: 'mallory' }), { refused: "No identity of endpoint 'remote' matches the certificate of CN=mallory", certificate: certificateNames(peer({ CN: 'mallory' })) });
  t.match(of({}), { refused: /matches the certificate of an empty subject$/ });
  t.same(endpoint.accessFor(undefined), { access: endpoint.access, certificate: undefined }, 'no certificate (no TLS): the endpoint\'s own');
  const plain = new Endpoint(defaultEndpoint('plain', { type: 'tcp', host: '127.0.0.1', port: 0 }));
  const anyone = plain.accessFor(certificateNames(peer({ CN: 'anyone' })));
  t.equal('access' in anyone && anyone.access, plain.access, 'no identities: every verified client has the endpoint\'s');
  options.identities = [identity('bad', ['nonsense'])];
  t.throws(() => new Endpoint(options), { code: 'QMPMUX_CONFIG', message: /identity 'bad': 'nonsense': expected ATTRIBUTE=GLOB/ }, 'options not read from a file are checked too');
});
