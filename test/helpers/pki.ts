/**
 * A throwaway PKI for TLS tests: a root CA, an intermediate CA, server and client leaf
 * certificates, PKCS#12 files, and an HTTPS server on 127.0.0.1:0 that can demand a client
 * certificate. Everything is generated in the test run; nothing is read from disk or the network.
 *
 * Keys come from Node's crypto (fast, and it makes EC keys, which node-forge cannot); node-forge
 * builds the certificate structure, and Node signs it.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

import forge from 'node-forge';

/** A certificate with its private key. */
export interface TestCert {
  commonName: string;
  certPem: string;
  /** The private key as unencrypted PKCS#8 PEM. */
  keyPem: string;
  key: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

/** What `issueCertificate` makes. */
export interface IssueOptions {
  commonName: string;
  /** The signing CA; the certificate is self-signed when absent. */
  issuer?: TestCert;
  /** True for a CA certificate (basicConstraints CA:TRUE, keyCertSign). */
  ca?: boolean;
  /** `rsa` (2048 bits, the default) or `ec` (P-256). Issuers must be RSA. */
  keyType?: 'rsa' | 'ec';
  /** DNS names and IP addresses for subjectAltName (server certificates). */
  altNames?: string[];
  /** Extended key usages of a leaf; both by default. */
  usages?: Array<'serverAuth' | 'clientAuth'>;
  notBefore?: Date;
  notAfter?: Date;
}

const DAY_MS = 86_400_000;
const SHA256_WITH_RSA = forge.pki.oids.sha256WithRSAEncryption!;

/** forge exports this, but its type definitions leave it out. */
interface ForgeTbs {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
}

/** Makes a key pair and a certificate for it, signed by `issuer` (or by itself). */
export function issueCertificate(options: IssueOptions): TestCert {
  const { publicKey, privateKey } =
    options.keyType === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  // Whole seconds: X.509 times carry no milliseconds, and tests compare exact ISO strings.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const notBefore = options.notBefore ?? new Date(now - DAY_MS);
  const notAfter = options.notAfter ?? new Date(now + 365 * DAY_MS);

  const cert = forge.pki.createCertificate();
  // A positive serial: the leading 0x01 keeps the high bit clear.
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: options.commonName }]);
  cert.setIssuer([{ name: 'commonName', value: options.issuer?.commonName ?? options.commonName }]);
  cert.setExtensions(extensionsFor(options));
  cert.siginfo.algorithmOid = SHA256_WITH_RSA;
  // forge only encodes RSA keys, so it gets a stand-in key and the real SubjectPublicKeyInfo
  // (RSA or EC) is put in its place before signing.
  cert.publicKey = forge.pki.setRsaPublicKey(
    new forge.jsbn.BigInteger('3'),
    new forge.jsbn.BigInteger('65537'),
  );
  const tbs = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  (tbs.value as forge.asn1.Asn1[])[6] = forge.asn1.fromDer(spki.toString('binary'));
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, options.issuer?.key ?? privateKey);

  cert.tbsCertificate = tbs;
  cert.signatureOid = SHA256_WITH_RSA;
  cert.signature = signature.toString('binary');
  return {
    commonName: options.commonName,
    certPem: forge.pki.certificateToPem(cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    key: privateKey,
    notBefore,
    notAfter,
  };
}

function extensionsFor(options: IssueOptions): object[] {
  if (options.ca) {
    return [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ];
  }
  const usages = options.usages ?? ['serverAuth', 'clientAuth'];
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: 'extKeyUsage',
      serverAuth: usages.includes('serverAuth'),
      clientAuth: usages.includes('clientAuth'),
    },
  ];
  if (options.altNames?.length) {
    extensions.push({
      name: 'subjectAltName',
      altNames: options.altNames.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  }
  return extensions;
}

/** A root CA, an intermediate CA under it, and leaves signed by the intermediate. */
export interface TestPki {
  root: TestCert;
  intermediate: TestCert;
  /** A server certificate for 127.0.0.1 and localhost. */
  server: TestCert;
  /** An RSA client certificate. */
  client: TestCert;
  /** An EC (P-256) client certificate. */
  clientEc: TestCert;
  /** Issues another certificate signed by the intermediate. */
  issue(options: Omit<IssueOptions, 'issuer'>): TestCert;
}

/** Creates a fresh PKI; `name` prefixes every common name (to tell two PKIs apart). */
export function createPki(name = 'Outpost Test'): TestPki {
  const root = issueCertificate({ commonName: `${name} Root CA`, ca: true });
  const intermediate = issueCertificate({
    commonName: `${name} Intermediate CA`,
    ca: true,
    issuer: root,
  });
  const issue = (options: Omit<IssueOptions, 'issuer'>) =>
    issueCertificate({ ...options, issuer: intermediate });
  return {
    root,
    intermediate,
    server: issue({ commonName: `${name} Server`, altNames: ['127.0.0.1', 'localhost'] }),
    client: issue({ commonName: `${name} Client`, usages: ['clientAuth'] }),
    clientEc: issue({ commonName: `${name} EC Client`, usages: ['clientAuth'], keyType: 'ec' }),
    issue,
  };
}

/** Concatenates certificates into one PEM bundle, in the order given. */
export function chainPem(...certs: TestCert[]): string {
  return certs.map((c) => c.certPem.trim()).join('\n') + '\n';
}

/**
 * A PKCS#12 file made by node-forge, base64-encoded: `aes256` (PBES2) or `3des` (the legacy
 * PKCS#12 PBE). forge encrypts only the key bag; the certificates stay in the clear.
 */
export function createPfx(
  leaf: TestCert,
  chain: TestCert[],
  password: string,
  algorithm: 'aes256' | '3des',
): string {
  const rsaPem = leaf.key.export({ type: 'pkcs1', format: 'pem' }) as string;
  const key = forge.pki.privateKeyFromPem(rsaPem);
  const certs = [leaf, ...chain].map((c) => forge.pki.certificateFromPem(c.certPem));
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, password, { algorithm });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
}

/** True when the `openssl` command works here (its PKCS#12 files are the common real kind). */
export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A PKCS#12 file made by `openssl pkcs12 -export`, base64-encoded. OpenSSL 3 makes AES-256 with
 * an HMAC-SHA256 MAC by default; `legacy` makes RC2-40 certificates and a 3DES key with a SHA-1
 * MAC, which OpenSSL 3 (and so Node) only reads with its legacy provider.
 */
export function createPfxWithOpenssl(
  leaf: TestCert,
  chain: TestCert[],
  password: string,
  options: { legacy?: boolean } = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-pki-'));
  try {
    writeFileSync(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'cert.pem'), leaf.certPem);
    writeFileSync(join(dir, 'chain.pem'), chainPem(...chain));
    const args = ['pkcs12', '-export', '-inkey', 'key.pem', '-in', 'cert.pem'];
    if (chain.length > 0) args.push('-certfile', 'chain.pem');
    args.push('-out', 'out.p12', '-passout', 'env:OUTPOST_TEST_PFX_PASSWORD');
    if (options.legacy) args.push('-legacy');
    // The password goes through the environment so that it is not on a command line.
    execFileSync('openssl', args, {
      cwd: dir,
      env: { ...process.env, OUTPOST_TEST_PFX_PASSWORD: password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return readFileSync(join(dir, 'out.p12')).toString('base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the test server saw of one request. */
export interface SeenRequest {
  path: string;
  /** Common names of the client's chain as the server verified it, leaf first ([] without one). */
  clientChain: string[];
}

/** An HTTPS server on 127.0.0.1 with an ephemeral port. */
export interface TlsTestServer {
  server: Server;
  port: number;
  /** `https://127.0.0.1:PORT`. */
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** Options of `startTlsServer`. */
export interface TlsServerOptions {
  /** The server's certificate chain (leaf first) and key. */
  certPem: string;
  keyPem: string;
  /** CA certificates that client certificates must chain to; demands a client certificate. */
  clientCaPem?: string;
}

/**
 * Starts an HTTPS server on 127.0.0.1:0. With `clientCaPem` it demands a client certificate and
 * refuses the handshake without a valid one; each request answers 200 with `{clientChain}`.
 */
export async function startTlsServer(options: TlsServerOptions): Promise<TlsTestServer> {
  const seen: SeenRequest[] = [];
  const requireClient = options.clientCaPem !== undefined;
  const server = createServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ca: options.clientCaPem,
      requestCert: requireClient,
      rejectUnauthorized: requireClient,
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const entry = { path: req.url ?? '', clientChain: peerChain(socket) };
      seen.push(entry);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ clientChain: entry.clientChain }));
    },
  );
  // Handshake failures are expected in these tests; without a listener they would be unhandled.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `https://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function peerChain(socket: TLSSocket): string[] {
  const names: string[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  // The issuer of a self-signed root is itself: stop there.
  while (cert && cert.subject && names.length < 10) {
    names.push(String(cert.subject.CN));
    const next: DetailedPeerCertificate | undefined = cert.issuerCertificate;
    if (!next || next === cert || next.fingerprint256 === cert.fingerprint256) break;
    cert = next;
  }
  return names;
}
