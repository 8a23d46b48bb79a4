/**
 * A small certificate authority: an EC P-256 root that issues short-lived workload certificates
 * carrying a SPIFFE id as URI SAN (Istio's identity model). Pure functions over Node's crypto.
 */
import { type KeyObject, X509Certificate, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { bits, bool, explicit, int, name, octets, oid, seq, tlv, time, uint } from './der.js';

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const TRUST_ORG = 'concord.local';

export interface KeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

function keyId(spkiDer: Buffer): Buffer {
  return createHash('sha1').update(spkiDer).digest();
}

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

interface IssueParams {
  subjectCn: string;
  subjectPublicKey: KeyObject;
  issuerCn: string;
  issuerKey: KeyObject;
  issuerPublicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
}

function issue(p: IssueParams): string {
  const spki = p.subjectPublicKey.export({ type: 'spki', format: 'der' });
  const issuerSpki = p.issuerPublicKey.export({ type: 'spki', format: 'der' });
  const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const extensions: Buffer[] = [
    ext('2.5.29.19', true, p.ca ? seq(bool(true), int(0)) : seq()),
    // keyUsage: CA → keyCertSign|cRLSign (bits 5,6); leaf → digitalSignature|keyEncipherment|keyAgreement (bits 0,2,4).
    ext('2.5.29.15', true, p.ca ? tlv(0x03, Buffer.from([0x01, 0x06])) : tlv(0x03, Buffer.from([0x03, 0xa8]))),
    ext('2.5.29.14', false, octets(keyId(spki))),
    ext('2.5.29.35', false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  if (!p.ca) {
    extensions.push(ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))));
    const names = [
      ...(p.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
      ...(p.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
      ...(p.ips ?? []).map((ip) => tlv(0x87, Buffer.from(ip.split('.').map(Number)))),
    ];
    // SAN is critical when the subject name carries no identity (RFC 5280 4.2.1.6); ours does, so not critical.
    if (names.length > 0) extensions.push(ext('2.5.29.17', false, seq(...names)));
  }
  const tbs = seq(
    explicit(0, int(2)),
    uint(randomBytes(16)),
    ECDSA_SHA256,
    name(p.issuerCn, TRUST_ORG),
    seq(time(p.notBefore), time(p.notAfter)),
    name(p.subjectCn, TRUST_ORG),
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, p.issuerKey);
  return toPem(seq(tbs, ECDSA_SHA256, bits(signature)));
}

export interface RootCa {
  certPem: string;
  keyPem: string;
}

export function newRootCa(validForMs = 10 * 365 * 86_400_000): RootCa {
  const kp = newKeyPair();
  const key = createPrivateKey(kp.privateKeyPem);
  const pub = createPublicKey(kp.publicKeyPem);
  const now = Date.now();
  const certPem = issue({
    subjectCn: 'Concord Root CA',
    subjectPublicKey: pub,
    issuerCn: 'Concord Root CA',
    issuerKey: key,
    issuerPublicKey: pub,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validForMs),
    ca: true,
  });
  return { certPem, keyPem: kp.privateKeyPem };
}

/** Issues a workload certificate for `spiffe` (URI SAN), valid from a minute ago for `ttlMs`. */
export function issueWorkloadCert(ca: RootCa, spiffe: string, publicKeyPem: string, ttlMs: number, nowMs = Date.now()): string {
  const caCert = new X509Certificate(ca.certPem);
  return issue({
    subjectCn: spiffe.split('/').pop() ?? 'workload',
    subjectPublicKey: createPublicKey(publicKeyPem),
    issuerCn: 'Concord Root CA',
    issuerKey: createPrivateKey(ca.keyPem),
    issuerPublicKey: caCert.publicKey,
    notBefore: new Date(nowMs - 60_000),
    notAfter: new Date(nowMs + ttlMs),
    ca: false,
    uris: [spiffe],
    dnsNames: ['localhost'],
    ips: ['127.0.0.1'],
  });
}

/** The SPIFFE id in a peer certificate's URI SAN, or null. */
export function spiffeOfCert(cert: { subjectaltname?: string } | null | undefined): string | null {
  const san = cert?.subjectaltname;
  if (!san) return null;
  for (const part of san.split(',')) {
    const m = /^\s*URI:(spiffe:\/\/\S+)\s*$/.exec(part);
    if (m) return m[1] as string;
  }
  return null;
}

/** What a process shows the CA to get `service`'s identity: HMAC(bootstrap secret, service). */
export function bootstrapToken(secret: Buffer, service: string): string {
  return createHmac('sha256', secret).update(`concord-workload:${service}`).digest('hex');
}

/** Where the control plane keeps the bootstrap secret, under the data dir. */
export const BOOTSTRAP_SECRET_PATH = ['control-plane', 'ca', 'bootstrap-secret'] as const;
