/**
 * X.509 certificates and PKCS#10 requests, built as ASN.1 with node-forge and signed with
 * node:crypto. node-forge's pki layer only handles RSA keys; workload keys are ECDSA P-256
 * (smaller, faster handshakes), so the structures are assembled with forge.asn1 and the
 * signature over the exact DER is made (and checked) by Node's crypto, which supports every
 * key type used here.
 */
import { createHash, createPublicKey, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { WeftError } from '../errors.js';
import {
  children, content, decodeOid, derToPem, expectTag, pemToDer, readWhole, slice,
  TAG_BIT_STRING, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE,
} from './der.js';

const asn1 = forge.asn1;
type Asn1 = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha256: '1.2.840.113549.1.1.11',
  ed25519: '1.3.101.112',
} as const;

// --- small ASN.1 constructors (forge works on binary strings) --------------------------------

const bin = (b: Uint8Array): string => Buffer.from(b).toString('binary');
const seq = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items);
const set = (items: Asn1[]): Asn1 => asn1.create(U, T.SET, true, items);
const oid = (o: string): Asn1 => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
const int = (b: Uint8Array): Asn1 => asn1.create(U, T.INTEGER, false, bin(b));
const bool = (v: boolean): Asn1 => asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00');
const octets = (b: Uint8Array): Asn1 => asn1.create(U, T.OCTETSTRING, false, bin(b));
const utf8 = (s: string): Asn1 => asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(s));
/** BIT STRING with `unused` trailing bits in the last octet. */
const bits = (b: Uint8Array, unused = 0): Asn1 => asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + bin(b));
const nul = (): Asn1 => asn1.create(U, T.NULL, false, '');
const toDer = (a: Asn1): Buffer => Buffer.from(asn1.toDer(a).getBytes(), 'binary');
/** Embeds already-encoded DER unchanged (bit strings are not re-interpreted). */
const raw = (der: Uint8Array): Asn1 =>
  // @types/node-forge declares only the old boolean `strict` parameter; forge >= 0.10 takes options.
  (asn1.fromDer as unknown as (b: string, o: object) => Asn1)(bin(der), { strict: true, decodeBitStrings: false });

function time(d: Date): Asn1 {
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export interface NameAttributes {
  commonName?: string;
  organization?: string;
}

function name(attrs: NameAttributes | undefined): Asn1 {
  const rdns: Asn1[] = [];
  if (attrs?.organization !== undefined) rdns.push(set([seq([oid(OID.organization), utf8(attrs.organization)])]));
  if (attrs?.commonName !== undefined) rdns.push(set([seq([oid(OID.commonName), utf8(attrs.commonName)])]));
  return seq(rdns);
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(bool(true));
  parts.push(octets(toDer(value)));
  return seq(parts);
}

function generalNames(uris: readonly string[], dns: readonly string[], ips: readonly string[]): Asn1 {
  const names: Asn1[] = [];
  for (const u of uris) names.push(asn1.create(CTX, 6, false, u));
  for (const d of dns) names.push(asn1.create(CTX, 2, false, d));
  for (const ip of ips) {
    if (isIP(ip) !== 4) throw new WeftError('WEFT_ERR_CONFIG', `only IPv4 addresses are supported in certificates: ${ip}`);
    names.push(asn1.create(CTX, 7, false, String.fromCharCode(...ip.split('.').map(Number))));
  }
  return seq(names);
}

// --- keys and signatures ----------------------------------------------------------------------

interface SignatureScheme {
  algorithm: Asn1;
  hash: string | null;
}

/** The signature algorithm a private key signs with, as X.509 names it. */
function schemeFor(key: KeyObject): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { algorithm: seq([oid(OID.ecdsaSha256)]), hash: 'sha256' };
    if (curve === 'secp384r1') return { algorithm: seq([oid(OID.ecdsaSha384)]), hash: 'sha384' };
    throw new WeftError('WEFT_ERR_CA_LOAD', `unsupported EC curve ${String(curve)} (P-256 or P-384)`);
  }
  if (type === 'rsa') return { algorithm: seq([oid(OID.rsaSha256), nul()]), hash: 'sha256' };
  if (type === 'ed25519') return { algorithm: seq([oid(OID.ed25519)]), hash: null };
  throw new WeftError('WEFT_ERR_CA_LOAD', `unsupported key type ${String(type)}`);
}

/** Signs `tbs` and wraps it as SEQUENCE { tbs, algorithm, signature }. */
function signStructure(tbs: Asn1, key: KeyObject): Buffer {
  const scheme = schemeFor(key);
  const tbsDer = toDer(tbs);
  const signature = sign(scheme.hash, tbsDer, key);
  return toDer(seq([raw(tbsDer), scheme.algorithm, bits(signature)]));
}

function hashForSignatureOid(o: string): string | null {
  switch (o) {
    case OID.ecdsaSha256:
    case OID.rsaSha256:
      return 'sha256';
    case OID.ecdsaSha384:
      return 'sha384';
    case OID.ed25519:
      return null;
    default:
      throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', `unsupported signature algorithm ${o}`);
  }
}

/** SubjectPublicKeyInfo DER of a (public or private) key. */
export function spkiDer(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const top = readWhole(spki, TAG_SEQUENCE);
  const kids = children(spki, top);
  const bitString = expectTag(kids[1], TAG_BIT_STRING, 'subjectPublicKey');
  return createHash('sha1').update(content(spki, bitString).subarray(1)).digest();
}

// --- certificates -----------------------------------------------------------------------------

/** What a certificate needs from its issuer. */
export interface Issuer {
  /** DER of the issuer certificate's subject Name, copied byte for byte. */
  nameDer: Buffer;
  /** The issuer's subject key identifier, when its certificate has one. */
  keyId: Buffer | undefined;
  key: KeyObject;
}

/** Reads subject Name and subject key identifier of a certificate (for use as an issuer). */
export function issuerFromCertificate(certPem: string, key: KeyObject): Issuer {
  const der = pemToDer(certPem, 'CERTIFICATE');
  const cert = readWhole(der, TAG_SEQUENCE);
  const tbs = expectTag(children(der, cert)[0], TAG_SEQUENCE, 'tbsCertificate');
  const fields = children(der, tbs);
  // [0] version is present in every v3 certificate; subject is then the 6th field.
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expectTag(fields[base + 4], TAG_SEQUENCE, 'subject');
  let keyId: Buffer | undefined;
  const extsWrapper = fields.find((f) => f.tag === 0xa3);
  if (extsWrapper !== undefined) {
    const exts = expectTag(children(der, extsWrapper)[0], TAG_SEQUENCE, 'extensions');
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      const id = decodeOid(content(der, expectTag(parts[0], TAG_OID, 'extnID')));
      if (id !== OID.subjectKeyId) continue;
      const value = content(der, expectTag(parts[parts.length - 1], TAG_OCTET_STRING, 'extnValue'));
      const inner = readWhole(value, TAG_OCTET_STRING);
      keyId = Buffer.from(content(value, inner));
    }
  }
  return { nameDer: Buffer.from(slice(der, subject)), keyId, key };
}

export interface CertificateTemplate {
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Omitted for workload certificates: SPIFFE X509-SVIDs carry the identity in the URI SAN only. */
  subject?: NameAttributes;
  publicKey: KeyObject;
  /** Self-signed when omitted (the subject key must then be `signingKey`'s public half). */
  issuer?: Issuer;
  signingKey: KeyObject;
  isCa: boolean;
  uris?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

/** Builds and signs a certificate; returns PEM. */
export function buildCertificate(t: CertificateTemplate): string {
  const spki = spkiDer(t.publicKey);
  const subjectName = name(t.subject);
  const issuerName = t.issuer === undefined ? subjectName : raw(t.issuer.nameDer);
  const exts: Asn1[] = [];
  exts.push(extension(OID.basicConstraints, true, seq(t.isCa ? [bool(true)] : [])));
  // digitalSignature (bit 0) for leaves; CAs add keyCertSign (bit 5) and cRLSign (bit 6).
  exts.push(extension(OID.keyUsage, true, t.isCa ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0x80]), 7)));
  if (!t.isCa) exts.push(extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth), oid(OID.clientAuth)])));
  const uris = t.uris ?? [];
  const dns = t.dnsNames ?? [];
  const ips = t.ipAddresses ?? [];
  if (uris.length + dns.length + ips.length > 0) {
    // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
    exts.push(extension(OID.subjectAltName, t.subject === undefined, generalNames(uris, dns, ips)));
  }
  const keyId = keyIdentifier(spki);
  exts.push(extension(OID.subjectKeyId, false, octets(keyId)));
  const authorityKeyId = t.issuer === undefined ? keyId : t.issuer.keyId;
  if (authorityKeyId !== undefined) {
    exts.push(extension(OID.authorityKeyId, false, seq([asn1.create(CTX, 0, false, bin(authorityKeyId))])));
  }
  const tbs = seq([
    asn1.create(CTX, 0, true, [int(Buffer.from([2]))]),
    int(t.serial),
    schemeFor(t.signingKey).algorithm,
    issuerName,
    seq([time(t.notBefore), time(t.notAfter)]),
    subjectName,
    raw(spki),
    asn1.create(CTX, 3, true, [seq(exts)]),
  ]);
  return derToPem(signStructure(tbs, t.signingKey), 'CERTIFICATE');
}

// --- certification requests -------------------------------------------------------------------

/** A PKCS#10 request for `uri`, signed with `key` (proof of possession). */
export function buildCsr(key: KeyObject, uri: string): string {
  const san = extension(OID.subjectAltName, true, generalNames([uri], [], []));
  const attributes = asn1.create(CTX, 0, true, [seq([oid(OID.extensionRequest), set([seq([san])])])]);
  const info = seq([int(Buffer.from([0])), seq([]), raw(spkiDer(key)), attributes]);
  return derToPem(signStructure(info, key), 'CERTIFICATE REQUEST');
}

/** Smallest keys the CA accepts in a request. */
const MIN_RSA_BITS = 2048;

/**
 * Checks a PKCS#10 request's self-signature and returns its public key. The subject and any
 * requested extensions are ignored: the CA decides the identity, the request only proves that
 * the caller holds the private key.
 */
export function verifyCsr(csrPem: string): KeyObject {
  let der: Buffer;
  try {
    der = pemToDer(csrPem, '(?:NEW )?CERTIFICATE REQUEST');
  } catch (err) {
    throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'CSR is not a PEM "CERTIFICATE REQUEST"', { cause: err });
  }
  const top = readWhole(der, TAG_SEQUENCE);
  const [info, alg, sig] = children(der, top);
  expectTag(info, TAG_SEQUENCE, 'certificationRequestInfo');
  const algOid = decodeOid(content(der, expectTag(children(der, expectTag(alg, TAG_SEQUENCE, 'signatureAlgorithm'))[0], TAG_OID, 'algorithm')));
  const sigBits = content(der, expectTag(sig, TAG_BIT_STRING, 'signature'));
  if (sigBits[0] !== 0) throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'CSR signature has unused bits');
  const spki = expectTag(children(der, info!)[2], TAG_SEQUENCE, 'subjectPKInfo');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: slice(der, spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'CSR public key is not readable', { cause: err });
  }
  const type = publicKey.asymmetricKeyType;
  const details = publicKey.asymmetricKeyDetails;
  const acceptable =
    (type === 'ec' && (details?.namedCurve === 'prime256v1' || details?.namedCurve === 'secp384r1')) ||
    (type === 'rsa' && (details?.modulusLength ?? 0) >= MIN_RSA_BITS) ||
    type === 'ed25519';
  if (!acceptable) {
    // Described by hand: the details hold a BigInt (publicExponent), which JSON.stringify throws on (F7).
    const size = details?.namedCurve ?? (details?.modulusLength === undefined ? '' : `${details.modulusLength} bits`);
    throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', `CSR key not accepted: ${String(type)}${size ? ` ${size}` : ''} (accepted: EC P-256 or P-384, RSA of ${MIN_RSA_BITS} bits or more, Ed25519)`);
  }
  const ok = verify(hashForSignatureOid(algOid), slice(der, info!), publicKey, sigBits.subarray(1));
  if (!ok) throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'CSR signature does not verify');
  return publicKey;
}

// --- reading ----------------------------------------------------------------------------------

/** Validity of a certificate (second precision, as X.509 stores it). */
export function validity(certPem: string): { notBefore: Date; notAfter: Date; serial: string } {
  const x = new X509Certificate(certPem);
  return { notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo), serial: x.serialNumber };
}
