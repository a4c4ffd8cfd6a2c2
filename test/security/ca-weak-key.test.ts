/**
 * F7 (issue 10): a CSR with an RSA-1024 key made the CA answer 500: the refusal message put the
 * key's details (a BigInt publicExponent) through JSON.stringify, which throws. Now it is a 400
 * with WEFT_ERR_CA_BAD_REQUEST and a message that says what is accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import { PlacementAuthorizer, StaticTokenAuthenticator } from '../../agent/identity/ca-auth.js';
import { CaServer } from '../../agent/identity/ca-server.js';
import { HttpCaClient } from '../../agent/identity/ca-client.js';
import { buildCsr, verifyCsr } from '../../agent/identity/x509.js';
import { isWeftError } from '../../agent/errors.js';

const TD = 'cluster.local';
const ID = `spiffe://${TD}/ns/shop/sa/cart`;

test('verifyCsr refuses a weak key with WEFT_ERR_CA_BAD_REQUEST, naming it', () => {
  for (const [type, opts] of [['rsa', { modulusLength: 1024 }], ['dsa', { modulusLength: 2048, divisorLength: 224 }]] as const) {
    const { privateKey } = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
    let csr: string;
    try {
      csr = buildCsr(privateKey, ID);
    } catch {
      continue; // our CSR builder cannot sign with this key type; the RSA case is the one that matters
    }
    assert.throws(() => verifyCsr(csr), (err) => isWeftError(err, 'WEFT_ERR_CA_BAD_REQUEST') && /not accepted/.test(err.message), type);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  assert.throws(() => verifyCsr(buildCsr(privateKey, ID)), (err) => isWeftError(err, 'WEFT_ERR_CA_BAD_REQUEST') && /rsa 1024 bits/.test(err.message));
});

test('the CA answers 400 (not 500) to an RSA-1024 CSR', async () => {
  const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
  const server = new CaServer({ ca, authenticator: new StaticTokenAuthenticator({ tok: 'node-a' }) });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    const client = new HttpCaClient({ url: `https://127.0.0.1:${port}`, token: 'tok', caCertificates: ca.trustBundle() });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await assert.rejects(client.sign(buildCsr(privateKey, ID), ID), (err) => isWeftError(err, 'WEFT_ERR_CA_BAD_REQUEST'));
  } finally {
    await server.close();
  }
});
