/**
 * `weft gateway` as the cluster's ingress gateway (ingress: true), in-process on loopback:
 * Kubernetes Ingresses of class weft and Istio Gateways + VirtualServices (Istio's own
 * bookinfo-gateway.yaml, unchanged) route the same way as the equivalent HTTPRoute on a Gateway
 * of class weft (host, path kinds, TLS by SNI, default backend); a bad Secret takes down only its
 * host's listener and it serves once fixed; HTTP/2 by ALPN on the TLS listeners (curl --http2,
 * node:http2) and with prior knowledge on the plain ones (curl --http2-prior-knowledge).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { IngressGateway } from '../../agent/gateway/gateway.js';
import type { SecretObject } from '../../agent/gateway/config.js';
import { captureLogger } from '../helpers/logs.js';
import { FixedSource, H2_PORT, HTTP_PORT, NS, TCP_PORT, modelOf, startHarness, type Harness, type PodSpec, type ServiceSpec } from '../waypoint/harness.js';

const run = promisify(execFile);
const PODS: PodSpec[] = [
  { name: 'web-1', ip: '198.18.128.11', labels: { app: 'web' } },
  { name: 'api-1', ip: '198.18.128.12', labels: { app: 'api' } },
  { name: 'fallback-1', ip: '198.18.128.13', labels: { app: 'fallback' } },
  { name: 'productpage-1', ip: '198.18.128.14', labels: { app: 'productpage' } },
];
const SERVICES: ServiceSpec[] = [
  { name: 'web', vip: '198.18.129.10', selector: { app: 'web' }, waypoint: null },
  { name: 'api', vip: '198.18.129.11', selector: { app: 'api' }, waypoint: null },
  { name: 'fallback', vip: '198.18.129.12', selector: { app: 'fallback' }, waypoint: null },
];

/** Istio's samples/bookinfo/networking/bookinfo-gateway.yaml (istio/istio), verbatim. */
const BOOKINFO_GATEWAY_YAML = `apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  # The selector matches the ingress gateway pod labels.
  # If you installed Istio using Helm following the standard documentation, this would be "istio=ingress"
  selector:
    istio: ingressgateway # use istio default controller
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
`;

/** `kubectl apply -n shop -f bookinfo-gateway.yaml`: the objects in the namespace shop. */
function bookinfoGateway(): ManifestObject[] {
  return parseAllDocuments(BOOKINFO_GATEWAY_YAML).map((d) => {
    const o = d.toJS() as ManifestObject;
    return { ...o, metadata: { ...o.metadata, namespace: NS } };
  });
}

const productpage: ManifestObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'productpage', namespace: NS }, spec: { clusterIP: '198.18.129.13', selector: { app: 'productpage' }, ports: [{ name: 'http', port: 9080, targetPort: HTTP_PORT }] } };

const FOO_PATHS = [
  { path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } },
  { path: '/exact', pathType: 'Exact', backend: { service: { name: 'api', port: { number: 80 } } } },
  { path: '/impl', pathType: 'ImplementationSpecific', backend: { service: { name: 'api', port: { number: 80 } } } },
  { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
];

const ingress = (name: string, spec: object, extra: object = {}): ManifestObject => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: NS, ...extra }, spec });

const objects = (): ManifestObject[] => [
  { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'weft' }, spec: { controller: 'weft.dev/gateway-controller' } } as ManifestObject,
  ingress('shop', {
    ingressClassName: 'weft',
    defaultBackend: { service: { name: 'fallback', port: { number: 80 } } },
    tls: [
      { hosts: ['foo.example.com'], secretName: 'foo-cert' },
      { hosts: ['bad.example.com'], secretName: 'bad-cert' },
    ],
    rules: [
      { host: 'foo.example.com', http: { paths: FOO_PATHS } },
      { host: '*.wild.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } },
      { host: 'bad.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } },
    ],
  }),
  ingress('legacy', { rules: [{ host: 'legacy.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } }] }, { annotations: { 'kubernetes.io/ingress.class': 'weft' } }),
  ingress('not-ours', { ingressClassName: 'nginx', rules: [{ host: 'other.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } }] }),
  // The same routing as the Ingress rules for foo.example.com, as a Gateway API Gateway and HTTPRoute.
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: NS },
    spec: {
      gatewayClassName: 'weft',
      listeners: [
        { name: 'http', port: 8000, protocol: 'HTTP' },
        { name: 'https', port: 8443, protocol: 'HTTPS', hostname: 'foo.example.com', tls: { certificateRefs: [{ name: 'foo-cert' }] } },
      ],
    },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'foo', namespace: NS },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: ['foo.example.com'],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }, { path: { type: 'Exact', value: '/exact' } }, { path: { type: 'PathPrefix', value: '/impl' } }], backendRefs: [{ name: 'api', port: 80 }] },
        { backendRefs: [{ name: 'web', port: 80 }] },
      ],
    },
  },
  ...bookinfoGateway(),
  productpage,
  // An Istio Gateway with TLS (SIMPLE, credentialName) and an HTTP server that redirects to it.
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'secure', namespace: NS },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [
        { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['istio.example.com'], tls: { mode: 'SIMPLE', credentialName: 'istio-cert' } },
        { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['istio.example.com'], tls: { httpsRedirect: true } },
      ],
    },
  } as ManifestObject,
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'secure', namespace: NS }, spec: { hosts: ['istio.example.com'], gateways: ['secure'], http: [{ match: [{ uri: { prefix: '/v' } }], route: [{ destination: { host: 'api', port: { number: 80 } } }] }, { route: [{ destination: { host: 'web.shop.svc.cluster.local', port: { number: 80 } } }] }] } } as ManifestObject,
  // Selects other pods: not this gateway's.
  { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'elsewhere', namespace: NS }, spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['elsewhere.example.com'] }] } } as ManifestObject,
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'elsewhere', namespace: NS }, spec: { hosts: ['elsewhere.example.com'], gateways: ['elsewhere'], http: [{ route: [{ destination: { host: 'api', port: { number: 80 } } }] }] } } as ManifestObject,
];

function tlsSecret(name: string, dir: string, base: string): SecretObject {
  return { type: 'kubernetes.io/tls', data: { 'tls.crt': readFileSync(join(dir, `${base}.crt`)).toString('base64'), 'tls.key': readFileSync(join(dir, `${base}.key`)).toString('base64') } };
}

async function selfSigned(dir: string, base: string, cn: string): Promise<void> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`, '-keyout', join(dir, `${base}.key`), '-out', join(dir, `${base}.crt`)]);
}

async function sClient(port: number, servername: string): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-brief'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.stderr.on('data', (c: Buffer) => (out += c));
    p.stdin.end();
    p.on('close', (code) => resolve({ ok: code === 0 && /Peer certificate/.test(out), out }));
  });
}

async function get(port: number, host: string, path: string): Promise<{ status: number; pod: string | undefined; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pod: res.headers['x-pod'] as string | undefined, location: res.headers.location }));
    });
    req.on('error', reject);
  });
}

/** curl over TLS with --resolve (certificate checked against `ca`): `<http version> <status> <x-pod>`. */
async function curlTls(port: number, host: string, path: string, ca: string, extra: string[] = []): Promise<string> {
  const { stdout } = await run('curl', ['-sS', ...extra, '--resolve', `${host}:${port}:127.0.0.1`, '--cacert', ca, '-o', '/dev/null', '-w', '%{http_version} %{http_code} %header{x-pod}', `https://${host}:${port}${path}`]);
  return stdout;
}

describe('weft gateway as the ingress gateway: Ingress and Istio Gateway objects', () => {
  let h: Harness;
  let gw: IngressGateway;
  let source: FixedSource;
  let dir: string;
  const secrets = new Map<string, SecretObject>();
  let logs: object[] = [];
  const port = (p: number): number => gw.address(p)!.port;
  let generation = 1;
  const update = async (): Promise<void> => {
    source.set(modelOf(PODS, SERVICES, ++generation, objects()));
    await gw.settled();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ingapi-ing-'));
    await selfSigned(dir, 'foo', 'foo.example.com');
    await selfSigned(dir, 'istio', 'istio.example.com');
    secrets.set(`${NS}/foo-cert`, tlsSecret('foo-cert', dir, 'foo'));
    // Istio's generic credential form: `cert` and `key`.
    const istio = tlsSecret('istio-cert', dir, 'istio');
    secrets.set(`${NS}/istio-cert`, { type: 'Opaque', data: { cert: istio.data!['tls.crt']!, key: istio.data!['tls.key']! } });
    h = await startHarness({ pods: PODS, services: SERVICES });
    const byIp = new Map([...h.pods.values()].map((p) => [p.spec.ip, p]));
    source = new FixedSource(modelOf(PODS, SERVICES, generation, objects()));
    const { logger, lines } = captureLogger('info');
    logs = lines;
    gw = new IngressGateway({
      name: 'gw',
      namespace: NS,
      ingress: true,
      source,
      secrets: (ns, name) => secrets.get(`${ns}/${name}`),
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
  });
  after(async () => {
    if (process.env.INGAPI_DEBUG) for (const l of logs) console.log(JSON.stringify(l));
    await gw?.stop();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes an Ingress by path exactly as the equivalent HTTPRoute (Prefix by segment, Exact, ImplementationSpecific as Prefix)', async () => {
    const table: [string, string][] = [
      ['/api', 'api-1'],
      ['/api/', 'api-1'],
      ['/api/items', 'api-1'],
      ['/apix', 'web-1'],
      ['/exact', 'api-1'],
      ['/exact/more', 'web-1'],
      ['/impl/a', 'api-1'],
      ['/implx', 'web-1'],
      ['/', 'web-1'],
      ['/cart?id=1', 'web-1'],
    ];
    for (const [path, want] of table) {
      const viaIngress = await get(port(80), 'foo.example.com', path);
      const viaRoute = await get(port(8000), 'foo.example.com', path);
      assert.equal(viaIngress.pod, want, `Ingress ${path}`);
      assert.equal(viaRoute.pod, want, `HTTPRoute ${path}`);
    }
  });

  it('routes by host: exact, a one-label wildcard, the legacy class annotation; other classes and unknown hosts get the default backend', async () => {
    assert.equal((await get(port(80), 'a.wild.example.com', '/')).pod, 'api-1');
    // The Ingress spec's wildcard is one label: a.b.wild.example.com is no rule's.
    assert.equal((await get(port(80), 'a.b.wild.example.com', '/')).pod, 'fallback-1');
    assert.equal((await get(port(80), 'legacy.example.com', '/')).pod, 'api-1');
    assert.equal((await get(port(80), 'other.example.com', '/')).pod, 'fallback-1');
    assert.equal((await get(port(80), 'nobody.example.com', '/x')).pod, 'fallback-1');
    // Without a default backend (the Gateway API listener), an unknown host is 404.
    assert.equal((await get(port(8000), 'nobody.example.com', '/x')).status, 404);
  });

  it('terminates TLS for the Ingress host with its Secret, and the HTTPRoute listener does the same (curl --resolve)', async () => {
    const ca = join(dir, 'foo.crt');
    assert.equal(await curlTls(port(443), 'foo.example.com', '/api/x', ca, ['--http1.1']), '1.1 200 api-1');
    assert.equal(await curlTls(port(8443), 'foo.example.com', '/api/x', ca, ['--http1.1']), '1.1 200 api-1');
    assert.equal(await curlTls(port(443), 'foo.example.com', '/apix', ca, ['--http1.1']), '1.1 200 web-1');
  });

  it('serves Istio\'s bookinfo-gateway.yaml unchanged: the VirtualService bound by gateways: [bookinfo-gateway]', async () => {
    for (const path of ['/productpage', '/static/css/x.css', '/login', '/logout', '/api/v1/products/0']) {
      const r = await get(port(80), 'bookinfo.example.com', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.pod, 'productpage-1', path);
    }
    // Istio's exact match: /productpage/x is not bound (the Ingress's default backend answers it on this shared port).
    assert.equal((await get(port(80), 'bookinfo.example.com', '/productpage/x')).pod, 'fallback-1');
    const vs = (gw.configDump() as { routes: { route: string; parent: string; accepted: string }[] }).routes.find((r) => r.route === 'VirtualService shop/bookinfo');
    assert.ok(vs, JSON.stringify(gw.configDump()));
  });

  it('an Istio Gateway server with tls SIMPLE and credentialName, and httpsRedirect on its HTTP server', async () => {
    const ca = join(dir, 'istio.crt');
    assert.equal(await curlTls(port(443), 'istio.example.com', '/v1/x', ca, ['--http1.1']), '1.1 200 api-1');
    assert.equal(await curlTls(port(443), 'istio.example.com', '/', ca, ['--http1.1']), '1.1 200 web-1');
    const r = await get(port(80), 'istio.example.com', '/v1?q=1');
    assert.equal(r.status, 301);
    assert.equal(r.location, 'https://istio.example.com/v1?q=1');
    // A Gateway selecting other workloads is not served here.
    assert.equal((await get(port(80), 'elsewhere.example.com', '/')).pod, 'fallback-1');
  });

  it('a missing Secret takes down only its host\'s listener, with the reason; it serves once the Secret exists', async () => {
    assert.equal((await sClient(port(443), 'bad.example.com')).ok, false);
    assert.ok((await sClient(port(443), 'foo.example.com')).ok);
    assert.ok((await sClient(port(443), 'istio.example.com')).ok);
    const dump = gw.configDump() as { ingresses: { key: string; problems: string[] }[] };
    const shop = dump.ingresses.find((i) => i.key === 'shop/shop')!;
    assert.ok(shop.problems.some((p) => /TLS for bad\.example\.com: Secret shop\/bad-cert not found/.test(p)), JSON.stringify(shop));
    assert.ok(logs.some((l) => (l as { code?: string }).code === 'WEFT_ERR_GATEWAY_INGRESS'));
    // Plain HTTP for that host still serves (its rules are not the Secret's).
    assert.equal((await get(port(80), 'bad.example.com', '/')).pod, 'web-1');
    await selfSigned(dir, 'bad', 'bad.example.com');
    secrets.set(`${NS}/bad-cert`, tlsSecret('bad-cert', dir, 'bad'));
    await update();
    assert.equal(await curlTls(port(443), 'bad.example.com', '/', join(dir, 'bad.crt'), ['--http1.1']), '1.1 200 web-1');
  });

  it('negotiates HTTP/2 by ALPN on the TLS listeners (curl --http2) and forwards to the HTTP/1.1 backends', async () => {
    assert.equal(await curlTls(port(443), 'foo.example.com', '/api/x', join(dir, 'foo.crt'), ['--http2']), '2 200 api-1');
    assert.equal(await curlTls(port(8443), 'foo.example.com', '/', join(dir, 'foo.crt'), ['--http2']), '2 200 web-1');
    assert.equal(await curlTls(port(443), 'istio.example.com', '/v2', join(dir, 'istio.crt'), ['--http2']), '2 200 api-1');
  });

  it('HTTP/2 with prior knowledge (h2c) on a plain HTTP listener, next to HTTP/1.1 on the same port', async () => {
    const h2c = async (host: string, path: string): Promise<string> => {
      const { stdout } = await run('curl', ['-sS', '--http2-prior-knowledge', '--resolve', `${host}:${port(80)}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_version} %{http_code} %header{x-pod}', `http://${host}:${port(80)}${path}`]);
      return stdout;
    };
    assert.equal(await h2c('foo.example.com', '/api/x'), '2 200 api-1');
    assert.equal(await h2c('bookinfo.example.com', '/productpage'), '2 200 productpage-1');
    assert.equal((await get(port(80), 'foo.example.com', '/api/x')).pod, 'api-1');
  });

  it('node:http2 over TLS: several streams on one session, a request body, a 421 as an HTTP/2 answer', async () => {
    const session = http2.connect(`https://foo.example.com:${port(443)}`, { ca: readFileSync(join(dir, 'foo.crt')), servername: 'foo.example.com', host: '127.0.0.1', lookup: (_h, _o, cb) => cb(null, '127.0.0.1', 4) } as http2.SecureClientSessionOptions);
    session.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
      assert.equal((session.socket as unknown as { alpnProtocol?: string }).alpnProtocol, 'h2');
      const request = (headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; pod: string | undefined; body: string }> =>
        new Promise((resolve, reject) => {
          const s = session.request(headers, { endStream: body === undefined });
          let text = '';
          let status = 0;
          let pod: string | undefined;
          s.on('response', (hd) => {
            status = Number(hd[':status']);
            pod = hd['x-pod'] as string | undefined;
          });
          s.setEncoding('utf8');
          s.on('data', (c: string) => (text += c));
          s.on('end', () => resolve({ status, pod, body: text }));
          s.on('error', reject);
          if (body !== undefined) s.end(body);
        });
      const answers = await Promise.all([request({ ':path': '/api/a' }), request({ ':path': '/exact' }), request({ ':path': '/' })]);
      assert.deepEqual(answers.map((a) => [a.status, a.pod]), [[200, 'api-1'], [200, 'api-1'], [200, 'web-1']]);
      const posted = await request({ ':method': 'POST', ':path': '/api/upload', 'content-type': 'text/plain' }, 'x'.repeat(70_000));
      assert.equal(posted.status, 200);
      const seen = JSON.parse(posted.body) as { method: string; bodyBytes: number; headers: Record<string, string> };
      assert.equal(seen.method, 'POST');
      assert.equal(seen.bodyBytes, 70_000);
      assert.equal(seen.headers.host, 'foo.example.com:' + String(port(443)));
      assert.equal((await request({ ':path': '/x', ':authority': 'istio.example.com' })).status, 421);
    } finally {
      await new Promise<void>((resolve) => session.close(() => resolve()));
    }
  });
});
