import { WeftError } from '../errors.js';

/** A workload identity: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>. */
export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** The URI form, exactly as carried in the certificate's URI SAN. */
  uri: string;
}

// Trust domain: DNS-like (SPIFFE allows lowercase letters, digits, '.', '-', '_').
// Namespace and service account: Kubernetes DNS-1123 labels/subdomains.
const SPIFFE_RE = /^spiffe:\/\/([a-z0-9._-]{1,255})\/ns\/([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)\/sa\/([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$/;

/** A `--trust-domain` value, checked as SPIFFE IDs are (WEFT_ERR_CONFIG when it is not one). */
export function parseTrustDomain(value: string): string {
  if (!/^[a-z0-9._-]{1,255}$/.test(value)) throw new WeftError('WEFT_ERR_CONFIG', `--trust-domain must be lowercase letters, digits, '.', '-' or '_' (a SPIFFE trust domain), got ${JSON.stringify(value)}`);
  return value;
}

export function formatSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Parses a workload SPIFFE ID; undefined when it is not one. */
export function tryParseSpiffeId(uri: string): SpiffeId | undefined {
  const m = SPIFFE_RE.exec(uri);
  if (m === null) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[4]!, uri };
}

export function parseSpiffeId(uri: string): SpiffeId {
  const id = tryParseSpiffeId(uri);
  if (id === undefined) {
    throw new WeftError('WEFT_ERR_IDENTITY_INVALID', `not a workload SPIFFE ID: ${JSON.stringify(uri)}`);
  }
  return id;
}

/**
 * The URI SANs of a certificate as Node reports them (`X509Certificate.subjectAltName`, or the
 * legacy `subjectaltname`): "DNS:a, URI:spiffe://..., IP Address:1.2.3.4". Values with a comma
 * or quote are JSON-quoted by Node; SPIFFE IDs never contain either, and a quoted value is
 * returned still quoted so that it can never equal an expected SPIFFE ID.
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === '') return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(', ')) {
    if (part.startsWith('URI:')) out.push(part.slice(4));
  }
  return out;
}

/** The single SPIFFE URI SAN of a certificate, or a reason why there is none. */
export function spiffeIdFromSan(subjectAltName: string | undefined): { id: string } | { reason: string } {
  const uris = uriSans(subjectAltName);
  if (uris.length !== 1) return { reason: `certificate has ${uris.length} URI SANs, expected exactly one` };
  const uri = uris[0]!;
  if (tryParseSpiffeId(uri) === undefined) return { reason: `URI SAN ${JSON.stringify(uri)} is not a workload SPIFFE ID` };
  return { id: uri };
}
