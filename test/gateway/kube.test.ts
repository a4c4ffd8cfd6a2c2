/**
 * `weft gateway` in Kubernetes mode, in-process: kubernetes.io/tls Secrets, Ingresses and Istio
 * Gateways watched from an API server (test/helpers/fake-kube-api.ts), a Secret that is missing
 * making only its listener's condition false with the reason and the listener served once the
 * Secret arrives on the watch; and the status objects as written (GatewayStatusWriter: the
 * Gateway's addresses, listener conditions and attachedRoutes, the HTTPRoute's parent status
 * with other controllers' entries kept, the Ingress's status.loadBalancer), each written only
 * when it changed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { IngressGateway } from '../../agent/gateway/gateway.js';
import { GatewayObjectWatch, GatewayStatusWriter, kubeRequest } from '../../agent/gateway/kube.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';
import { captureLogger } from '../helpers/logs.js';
import { waitFor } from '../helpers/wait.js';
import { FixedSource, H2_PORT, HTTP_PORT, NS, TCP_PORT, modelOf, startHarness, type Harness, type PodSpec, type ServiceSpec } from '../waypoint/harness.js';

const run = promisify(execFile);
const PODS: PodSpec[] = [{ name: 'web-1', ip: '198.18.130.11', labels: { app: 'web' } }];
const SERVICES: ServiceSpec[] = [{ name: 'web', vip: '198.18.131.10', selector: { app: 'web' }, waypoint: null }];
const PATHS = { secrets: '/api/v1/secrets', ingresses: '/apis/networking.k8s.io/v1/ingresses', classes: '/apis/networking.k8s.io/v1/ingressclasses', istio: '/apis/networking.istio.io/v1/gateways' };
const ADDRESS = '198.19.130.1';

const gateway = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name: 'gw', namespace: NS, generation: 3 },
  spec: {
    gatewayClassName: 'weft',
    listeners: [
      { name: 'http', port: 80, protocol: 'HTTP' },
      { name: 'https', port: 443, protocol: 'HTTPS', hostname: 'foo.example.com', tls: { certificateRefs: [{ name: 'foo-cert' }] } },
    ],
  },
} as ManifestObject;
const route = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'web', namespace: NS, generation: 2 }, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['foo.example.com'], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] } } as ManifestObject;

/** The status subresources as an API server keeps them: GET answers the object, PATCH merges `status` (JSON merge patch of the top level). */
class StatusServer {
  readonly objects = new Map<string, { status?: Record<string, unknown> }>();
  readonly patches: { path: string; body: { status: Record<string, unknown> } }[] = [];
  #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const o = this.objects.get(path);
      if (o === undefined) return void res.writeHead(404).end('{}');
      if (req.method === 'PATCH') {
        assert.equal(req.headers['content-type'], 'application/merge-patch+json');
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { status: Record<string, unknown> };
        this.patches.push({ path, body });
        o.status = { ...(o.status ?? {}), ...body.status };
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(o));
    });
  });
  async start(): Promise<string> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'fake', server, skipTLSVerify: true }], users: [{ name: 'gw', token: 'test-token' }], contexts: [{ name: 'fake', cluster: 'fake', user: 'gw' }], currentContext: 'fake' });
  return kc;
}

async function handshakes(port: number, servername: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-brief'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.stderr.on('data', (c: Buffer) => (out += c));
    p.stdin.end();
    p.on('close', (code) => resolve(code === 0 && /Peer certificate/.test(out)));
  });
}

describe('weft gateway in Kubernetes mode: Secrets and Ingresses from the API server, status written', () => {
  let h: Harness;
  let api: FakeKubeApi;
  let statuses: StatusServer;
  let watch: GatewayObjectWatch;
  let gw: IngressGateway;
  let dir: string;
  let logs: object[] = [];
  const gatewayPath = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/gw/status`;
  const routePath = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/web/status`;
  const ingressPath = `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/shop/status`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ingapi-kube-'));
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=foo.example.com', '-addext', 'subjectAltName=DNS:foo.example.com', '-keyout', join(dir, 'foo.key'), '-out', join(dir, 'foo.crt')]);
    api = new FakeKubeApi(Object.values(PATHS));
    await api.start();
    api.upsert(PATHS.ingresses, { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'shop', namespace: NS }, spec: { ingressClassName: 'weft', rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] } });
    statuses = new StatusServer();
    const statusUrl = await statuses.start();
    statuses.objects.set(gatewayPath, {});
    // Another controller's parent entry on the route: kept as it is.
    statuses.objects.set(routePath, { status: { parents: [{ parentRef: { name: 'mesh-svc', kind: 'Service', group: '' }, controllerName: 'example.com/other', conditions: [] }] } });
    statuses.objects.set(ingressPath, {});
    h = await startHarness({ pods: PODS, services: SERVICES });
    const byIp = new Map([...h.pods.values()].map((p) => [p.spec.ip, p]));
    const { logger, lines } = captureLogger('info');
    logs = lines;
    watch = new GatewayObjectWatch(kubeConfig(api.url), logger);
    await watch.start();
    gw = new IngressGateway({
      name: 'gw',
      namespace: NS,
      ingress: true,
      source: new FixedSource(modelOf(PODS, SERVICES, 1, [gateway, route])),
      secrets: watch.secrets,
      objects: watch,
      statusWriter: new GatewayStatusWriter(kubeRequest(kubeConfig(statusUrl)), logger, () => new Date('2026-12-01T20:00:00.000Z')),
      addresses: [ADDRESS],
      caClient: new InProcessCaClient(h.ca, 'node-a'),
      logger,
      bindAddress: () => ({ host: '127.0.0.1', port: 0 }),
      createSocket: (host, p) => {
        const pod = byIp.get(host);
        const to = pod === undefined ? 1 : p === 15008 ? pod.ports.hbone : p === HTTP_PORT ? pod.ports.http : p === H2_PORT ? pod.ports.h2 : p === TCP_PORT ? pod.ports.tcp : 1;
        return net.connect({ host: '127.0.0.1', port: to || 1 });
      },
    });
    await gw.start();
    await gw.settled();
  });
  after(async () => {
    if (process.env.INGAPI_DEBUG) for (const l of logs) console.log(JSON.stringify(l));
    await gw?.stop();
    await watch?.stop();
    await api?.stop();
    await statuses?.stop();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves an Ingress from the API server, and writes its status.loadBalancer with the gateway\'s address', async () => {
    const port = gw.address(80)!.port;
    const status = await new Promise<number>((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/', headers: { host: 'shop.example.com' }, agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
    assert.equal(status, 200);
    const ing = statuses.patches.filter((p) => p.path === ingressPath);
    assert.equal(ing.length, 1);
    assert.deepEqual(ing[0]!.body, { status: { loadBalancer: { ingress: [{ ip: ADDRESS }] } } });
  });

  it('a Secret missing from the API server: only its listener is down, with the reason, in the Gateway status as written', () => {
    const written = statuses.objects.get(gatewayPath)!.status as { addresses: unknown; conditions: { type: string; status: string }[]; listeners: { name: string; attachedRoutes: number; supportedKinds: unknown; conditions: { type: string; status: string; reason: string; message: string; observedGeneration: number; lastTransitionTime: string }[] }[] };
    assert.deepEqual(written.addresses, [{ type: 'IPAddress', value: ADDRESS }]);
    assert.deepEqual(written.conditions.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['Programmed', 'True']]);
    const https = written.listeners.find((l) => l.name === 'https')!;
    const resolved = https.conditions.find((c) => c.type === 'ResolvedRefs')!;
    assert.equal(resolved.status, 'False');
    assert.equal(resolved.reason, 'InvalidCertificateRef');
    assert.match(resolved.message, /Secret shop\/foo-cert not found/);
    assert.equal(resolved.observedGeneration, 3);
    assert.equal(resolved.lastTransitionTime, '2026-12-01T20:00:00Z');
    assert.equal(https.conditions.find((c) => c.type === 'Programmed')!.status, 'False');
    const plain = written.listeners.find((l) => l.name === 'http')!;
    assert.deepEqual(plain.conditions.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['ResolvedRefs', 'True'], ['Programmed', 'True']]);
    assert.equal(plain.attachedRoutes, 1);
    assert.deepEqual(plain.supportedKinds, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }]);
  });

  it('writes the HTTPRoute parent status for the Gateway, keeping other controllers\' entries', () => {
    const parents = (statuses.objects.get(routePath)!.status as { parents: { controllerName: string; parentRef: { name: string; kind?: string; sectionName?: string }; conditions: { type: string; status: string; reason: string }[] }[] }).parents;
    assert.equal(parents.length, 2);
    assert.equal(parents[0]!.controllerName, 'example.com/other');
    const ours = parents[1]!;
    assert.equal(ours.controllerName, 'weft.dev/gateway-controller');
    assert.equal(ours.parentRef.name, 'gw');
    assert.equal(ours.parentRef.kind, 'Gateway');
    assert.deepEqual(ours.conditions.map((c) => [c.type, c.status, c.reason]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']]);
  });

  it('the Secret arriving on the watch: the listener serves and its status turns true; nothing unchanged is written again', async () => {
    const https = gw.address(443);
    assert.equal(https, undefined, 'no HTTPS listener is served, so port 443 is not open');
    const before = statuses.patches.length;
    api.upsert(PATHS.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'foo-cert', namespace: NS }, type: 'kubernetes.io/tls', data: { 'tls.crt': readFileSync(join(dir, 'foo.crt')).toString('base64'), 'tls.key': readFileSync(join(dir, 'foo.key')).toString('base64') } });
    await waitFor(() => gw.address(443) !== undefined, 'the HTTPS listener open');
    await gw.settled();
    assert.ok(await handshakes(gw.address(443)!.port, 'foo.example.com'));
    const written = statuses.objects.get(gatewayPath)!.status as { listeners: { name: string; attachedRoutes: number; conditions: { type: string; status: string }[] }[] };
    const l = written.listeners.find((x) => x.name === 'https')!;
    assert.deepEqual(l.conditions.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['ResolvedRefs', 'True'], ['Programmed', 'True']]);
    assert.equal(l.attachedRoutes, 1);
    // The Gateway changed; the route's and the Ingress's status did not: not written again.
    const since = statuses.patches.slice(before).map((p) => p.path);
    assert.ok(since.includes(gatewayPath));
    assert.ok(!since.includes(routePath), since.join(', '));
    assert.ok(!since.includes(ingressPath), since.join(', '));
  });
});

describe('GatewayStatusWriter', () => {
  const snapshot = {
    gateway: { namespace: NS, name: 'gw', generation: 1, found: false },
    status: { conditions: [], listeners: [] },
    routes: [],
    ingresses: [`${NS}/shop`],
    addresses: ['gw.example.com'],
  };
  const path = `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/shop/status`;

  it('writes with the resourceVersion read, and reads again after a 409 Conflict', async () => {
    const calls: string[] = [];
    let rv = 5;
    const writer = new GatewayStatusWriter(async (method, p, body) => {
      calls.push(`${method} ${p} ${JSON.stringify(body ?? null)}`);
      if (method === 'GET') return { status: 200, body: { metadata: { resourceVersion: String(rv) }, status: {} } };
      const sent = (body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      // Someone else wrote between the first GET and PATCH.
      if (sent === '5') return (rv = 6), { status: 409, body: {} };
      return { status: 200, body: {} };
    }, captureLogger('info').logger);
    await writer.write(snapshot);
    assert.deepEqual(calls, [
      `GET ${path} null`,
      `PATCH ${path} {"metadata":{"resourceVersion":"5"},"status":{"loadBalancer":{"ingress":[{"hostname":"gw.example.com"}]}}}`,
      `GET ${path} null`,
      `PATCH ${path} {"metadata":{"resourceVersion":"6"},"status":{"loadBalancer":{"ingress":[{"hostname":"gw.example.com"}]}}}`,
    ]);
    // Unchanged: not written again.
    await writer.write(snapshot);
    assert.equal(calls.length, 4);
  });

  it('a failed write is logged with WEFT_ERR_GATEWAY_STATUS and made again after a backoff', async () => {
    let patches = 0;
    let failing = true;
    const { logger, lines } = captureLogger('info');
    const writer = new GatewayStatusWriter(async (method) => {
      if (method === 'GET') return { status: 200, body: { status: {} } };
      patches++;
      return failing ? { status: 403, body: { message: 'forbidden' } } : { status: 200, body: {} };
    }, logger);
    try {
      await writer.write(snapshot);
      assert.ok(lines.some((l) => (l as { code?: string }).code === 'WEFT_ERR_GATEWAY_STATUS'));
      failing = false;
      await waitFor(() => patches === 2, 'the write made again');
    } finally {
      writer.stop();
    }
  });
});
