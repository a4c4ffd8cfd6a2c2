/**
 * Finding 2 of issue 9: nothing created the weft-ca-keys Secret or the weft-ca-root ConfigMap.
 * The CA bootstraps itself as istiod does (create when absent, race-safe between replicas; an
 * operator's root or intermediate in Weft/Istio or cert-manager layout) and publishes the roots.
 * These tests drive the logic through an in-memory CaKubeApi with the API server's 404/409 and
 * resourceVersion semantics; test/identity/ca-kubernetes.test.ts runs it against an API server.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import { CertificateAuthority, CA_FILES, type CaKeyMaterial } from '../../agent/identity/ca.js';
import { PlacementAuthorizer } from '../../agent/identity/ca-auth.js';
import { bootstrapCaKeys, MANAGED_BY_LABEL, TrustBundlePublisher, type CaKubeApi, type KubeDataObject } from '../../agent/identity/ca-bootstrap.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { caKeyMaterialToSecret } from '../../agent/identity/ca-keys.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { buildCertificate, issuerFromCertificate } from '../../agent/identity/x509.js';
import { id, TD } from '../tunnel/fixtures.js';

type Kind = 'Secret' | 'ConfigMap';

/** Objects by kind/namespace/name with resourceVersions; `forbid` makes a kind answer 403. */
class MemoryKubeApi implements CaKubeApi {
  readonly objects = new Map<string, KubeDataObject>();
  readonly calls: string[] = [];
  forbid = new Set<Kind>();
  /** Runs before every read of a Secret (a barrier makes two replicas read before either creates). */
  beforeSecretRead: () => Promise<void> = async () => {};
  #rv = 1;

  #key(kind: Kind, ns: string, name: string): string {
    return `${kind}/${ns}/${name}`;
  }
  #check(kind: Kind, verb: string, ns: string, name: string): void {
    this.calls.push(`${verb} ${kind} ${ns}/${name}`);
    if (this.forbid.has(kind)) throw Object.assign(new Error(`${kind.toLowerCase()}s "${name}" is forbidden: User "system:serviceaccount:weft-system:weft-ca" cannot ${verb}`), { code: 403 });
  }
  #read(kind: Kind, ns: string, name: string): KubeDataObject | undefined {
    this.#check(kind, 'get', ns, name);
    const o = this.objects.get(this.#key(kind, ns, name));
    return o === undefined ? undefined : { data: { ...o.data }, labels: { ...o.labels }, resourceVersion: o.resourceVersion };
  }
  #create(kind: Kind, ns: string, name: string, data: Record<string, string>, labels: Record<string, string>): 'created' | 'exists' {
    this.#check(kind, 'create', ns, name);
    const k = this.#key(kind, ns, name);
    if (this.objects.has(k)) return 'exists';
    this.objects.set(k, { data: { ...data }, labels: { ...labels }, resourceVersion: String(++this.#rv) });
    return 'created';
  }
  put(kind: Kind, ns: string, name: string, data: Record<string, string>, labels: Record<string, string> = {}): void {
    this.objects.set(this.#key(kind, ns, name), { data, labels, resourceVersion: String(++this.#rv) });
  }
  get(kind: Kind, ns: string, name: string): KubeDataObject | undefined {
    return this.objects.get(this.#key(kind, ns, name));
  }

  async readSecret(ns: string, name: string) {
    await this.beforeSecretRead();
    return this.#read('Secret', ns, name);
  }
  async createSecret(ns: string, name: string, data: Record<string, string>, labels: Record<string, string>) {
    return this.#create('Secret', ns, name, data, labels);
  }
  async readConfigMap(ns: string, name: string) {
    return this.#read('ConfigMap', ns, name);
  }
  async createConfigMap(ns: string, name: string, data: Record<string, string>, labels: Record<string, string>) {
    return this.#create('ConfigMap', ns, name, data, labels);
  }
  async replaceConfigMap(ns: string, name: string, data: Record<string, string>, labels: Record<string, string>, resourceVersion: string) {
    this.#check('ConfigMap', 'update', ns, name);
    const k = this.#key('ConfigMap', ns, name);
    const cur = this.objects.get(k);
    if (cur === undefined) return 'gone' as const;
    if (cur.resourceVersion !== resourceVersion) return 'conflict' as const;
    this.objects.set(k, { data: { ...data }, labels: { ...labels }, resourceVersion: String(++this.#rv) });
    return 'replaced' as const;
  }
}

const NS = 'weft-system';

function caFrom(material: CaKeyMaterial): CertificateAuthority {
  return new CertificateAuthority(material, { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
}

/** An "external PKI": a root and an intermediate CA under it. */
function externalPki(): { rootPem: string; interPem: string; interKeyPem: string } {
  const root = CertificateAuthority.generateRoot('corp.example');
  const rootKey = createPrivateKey(root.keyPem);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const interPem = buildCertificate({
    serial: Buffer.from([0x42, 9, 9, 9]),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    subject: { organization: 'corp', commonName: 'mesh intermediate' },
    publicKey,
    issuer: issuerFromCertificate(root.certPem, rootKey),
    signingKey: rootKey,
    isCa: true,
  });
  return { rootPem: root.certPem, interPem, interKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

describe('CA bootstrap on Kubernetes (issue 9, finding 2)', () => {
  it('creates the weft-ca-keys Secret with a new self-signed root when it is absent, and signs with it', async () => {
    const api = new MemoryKubeApi();
    const { material, origin } = await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    assert.equal(origin, 'created');
    const secret = api.get('Secret', NS, 'weft-ca-keys');
    assert.ok(secret, 'the Secret was created');
    assert.deepEqual(Object.keys(secret.data).sort(), [CA_FILES.cert, CA_FILES.key, CA_FILES.roots].sort());
    assert.equal(secret.labels['app.kubernetes.io/managed-by'], MANAGED_BY_LABEL['app.kubernetes.io/managed-by']);
    const cert = await requestCertificate(new InProcessCaClient(caFrom(material), 'n'), id('shop', 'cart'));
    assert.ok(new X509Certificate(cert.certPem).verify(new X509Certificate(secret.data[CA_FILES.roots]!).publicKey));
    // A restart reads the same key back instead of making another one.
    const again = await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    assert.equal(again.origin, 'self-signed');
    assert.equal(again.material.certPem, material.certPem);
  });

  it('two replicas starting together end with one key: the loser of the create reads the winner\'s', async () => {
    const api = new MemoryKubeApi();
    // Both replicas read (and see nothing) before either creates.
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((r) => (release = r));
    api.beforeSecretRead = async () => {
      if (++arrived === 2) release();
      if (arrived <= 2) await bothRead;
    };
    const [a, b] = await Promise.all([bootstrapCaKeys({ api, namespace: NS, trustDomain: TD }), bootstrapCaKeys({ api, namespace: NS, trustDomain: TD })]);
    assert.deepEqual([a.origin, b.origin].sort(), ['created', 'self-signed']);
    assert.equal(a.material.certPem, b.material.certPem);
    assert.equal(a.material.keyPem, b.material.keyPem);
    assert.equal(api.calls.filter((c) => c.startsWith('create Secret')).length, 2, 'both tried to create');
  });

  it('uses an operator-provided intermediate in cert-manager layout (tls.crt, tls.key, ca.crt)', async () => {
    const api = new MemoryKubeApi();
    const pki = externalPki();
    api.put('Secret', NS, 'weft-ca-keys', { 'tls.crt': pki.interPem + pki.rootPem, 'tls.key': pki.interKeyPem, 'ca.crt': pki.rootPem });
    const { material, origin } = await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    assert.equal(origin, 'operator');
    assert.equal(api.calls.filter((c) => c.startsWith('create')).length, 0, 'nothing created');
    const ca = caFrom(material);
    const cert = await requestCertificate(new InProcessCaClient(ca, 'n'), id('shop', 'cart'));
    assert.equal(new X509Certificate(cert.chainPem[0]!).fingerprint256, new X509Certificate(pki.interPem).fingerprint256);
    assert.deepEqual(ca.trustBundle(), [new X509Certificate(pki.rootPem).toString()]);
  });

  it('uses an operator-provided root in Istio cacerts layout, and refuses a Secret of neither layout', async () => {
    const api = new MemoryKubeApi();
    const root = CertificateAuthority.generateRoot(TD);
    api.put('Secret', NS, 'weft-ca-keys', caKeyMaterialToSecret(root));
    assert.equal((await bootstrapCaKeys({ api, namespace: NS })).material.certPem, root.certPem);
    api.put('Secret', NS, 'weft-ca-keys', { 'key.pem': 'x' });
    await assert.rejects(bootstrapCaKeys({ api, namespace: NS }), (e) => isWeftError(e, 'WEFT_ERR_CA_LOAD') && /tls\.crt/.test(e.message));
  });

  it('says which object and what RBAC when the API refuses', async () => {
    const api = new MemoryKubeApi();
    api.forbid.add('Secret');
    await assert.rejects(bootstrapCaKeys({ api, namespace: NS }), (e) => isWeftError(e, 'WEFT_ERR_CA_BOOTSTRAP') && /weft-system\/weft-ca-keys/.test(e.message) && /forbidden/.test(e.message));
  });
});

describe('trust bundle publication (weft-ca-root ConfigMap)', () => {
  it('creates the ConfigMap, leaves it alone when right, follows the Secret\'s roots, and puts back what was deleted', async () => {
    const api = new MemoryKubeApi();
    const { material } = await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    const publisher = new TrustBundlePublisher({ api, namespace: NS, signingCertPem: material.certPem });
    assert.equal(await publisher.reconcile(), 'created');
    assert.equal(api.get('ConfigMap', NS, 'weft-ca-root')?.data['root-cert.pem'], material.certPem);
    assert.equal(publisher.signingKeyChanged, false);
    assert.equal(await publisher.reconcile(), 'unchanged');
    // Rotation, step 1: the operator adds a second root to the Secret; the bundle holds both.
    const next = CertificateAuthority.generateRoot(TD);
    const secret = api.get('Secret', NS, 'weft-ca-keys')!;
    api.put('Secret', NS, 'weft-ca-keys', { ...secret.data, [CA_FILES.roots]: material.certPem + next.certPem }, secret.labels);
    assert.equal(await publisher.reconcile(), 'updated');
    assert.equal(api.get('ConfigMap', NS, 'weft-ca-root')?.data['root-cert.pem'], material.certPem + next.certPem);
    assert.equal(publisher.signingKeyChanged, false, 'step 1 keeps the key');
    // Step 2: the Secret signs with the new root; the running CA notices it needs a restart.
    api.put('Secret', NS, 'weft-ca-keys', { ...caKeyMaterialToSecret(next), [CA_FILES.roots]: material.certPem + next.certPem }, secret.labels);
    assert.equal(await publisher.reconcile(), 'unchanged');
    assert.equal(publisher.signingKeyChanged, true);
    api.objects.delete(`ConfigMap/${NS}/weft-ca-root`);
    assert.equal(await publisher.reconcile(), 'created');
  });

  it('two replicas writing at once: a stale resourceVersion is read again, not overwritten blindly', async () => {
    const api = new MemoryKubeApi();
    await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    api.put('ConfigMap', NS, 'weft-ca-root', { 'root-cert.pem': 'stale' });
    const publisher = new TrustBundlePublisher({ api, namespace: NS });
    // The other replica writes between our read and our replace, once.
    const replace = api.replaceConfigMap.bind(api);
    let interfered = false;
    api.replaceConfigMap = async (ns, name, data, labels, rv) => {
      if (!interfered) {
        interfered = true;
        api.put('ConfigMap', ns, name, { 'root-cert.pem': 'other replica' });
      }
      return replace(ns, name, data, labels, rv);
    };
    assert.equal(await publisher.reconcile(), 'updated');
    assert.equal(api.calls.filter((c) => c.startsWith('update ConfigMap')).length, 2);
    assert.match(api.get('ConfigMap', NS, 'weft-ca-root')!.data['root-cert.pem']!, /BEGIN CERTIFICATE/);
  });

  it('a Secret that stops parsing leaves the published bundle as it was', async () => {
    const api = new MemoryKubeApi();
    await bootstrapCaKeys({ api, namespace: NS, trustDomain: TD });
    const publisher = new TrustBundlePublisher({ api, namespace: NS });
    await publisher.reconcile();
    const before = api.get('ConfigMap', NS, 'weft-ca-root')!.data['root-cert.pem'];
    api.put('Secret', NS, 'weft-ca-keys', { junk: 'x' });
    await assert.rejects(publisher.reconcile(), (e) => isWeftError(e, 'WEFT_ERR_CA_LOAD'));
    assert.equal(api.get('ConfigMap', NS, 'weft-ca-root')!.data['root-cert.pem'], before);
  });
});
