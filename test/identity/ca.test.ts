import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { CertificateAuthority, CA_FILES } from '../../agent/identity/ca.js';
import { PlacementAuthorizer, StaticTokenAuthenticator, TokenFileAuthenticator } from '../../agent/identity/ca-auth.js';
import { HttpCaClient, InProcessCaClient } from '../../agent/identity/ca-client.js';
import { parseDuration } from '../../agent/identity/ca-command.js';
import { CaServer } from '../../agent/identity/ca-server.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { buildCertificate, buildCsr, issuerFromCertificate, verifyCsr } from '../../agent/identity/x509.js';
import { isWeftError } from '../../agent/errors.js';
import { captureLogger, id, TD } from '../tunnel/fixtures.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'weft-ca-test-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** openssl's own verdict on a chain: independent of Node's and of our builder. */
function opensslVerify(dir: string, rootPem: string, leafPem: string, untrusted: string[]): string {
  const root = join(dir, 'v-root.pem');
  const leaf = join(dir, 'v-leaf.pem');
  const inter = join(dir, 'v-inter.pem');
  execFileSync('sh', ['-c', 'cat > "$0"', root], { input: rootPem });
  execFileSync('sh', ['-c', 'cat > "$0"', leaf], { input: leafPem });
  const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', root];
  if (untrusted.length > 0) {
    execFileSync('sh', ['-c', 'cat > "$0"', inter], { input: untrusted.join('') });
    args.push('-untrusted', inter);
  }
  args.push(leaf);
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const counter = async (registry: Registry, result: string): Promise<number> => {
  const metric = await registry.getSingleMetric('weft_ca_requests_total')!.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
};

describe('certificate authority', () => {
  it('signs a CSR: chain verifies, the SPIFFE ID is the only URI SAN, 24 h, serverAuth+clientAuth', async () => {
    const dir = await tempDir();
    const ca = await CertificateAuthority.loadOrCreate(dir, { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
    assert.equal((await stat(join(dir, CA_FILES.key))).mode & 0o777, 0o600);
    const identity = id('shop', 'cart');
    const cert = await requestCertificate(new InProcessCaClient(ca, 'node-a'), identity);
    const leaf = new X509Certificate(cert.certPem);
    const root = new X509Certificate(ca.trustBundle()[0]!);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
    assert.equal(leaf.subjectAltName, `URI:${identity}`);
    assert.ok(!leaf.subject, 'empty subject: the identity lives in the SAN only');
    assert.equal(leaf.ca, false);
    assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const lifetime = Date.parse(leaf.validTo) - Date.now();
    assert.ok(lifetime > 23.9 * 3600_000 && lifetime <= 24 * 3600_000, `lifetime ${lifetime}`);
    assert.ok(leaf.serialNumber.length <= 16 && leaf.serialNumber.length >= 15, leaf.serialNumber);
    assert.deepEqual(cert.chainPem, []);
    assert.match(opensslVerify(dir, ca.trustBundle()[0]!, cert.certPem, []), /OK/);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: cert.certPem, encoding: 'utf8' });
    assert.match(text, /Key Usage: critical\s+Digital Signature\s/);
    assert.match(text, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart\s/);

    // Loading the same directory again gives the same root (no silent regeneration).
    const again = await CertificateAuthority.loadOrCreate(dir, { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
    assert.deepEqual(again.trustBundle(), ca.trustBundle());
  });

  it('the lifetime is configurable', async () => {
    const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), { authorizer: new PlacementAuthorizer(() => true), lifetimeMs: parseDuration('1h30m') });
    const cert = await requestCertificate(new InProcessCaClient(ca, 'n'), id('a', 'b'));
    const lifetime = cert.notAfter.getTime() - Date.now();
    assert.ok(lifetime > 89 * 60_000 && lifetime <= 90 * 60_000, `lifetime ${lifetime}`);
  });

  it('signs under an operator-provided intermediate; the chain goes out with the leaf', async () => {
    const dir = await tempDir();
    // An "external PKI": a root and an intermediate under it.
    const rootMaterial = CertificateAuthority.generateRoot('corp.example');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const rootKey = (await import('node:crypto')).createPrivateKey(rootMaterial.keyPem);
    const interPem = buildCertificate({
      serial: Buffer.from([0x42, 1, 2, 3]),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
      subject: { organization: 'corp', commonName: 'mesh intermediate' },
      publicKey,
      issuer: issuerFromCertificate(rootMaterial.certPem, rootKey),
      signingKey: rootKey,
      isCa: true,
    });
    await writeFile(join(dir, CA_FILES.key), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    await writeFile(join(dir, CA_FILES.cert), interPem);
    await writeFile(join(dir, CA_FILES.chain), interPem + rootMaterial.certPem);
    await writeFile(join(dir, CA_FILES.roots), rootMaterial.certPem);
    const ca = await CertificateAuthority.loadOrCreate(dir, { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
    assert.deepEqual(ca.trustBundle(), [new X509Certificate(rootMaterial.certPem).toString()]);
    const cert = await requestCertificate(new InProcessCaClient(ca, 'n'), id('shop', 'cart'));
    assert.equal(cert.chainPem.length, 1);
    const leaf = new X509Certificate(cert.certPem);
    const inter = new X509Certificate(cert.chainPem[0]!);
    assert.equal(inter.fingerprint256, new X509Certificate(interPem).fingerprint256);
    assert.ok(leaf.checkIssued(inter) && leaf.verify(inter.publicKey));
    assert.match(opensslVerify(dir, rootMaterial.certPem, cert.certPem, cert.chainPem), /OK/);
    // Without the intermediate the leaf must not verify (it really is signed by the intermediate).
    assert.throws(() => opensslVerify(dir, rootMaterial.certPem, cert.certPem, []));
  });

  it('refuses a CA directory whose key does not match its certificate, and a partial directory', async () => {
    const dir = await tempDir();
    const a = CertificateAuthority.generateRoot(TD);
    const b = CertificateAuthority.generateRoot(TD);
    await writeFile(join(dir, CA_FILES.key), b.keyPem);
    await writeFile(join(dir, CA_FILES.cert), a.certPem);
    await writeFile(join(dir, CA_FILES.roots), a.certPem);
    await assert.rejects(CertificateAuthority.loadOrCreate(dir, { authorizer: new PlacementAuthorizer(() => true) }), (e) => isWeftError(e, 'WEFT_ERR_CA_LOAD'));
    const partial = await tempDir();
    await writeFile(join(partial, CA_FILES.key), a.keyPem);
    await assert.rejects(CertificateAuthority.loadOrCreate(partial, { authorizer: new PlacementAuthorizer(() => true) }), (e) => isWeftError(e, 'WEFT_ERR_CA_LOAD'));
    assert.equal(await readFile(join(partial, CA_FILES.key), 'utf8'), a.keyPem);
  });

  it('refuses an identity with no pod on the node, a foreign trust domain, a bad CSR — logged and counted', async () => {
    const registry = new Registry();
    const { logger, lines } = captureLogger();
    const placed = new Set(['node-a|shop|cart']);
    const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), {
      authorizer: new PlacementAuthorizer((node, ns, sa) => placed.has(`${node}|${ns}|${sa}`)),
      trustDomain: TD,
      registry,
      logger,
    });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = buildCsr(key, id('shop', 'cart'));
    await ca.sign(csr, id('shop', 'cart'), 'node-a');
    await assert.rejects(ca.sign(csr, id('shop', 'cart'), 'node-b'), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));
    await assert.rejects(ca.sign(csr, id('shop', 'payments'), 'node-a'), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));
    await assert.rejects(ca.sign(csr, 'spiffe://other.domain/ns/shop/sa/cart', 'node-a'), (e) => isWeftError(e, 'WEFT_ERR_CA_BAD_REQUEST'));
    // A CSR whose signature does not match its key: proof of possession fails.
    const tampered = csr.replace(/.{8}\n-----END/, (m) => (m[0] === 'A' ? 'B' : 'A') + m.slice(1));
    await assert.rejects(ca.sign(tampered, id('shop', 'cart'), 'node-a'), (e) => isWeftError(e, 'WEFT_ERR_CA_BAD_REQUEST'));
    await assert.rejects(ca.sign('garbage', id('shop', 'cart'), 'node-a'), (e) => isWeftError(e, 'WEFT_ERR_CA_BAD_REQUEST'));
    assert.equal(await counter(registry, 'signed'), 1);
    assert.equal(await counter(registry, 'unauthorized'), 2);
    assert.equal(await counter(registry, 'bad_request'), 3);
    const refusal = lines.find((l) => l.msg === 'certificate request refused' && l.node === 'node-b');
    assert.ok(refusal, 'refusal logged');
    assert.equal(refusal.result, 'unauthorized');
    assert.match(String(refusal.reason), /no pod of service account shop\/cart runs on node node-b/);
  });

  it('verifyCsr accepts our CSRs and an openssl-made one', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    verifyCsr(buildCsr(key, id('a', 'b')));
    const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    const dir = join(tmpdir(), `weft-csr-${process.pid}`);
    execFileSync('sh', ['-c', 'mkdir -p "$0" && cat > "$0/k.pem"', dir], { input: keyPem });
    try {
      const csr = execFileSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=x'], { encoding: 'utf8' });
      assert.equal(verifyCsr(csr).asymmetricKeyType, 'ec');
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  });
});

describe('CA over HTTPS', () => {
  it('signs for an authenticated node; refuses a bad token (401) and an identity not on the node (403)', async () => {
    const registry = new Registry();
    const { logger, lines } = captureLogger();
    const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), {
      authorizer: new PlacementAuthorizer((node, ns, sa) => node === 'node-a' && ns === 'shop' && sa === 'cart'),
      trustDomain: TD,
      registry,
      logger,
    });
    const dir = await tempDir();
    const tokensFile = join(dir, 'tokens.json');
    await writeFile(tokensFile, JSON.stringify({ 'tok-a': 'node-a' }));
    const server = new CaServer({ ca, authenticator: new TokenFileAuthenticator(tokensFile), logger });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const url = `https://127.0.0.1:${port}`;
      const good = new HttpCaClient({ url, token: 'tok-a', caCertificates: ca.trustBundle() });
      assert.deepEqual(await good.bundle(), ca.trustBundle());
      const cert = await requestCertificate(good, id('shop', 'cart'));
      assert.equal(new X509Certificate(cert.certPem).subjectAltName, `URI:${id('shop', 'cart')}`);

      await assert.rejects(requestCertificate(good, id('shop', 'payments')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));
      const bad = new HttpCaClient({ url, token: 'stolen', caCertificates: ca.trustBundle() });
      await assert.rejects(requestCertificate(bad, id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHENTICATED'));

      // A token added to the file later is picked up without a restart.
      await writeFile(tokensFile, JSON.stringify({ 'tok-a': 'node-a', 'tok-b-longer': 'node-b' }));
      const b = new HttpCaClient({ url, token: 'tok-b-longer', caCertificates: ca.trustBundle() });
      await assert.rejects(requestCertificate(b, id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));

      assert.equal(await counter(registry, 'signed'), 1);
      assert.equal(await counter(registry, 'unauthorized'), 2);
      assert.equal(await counter(registry, 'unauthenticated'), 1);
      const unauth = lines.find((l) => l.result === 'unauthenticated');
      assert.ok(unauth);
      assert.equal(unauth.reason, 'token not accepted');
      assert.equal(unauth.remote, '127.0.0.1');

      // A client that does not trust the CA's roots does not talk to it.
      const other = CertificateAuthority.generateRoot(TD);
      const stranger = new HttpCaClient({ url, token: 'tok-a', caCertificates: other.rootsPem });
      await assert.rejects(stranger.bundle(), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAVAILABLE'));
    } finally {
      await server.close();
    }
  });

  it('StaticTokenAuthenticator refuses the empty token', async () => {
    const auth = new StaticTokenAuthenticator({ '': 'node-x', t: 'node-y' });
    assert.equal(await auth.authenticate(''), undefined);
    assert.equal(await auth.authenticate('t'), 'node-y');
  });
});
