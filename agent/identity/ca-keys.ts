/**
 * The CA's key material as a Kubernetes Secret. Three layouts are read, so an operator can hand
 * the CA what their PKI already produces:
 *   - Weft's own and Istio's plugged-in `cacerts`: ca-key.pem, ca-cert.pem, root-cert.pem,
 *     optional cert-chain.pem (what the CA writes when it bootstraps itself);
 *   - cert-manager's `kubernetes.io/tls`: tls.key, tls.crt (signing certificate first, then its
 *     chain), ca.crt (the root);
 *   - Istio's self-signed `istio-ca-secret`: ca-key.pem and a self-signed ca-cert.pem only.
 * Only data and the parse live here; reading and writing the Secret is ca-bootstrap.ts's job.
 */
import { X509Certificate } from 'node:crypto';
import { WeftError } from '../errors.js';
import { CA_FILES, type CaKeyMaterial } from './ca.js';
import { splitPemCertificates } from './der.js';

/** Keys of a cert-manager (kubernetes.io/tls) Secret. */
export const TLS_SECRET_KEYS = { key: 'tls.key', cert: 'tls.crt', ca: 'ca.crt' } as const;

export type CaKeysLayout = 'weft' | 'cert-manager' | 'istio-self-signed';

/** Which layout `data` (decoded Secret data) is in; undefined when it is none of them. */
export function caKeysLayout(data: Record<string, string>): CaKeysLayout | undefined {
  if (data[CA_FILES.key] !== undefined && data[CA_FILES.cert] !== undefined) {
    return data[CA_FILES.roots] !== undefined ? 'weft' : 'istio-self-signed';
  }
  if (data[TLS_SECRET_KEYS.key] !== undefined && data[TLS_SECRET_KEYS.cert] !== undefined && data[TLS_SECRET_KEYS.ca] !== undefined) return 'cert-manager';
  return undefined;
}

/**
 * Decoded Secret data -> key material (not yet validated: CertificateAuthority's constructor
 * checks that the key matches, that it is a CA and that it chains to a root).
 */
export function caKeyMaterialFromSecret(data: Record<string, string>, secretName: string): CaKeyMaterial {
  const layout = caKeysLayout(data);
  switch (layout) {
    case 'weft':
      return {
        keyPem: data[CA_FILES.key]!,
        certPem: data[CA_FILES.cert]!,
        intermediatesPem: splitPemCertificates(data[CA_FILES.chain] ?? ''),
        rootsPem: splitPemCertificates(data[CA_FILES.roots]!),
      };
    case 'istio-self-signed': {
      const certPem = data[CA_FILES.cert]!;
      if (!isSelfSigned(certPem)) {
        throw new WeftError('WEFT_ERR_CA_LOAD', `Secret ${secretName}: ${CA_FILES.cert} is not self-signed, so ${CA_FILES.roots} (the root it chains to) is required`);
      }
      return { keyPem: data[CA_FILES.key]!, certPem, intermediatesPem: [], rootsPem: [certPem] };
    }
    case 'cert-manager': {
      const [certPem, ...chain] = splitPemCertificates(data[TLS_SECRET_KEYS.cert]!);
      if (certPem === undefined) throw new WeftError('WEFT_ERR_CA_LOAD', `Secret ${secretName}: ${TLS_SECRET_KEYS.cert} holds no certificate`);
      return { keyPem: data[TLS_SECRET_KEYS.key]!, certPem, intermediatesPem: chain, rootsPem: splitPemCertificates(data[TLS_SECRET_KEYS.ca]!) };
    }
    default:
      throw new WeftError(
        'WEFT_ERR_CA_LOAD',
        `Secret ${secretName} holds neither ${CA_FILES.key} + ${CA_FILES.cert} [+ ${CA_FILES.roots}, ${CA_FILES.chain}] nor ` +
          `${TLS_SECRET_KEYS.key} + ${TLS_SECRET_KEYS.cert} + ${TLS_SECRET_KEYS.ca} (keys present: ${Object.keys(data).sort().join(', ') || 'none'})`,
      );
  }
}

/** Key material -> Secret data in Weft's (Istio's cacerts) layout. */
export function caKeyMaterialToSecret(m: CaKeyMaterial): Record<string, string> {
  const data: Record<string, string> = {
    [CA_FILES.key]: m.keyPem,
    [CA_FILES.cert]: m.certPem,
    [CA_FILES.roots]: m.rootsPem.join(''),
  };
  if (m.intermediatesPem !== undefined && m.intermediatesPem.length > 0) data[CA_FILES.chain] = m.intermediatesPem.join('');
  return data;
}

function isSelfSigned(pem: string): boolean {
  try {
    const c = new X509Certificate(pem);
    return c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
}
