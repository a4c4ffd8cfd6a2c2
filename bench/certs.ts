/**
 * A throwaway CA and two leaf certificates for the HAProxy pair, made with openssl: ECDSA P-256
 * keys (weft's workload key type), a SPIFFE URI SAN each (as weft's certificates carry), 1 day of
 * validity. HAProxy wants certificate and key in one PEM file.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_TRUST_DOMAIN } from '../agent/config.js';

const run = promisify(execFile);

export interface BenchCerts {
  caFile: string;
  /** Certificate + key, for the client-side HAProxy (its TLS client identity). */
  clientPem: string;
  /** Certificate + key, for the server-side HAProxy. */
  serverPem: string;
  /**
   * The ingress scenario's serving certificate (DNS name INGRESS_HOST), as one PEM for HAProxy
   * and as certificate and key files for nginx and for weft's gateway (a kubernetes.io/tls Secret).
   */
  ingress: { pem: string; crt: string; key: string };
}

/** The host name the ingress scenario's clients ask for (SNI, Host) and its certificate names. */
export const INGRESS_HOST = 'bench.example.com';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function makeCerts(dir: string, trustDomain = DEFAULT_TRUST_DOMAIN): Promise<BenchCerts> {
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await run('openssl', [
    'req', '-x509', ...EC, '-keyout', caKey, '-out', caFile, '-days', '1', '-subj', '/O=weft-bench/CN=bench throwaway CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = async (name: string, san: string): Promise<string> => {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const crt = join(dir, `${name}.crt`);
    const ext = join(dir, `${name}.ext`);
    await writeFile(
      ext,
      `subjectAltName=critical,${san}\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n`,
    );
    await run('openssl', ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/O=weft-bench/CN=${name}`]);
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-sha256', '-extfile', ext, '-out', crt]);
    const pem = join(dir, `${name}.pem`);
    await writeFile(pem, (await readFile(crt, 'utf8')) + (await readFile(key, 'utf8')), { mode: 0o600 });
    return pem;
  };
  const clientPem = await leaf('client', `URI:spiffe://${trustDomain}/ns/bench/sa/bench-client`);
  const serverPem = await leaf('server', `URI:spiffe://${trustDomain}/ns/bench/sa/bench-server`);
  const ingressPem = await leaf('ingress', `DNS:${INGRESS_HOST}`);
  return { caFile, clientPem, serverPem, ingress: { pem: ingressPem, crt: join(dir, 'ingress.crt'), key: join(dir, 'ingress.key') } };
}
