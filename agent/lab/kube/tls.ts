/**
 * The API server's serving certificate: a CA of its own (kept in the state file, so
 * kubeconfigs stay valid across restarts) and a leaf made at every start for the names and
 * addresses it is reached by. Built with agent/identity's x509 helpers.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { buildCertificate, issuerFromCertificate } from '../../identity/x509.js';
import type { Store } from './store.js';

const DAY_MS = 86_400_000;

export interface ServingMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b;
}

export function servingMaterial(store: Store, dnsNames: string[], ips: string[], now: number): ServingMaterial {
  let ca = store.extra('servingCa');
  if (typeof ca !== 'object' || ca === null || Array.isArray(ca) || typeof ca['keyPem'] !== 'string' || typeof ca['certPem'] !== 'string') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certPem = buildCertificate({
      serial: serial(),
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 3650 * DAY_MS),
      subject: { organization: 'weft lab', commonName: 'weft lab kube-apiserver CA (test double)' },
      publicKey,
      signingKey: privateKey,
      isCa: true,
    });
    ca = { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem };
    store.setExtra('servingCa', ca);
  }
  const caKey = createPrivateKey(String(ca['keyPem']));
  const caPem = String(ca['certPem']);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certPem = buildCertificate({
    serial: serial(),
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 365 * DAY_MS),
    subject: { commonName: 'kube-apiserver' },
    publicKey,
    issuer: issuerFromCertificate(caPem, caKey),
    signingKey: caKey,
    isCa: false,
    dnsNames,
    ipAddresses: ips,
  });
  return { caPem, certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
