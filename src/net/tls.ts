import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type ConnectionOptions, type SecureContextOptions } from 'node:tls';
import { TlsError } from '../errors.ts';

/** TLS versions qmp-mux may be asked to require at least, by Node's names. */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** TLS 1.2 at least, as QEMU's GnuTLS priority requires by default. */
export const DEFAULT_MIN_TLS_VERSION: TlsVersion = 'TLSv1.2';

/** Where one side's TLS credentials are: PEM files, read at start and again at each reload. */
export interface TlsFiles {
  /** Its own certificate, followed by any intermediate certificates. */
  cert: string | undefined;
  /** The private key of `cert`, unencrypted. */
  key: string | undefined;
  /** The CA certificates the peer's certificate must chain to; undefined: Node's bundled roots. */
  ca: string | undefined;
}

/** What each file is called in messages: its configuration field or its option. */
export interface TlsFileNames {
  cert: string;
  key: string;
  ca: string;
}

const FIELD_NAMES: TlsFileNames = { cert: 'cert', key: 'key', ca: 'ca' };
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Reads the files and checks them as the handshake will use them: each
 * certificate file holds PEM certificates, the key is an unencrypted PEM
 * private key that belongs to the first certificate. Returns what a secure
 * context is made of (`tls.createServer`, `setSecureContext`,
 * `tls.connect`). Throws a TlsError naming the file and what is wrong.
 */
export function readCredentials(files: TlsFiles, minVersion: TlsVersion, names: TlsFileNames = FIELD_NAMES): SecureContextOptions {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new TlsError(`give ${names.cert} and ${names.key} together (a certificate is presented with its key)`);
  }
  const options: SecureContextOptions = { minVersion };
  if (files.cert !== undefined && files.key !== undefined) {
    const cert = readFile(files.cert, names.cert);
    const leaf = certificatesIn(cert, files.cert, names.cert)[0];
    const key = readFile(files.key, names.key);
    if (!leaf?.checkPrivateKey(privateKey(key, files.key, names.key))) {
      throw new TlsError(`${names.key} (${files.key}): does not belong to the certificate in ${files.cert}`);
    }
    options.cert = cert;
    options.key = key;
  }
  if (files.ca !== undefined) {
    const ca = readFile(files.ca, names.ca);
    certificatesIn(ca, files.ca, names.ca);
    options.ca = ca;
  }
  try {
    createSecureContext(options);
  } catch (e) {
    throw new TlsError(`${[files.cert, files.key, files.ca].filter((f) => f !== undefined).join(', ')}: ${(e as Error).message}`);
  }
  return options;
}

function readFile(path: string, name: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TlsError(`${name} (${path}): cannot read: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message}`);
  }
}

/** The PEM certificates in a file, parsed; at least one. */
function certificatesIn(text: Buffer, path: string, name: string): X509Certificate[] {
  const blocks = text.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsError(`${name} (${path}): no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw new TlsError(`${name} (${path}): certificate ${i + 1} cannot be read: ${(e as Error).message}`);
    }
  });
}

function privateKey(text: Buffer, path: string, name: string): KeyObject {
  // PKCS#8 (`ENCRYPTED PRIVATE KEY`) and the older `Proc-Type: 4,ENCRYPTED` both say so in the clear.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text.toString('latin1'))) {
    throw new TlsError(`${name} (${path}): the key is encrypted; give it unencrypted, readable only by qmp-mux`);
  }
  try {
    return createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new TlsError(`${name} (${path}): not a PEM private key`);
  }
}

/** A TLS client's settings: qmp-mux dialing QEMU, or the client tools dialing qmp-mux. */
export interface TlsClientSettings extends TlsFiles {
  /** The name the server's certificate must carry; the host dialed by default. */
  serverName: string | undefined;
  /** The oldest protocol accepted. */
  minVersion: TlsVersion;
}

/**
 * What `tls.connect` takes to reach `host:port` with `credentials`: the
 * server's certificate checked by Node against the CA and against
 * `serverName` (else `host`), sent as SNI when it is a name.
 */
export function tlsConnectOptions(host: string, port: number, serverName: string | undefined, credentials: SecureContextOptions): ConnectionOptions {
  const expected = serverName ?? host;
  return {
    host,
    port,
    ...credentials,
    ...(isIP(expected) === 0 && { servername: expected }),
    checkServerIdentity: (_host, cert) => checkServerIdentity(expected, cert),
  };
}
