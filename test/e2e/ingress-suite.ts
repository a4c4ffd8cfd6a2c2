/**
 * The ingress gateway in a real lab (issue 13 point 3), from outside the cluster: bookinfo and
 * httpbin behind a Gateway of class weft that the lab runs (`weft gateway` in a pod of its own)
 * and gives an external address on the lab's internet network; every request comes from the
 * internet client host (`weft lab exec --internet`), except the port-forward's, which comes from
 * this machine's loopback. HTTPS with SNI to two hostnames with two certificates (curl --resolve,
 * openssl s_client), HTTP->HTTPS redirect, host and path routing, allowedRoutes refusing a route
 * from another namespace, a bad Secret affecting only its listener, `lab port-forward`, and the
 * gateway pod's request metrics with reporter="source". Secrets are kubernetes.io/tls manifests
 * applied with `weft lab apply`. One lab per file, removed also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fetchAdmin } from '../../agent/admin/client.js';
import { DEFAULT_ADMIN_ADDRESS } from '../../agent/config.js';
import { exposeBookinfo } from '../../agent/lab/bookinfo-ingress.js';
import { labApply, labDelete, labDown, labExec, labStatus, labUp, type LabStatus } from '../../agent/lab/index.js';
import { formatStatus } from '../../agent/lab/status.js';
import { adminKubeConfig } from '../../agent/lab/kube-mode.js';
import { CustomObjectsApi, NetworkingV1Api } from '@kubernetes/client-node';
import { internetNetns, REPO_DIR } from '../../agent/lab/paths.js';
import { labPortForward } from '../../agent/lab/port-forward.js';
import { queryLabPrometheus } from '../../agent/lab/prometheus.js';
import { listNetns } from '../../agent/lab/network.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const GW = 'public';
const NS = 'default';
const READY_MS = 60_000;

export interface IngressSuiteMode {
  lab: string;
  kubernetes: boolean;
  /** Istio's Gateway + VirtualService (the Kubernetes-mode lab has no Istio CRDs installed). */
  istio: boolean;
  /** The HTTPS cases. */
  tls: boolean;
}

function secretYaml(name: string, dir: string, base: string): string {
  const b64 = (f: string): string => readFileSync(join(dir, f)).toString('base64');
  return `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${NS}}
type: kubernetes.io/tls
data:
  tls.crt: ${b64(`${base}.crt`)}
  tls.key: ${b64(`${base}.key`)}
`;
}

/** The Gateway and its routes: HTTPS for shop (bookinfo) and api (httpbin), plain HTTP for the rest. */
const GATEWAY_YAML = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${GW}
  namespace: ${NS}
  # Also the cluster's ingress controller (weft gateway --ingress): it serves the Ingresses of class weft.
  annotations: {weft.dev/ingress-controller: "true"}
spec:
  gatewayClassName: weft
  listeners:
    - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}
    - name: https-shop
      port: 443
      protocol: HTTPS
      hostname: shop.example.com
      tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: shop-cert}]}
    - name: https-api
      port: 443
      protocol: HTTPS
      hostname: api.example.com
      tls: {certificateRefs: [{name: api-cert}]}
    - name: https-broken
      port: 443
      protocol: HTTPS
      hostname: broken.example.com
      tls: {certificateRefs: [{name: broken-cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-https, namespace: ${NS}}
spec:
  parentRefs: [{name: ${GW}, sectionName: http}]
  hostnames: [shop.example.com, api.example.com]
  rules:
    - filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: ${NS}}
spec:
  parentRefs: [{name: ${GW}, sectionName: https-shop}]
  rules:
    - matches: [{path: {type: Exact, value: /productpage}}]
      backendRefs: [{name: productpage, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: ${NS}}
spec:
  parentRefs: [{name: ${GW}, sectionName: https-api}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /headers}}, {path: {type: PathPrefix, value: /status}}]
      backendRefs: [{name: httpbin, port: 8000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookinfo-host, namespace: ${NS}}
spec:
  parentRefs: [{name: ${GW}, sectionName: http}]
  hostnames: [bookinfo.example.com]
  rules:
    - matches: [{path: {type: Exact, value: /productpage}}]
      backendRefs: [{name: productpage, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: httpbin-host, namespace: ${NS}}
spec:
  parentRefs: [{name: ${GW}, sectionName: http}]
  hostnames: [httpbin.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /headers}}]
      backendRefs: [{name: httpbin, port: 8000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: intruder, namespace: outside}
spec:
  parentRefs: [{name: ${GW}, namespace: ${NS}, sectionName: http}]
  hostnames: [intruder.example.com]
  rules:
    - backendRefs: [{name: productpage, namespace: ${NS}, port: 9080}]
`;

/**
 * Istio's Gateway + VirtualService for the same backend as the HTTPRoute of bookinfo.example.com
 * (as Istio's samples/bookinfo/networking/bookinfo-gateway.yaml, on its own host): selected by
 * the Weft gateway pod's own label, served on the same port 80.
 */
const ISTIO_YAML = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-gw, namespace: ${NS}}
spec:
  selector: {gateway.networking.k8s.io/gateway-name: ${GW}}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: [istio.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: istio-bookinfo, namespace: ${NS}}
spec:
  hosts: [istio.example.com]
  gateways: [istio-gw]
  http:
    - match: [{uri: {exact: /productpage}}]
      route: [{destination: {host: productpage, port: {number: 9080}}}]
`;

/** A Kubernetes Ingress (class weft) for the same backends as the HTTPRoutes of bookinfo.example.com and httpbin.example.com. */
const INGRESS_YAML = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: weft}
spec: {controller: weft.dev/gateway-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: ${NS}}
spec:
  ingressClassName: weft
  rules:
    - host: ingress.example.com
      http:
        paths:
          - {path: /productpage, pathType: Exact, backend: {service: {name: productpage, port: {number: 9080}}}}
          - {path: /headers, pathType: Prefix, backend: {service: {name: httpbin, port: {number: 8000}}}}
`;

async function selfSigned(dir: string, base: string, cn: string): Promise<void> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`, '-keyout', join(dir, `${base}.key`), '-out', join(dir, `${base}.crt`)]);
}

interface ListenerRow {
  name: string;
  attachedRoutes: number;
  conditions: { type: string; status: string; reason: string; message: string }[];
}

export function ingressSuite(mode: IngressSuiteMode): void {
  const LAB = mode.lab;
  let dir: string;
  let address: string;
  let status: LabStatus;

  /** A command on the lab's internet client host. */
  const internet = async (command: string[]): Promise<{ code: number; stdout: string; stderr: string }> => labExec({ name: LAB, internet: true, pod: '', command, timeoutMs: 20_000 });
  /** curl from the internet client: `%{http_code}` and what -w adds. */
  const curl = async (args: string[]): Promise<string> => {
    const r = await internet(['curl', '-sS', '-m', '10', '-o', '/dev/null', ...args]);
    assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** openssl s_client's view of a handshake with this SNI: the peer certificate's subject, or the failure. */
  const sClient = async (servername: string): Promise<{ ok: boolean; out: string }> => {
    const r = await labExec({ name: LAB, internet: true, pod: '', command: ['sh', '-c', `openssl s_client -connect ${address}:443 -servername ${servername} -brief </dev/null 2>&1`], timeoutMs: 20_000 });
    return { ok: r.code === 0 && /Peer certificate/.test(r.stdout), out: r.stdout };
  };
  const gatewayPod = () => {
    const d = status.deployments.find((x) => x.namespace === NS && x.name === GW)!;
    return status.pods.find((p) => d.pods.includes(p.name) && p.running)!;
  };
  const dump = async (): Promise<{ status: { listeners: ListenerRow[] }; routes: { route: string; parent: string; conditions?: unknown }[] | unknown[] }> =>
    (await fetchAdmin({ label: 'gateway', admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${gatewayPod().netns}` }, '/config_dump')) as never;

  describe(`ingress gateway in the lab (${mode.kubernetes ? 'Kubernetes mode' : 'manifests'})`, () => {
    before(async () => {
      await labDown({ name: LAB });
      dir = mkdtempSync(join(tmpdir(), 'inglab-'));
      await selfSigned(dir, 'shop', 'shop.example.com');
      await selfSigned(dir, 'api', 'api.example.com');
      await selfSigned(dir, 'other', 'broken.example.com');
      // broken-cert: broken's certificate with another key, which the gateway must refuse.
      await selfSigned(dir, 'broken', 'broken.example.com');
      const broken = secretYaml('broken-cert', dir, 'broken').replace(/tls\.key: .*/, `tls.key: ${readFileSync(join(dir, 'other.key')).toString('base64')}`);
      writeFileSync(join(dir, 'secrets.yaml'), [secretYaml('shop-cert', dir, 'shop'), secretYaml('api-cert', dir, 'api'), broken].join('---\n'));
      writeFileSync(join(dir, 'gateway.yaml'), GATEWAY_YAML);
      writeFileSync(join(dir, 'istio.yaml'), ISTIO_YAML);
      writeFileSync(join(dir, 'ingress.yaml'), INGRESS_YAML);
      await labUp({ name: LAB, dir: join(REPO_DIR, 'examples', 'bookinfo'), kubernetes: mode.kubernetes, readyTimeoutMs: READY_MS });
      await labApply({ name: LAB, file: join(REPO_DIR, 'examples', 'httpbin', 'httpbin.yaml'), readyTimeoutMs: READY_MS });
      await labApply({ name: LAB, file: join(dir, 'secrets.yaml'), readyTimeoutMs: READY_MS });
      await labApply({ name: LAB, file: join(dir, 'gateway.yaml'), readyTimeoutMs: READY_MS });
      address = await waitFor(async () => (await labStatus(LAB)).gateways.find((g) => g.name === GW && g.namespace === NS)?.addresses[0], 'the Gateway has an external address', READY_MS);
      // Ready once the routes are bound and the backends answer through it.
      await waitFor(async () => (await curl(['-w', '%{http_code}', '-H', 'Host: bookinfo.example.com', `http://${address}/productpage`])) === '200', 'productpage through the gateway', READY_MS);
      status = await labStatus(LAB);
    });

    after(async () => {
      await labDown({ name: LAB });
      rmSync(dir, { recursive: true, force: true });
      assert.deepEqual((await listNetns()).filter((n) => n === internetNetns(LAB)), [], 'the internet namespace goes with the lab');
    });

    it('gives the Gateway an external address outside the cluster, shown by lab status and in its Service\'s status', () => {
      assert.match(address, /^198\.19\.65\.\d+$/);
      const svc = status.services.find((s) => s.namespace === NS && s.name === GW)!;
      assert.equal(svc.externalIP, address);
      assert.deepEqual([...status.gateways.find((g) => g.name === GW)!.ports].sort((a, b) => a - b), [80, 443]);
      assert.deepEqual(status.gateways.find((g) => g.name === GW)!.addresses, [address]);
      // The gateway pod is not captured: it does its own mutual TLS upstream.
      assert.equal(gatewayPod().inMesh, false);
      // `weft lab status` prints it.
      assert.match(formatStatus(status), new RegExp(`^${NS}\\s+${GW}\\s+${address.replace(/\./g, '\\.')}\\s+80,443\\s`, 'm'));
    });

    it('from the internet only the external address answers: no pod IP, ClusterIP or control plane', async () => {
      const pod = status.pods.find((p) => p.labels['app'] === 'productpage')!;
      const vip = status.services.find((s) => s.name === 'productpage')!.clusterIP!;
      for (const url of [`http://${pod.ip}:9080/`, `http://${vip}:9080/`, `http://${gatewayPod().ip}:80/`, 'https://198.19.0.254:15012/']) {
        const r = await internet(['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url]);
        assert.notEqual(r.code, 0, `${url} answered from the internet: ${r.stdout}`);
      }
    });

    if (mode.tls) it('HTTPS with SNI: two hostnames, two certificates (curl --resolve verifies each against its own)', async () => {
      const shop = await curl(['--resolve', `shop.example.com:443:${address}`, '--cacert', join(dir, 'shop.crt'), '-w', '%{http_code}', 'https://shop.example.com/productpage']);
      assert.equal(shop, '200');
      const r = await internet(['curl', '-sS', '-m', '10', '--resolve', `api.example.com:443:${address}`, '--cacert', join(dir, 'api.crt'), 'https://api.example.com/headers']);
      assert.equal(r.code, 0, r.stderr);
      const body = JSON.parse(r.stdout) as { headers: Record<string, string[]> };
      assert.deepEqual(body.headers['Host'], ['api.example.com']);
      // api's certificate is not shop's: verifying api against shop's CA fails (curl exit 60).
      const wrong = await internet(['curl', '-sS', '-m', '10', '--resolve', `api.example.com:443:${address}`, '--cacert', join(dir, 'shop.crt'), 'https://api.example.com/headers']);
      assert.equal(wrong.code, 60, wrong.stderr);
    });

    if (mode.tls) it('openssl s_client -servername gets each hostname its own certificate', async () => {
      const shop = await sClient('shop.example.com');
      assert.ok(shop.ok, shop.out);
      assert.match(shop.out, /CN ?= ?shop\.example\.com/);
      const api = await sClient('api.example.com');
      assert.ok(api.ok, api.out);
      assert.match(api.out, /CN ?= ?api\.example\.com/);
    });

    if (mode.tls) it('a bad Secret takes down only its listener, with the reason in the listener status', async () => {
      const broken = await sClient('broken.example.com');
      assert.equal(broken.ok, false, broken.out);
      const listeners = (await dump()).status.listeners;
      const row = listeners.find((l) => l.name === 'https-broken')!;
      const resolved = row.conditions.find((c) => c.type === 'ResolvedRefs')!;
      assert.equal(resolved.status, 'False');
      assert.equal(resolved.reason, 'InvalidCertificateRef');
      assert.equal(row.conditions.find((c) => c.type === 'Programmed')!.status, 'False');
      for (const name of ['http', 'https-shop', 'https-api']) {
        assert.equal(listeners.find((l) => l.name === name)!.conditions.find((c) => c.type === 'Programmed')!.status, 'True', name);
      }
      // The others still serve on the same port.
      assert.ok((await sClient('shop.example.com')).ok);
    });

    it('redirects plain HTTP to HTTPS (301 to the same host and path)', async () => {
      const out = await curl(['-w', '%{http_code} %{redirect_url}', '-H', 'Host: shop.example.com', `http://${address}/productpage?u=1`]);
      assert.equal(out, '301 https://shop.example.com/productpage?u=1');
      if (!mode.tls) return;
      // Followed, it lands on the HTTPS listener with shop's certificate.
      const followed = await curl(['-L', '--resolve', `shop.example.com:443:${address}`, '--resolve', `shop.example.com:80:${address}`, '--cacert', join(dir, 'shop.crt'), '-w', '%{http_code} %{url_effective}', 'http://shop.example.com/productpage']);
      assert.equal(followed, '200 https://shop.example.com/productpage');
    });

    it('routes by host and path: bookinfo and httpbin on one port, anything else 404', async () => {
      const page = await internet(['curl', '-sS', '-m', '10', '-H', 'Host: bookinfo.example.com', `http://${address}/productpage`]);
      assert.equal((JSON.parse(page.stdout) as { product: string }).product, 'The Comedy of Errors');
      const bin = await internet(['curl', '-sS', '-m', '10', '-H', 'Host: httpbin.example.com', `http://${address}/headers`]);
      assert.deepEqual((JSON.parse(bin.stdout) as { headers: Record<string, string[]> }).headers['Host'], ['httpbin.example.com']);
      assert.equal(await curl(['-w', '%{http_code}', '-H', 'Host: bookinfo.example.com', `http://${address}/headers`]), '404');
      assert.equal(await curl(['-w', '%{http_code}', '-H', 'Host: nobody.example.com', `http://${address}/productpage`]), '404');
    });

    if (mode.istio) it('an Istio Gateway + VirtualService (gateways: [istio-gw]) routes as the equivalent HTTPRoute does', async () => {
      await labApply({ name: LAB, file: join(dir, 'istio.yaml'), readyTimeoutMs: READY_MS });
      const get = async (host: string, path: string): Promise<{ code: string; product?: string }> => {
        const r = await internet(['curl', '-sS', '-m', '10', '-w', '\\n%{http_code}', '-H', `Host: ${host}`, `http://${address}${path}`]);
        const lines = r.stdout.trimEnd().split('\n');
        const code = lines.pop()!;
        return code === '200' ? { code, product: (JSON.parse(lines.join('\n')) as { product: string }).product } : { code };
      };
      await waitFor(async () => (await get('istio.example.com', '/productpage')).code === '200', 'the VirtualService is served', 30_000);
      assert.deepEqual(await get('istio.example.com', '/productpage'), await get('bookinfo.example.com', '/productpage'));
      assert.deepEqual(await get('istio.example.com', '/headers'), await get('bookinfo.example.com', '/headers'));
      assert.equal((await get('istio.example.com', '/headers')).code, '404');
    });

    it('a Kubernetes Ingress (class weft) routes as the equivalent HTTPRoutes do', async () => {
      await labApply({ name: LAB, file: join(dir, 'ingress.yaml'), readyTimeoutMs: READY_MS });
      const get = async (host: string, path: string): Promise<{ code: string; body?: Record<string, unknown> }> => {
        const r = await internet(['curl', '-sS', '-m', '10', '-w', '\\n%{http_code}', '-H', `Host: ${host}`, `http://${address}${path}`]);
        const lines = r.stdout.trimEnd().split('\n');
        const code = lines.pop()!;
        return code === '200' ? { code, body: JSON.parse(lines.join('\n')) as Record<string, unknown> } : { code };
      };
      await waitFor(async () => (await get('ingress.example.com', '/productpage')).code === '200', 'the Ingress is served', 30_000);
      const viaIngress = await get('ingress.example.com', '/productpage');
      const viaRoute = await get('bookinfo.example.com', '/productpage');
      assert.equal(viaIngress.body!['product'], viaRoute.body!['product']);
      // Prefix: /headers and below go to httpbin, which sees the Ingress's host.
      const bin = await get('ingress.example.com', '/headers/x');
      assert.equal(bin.code, (await get('httpbin.example.com', '/headers/x')).code);
      const headers = await get('ingress.example.com', '/headers');
      assert.deepEqual((headers.body!['headers'] as Record<string, string[]>)['Host'], ['ingress.example.com']);
      // Exact: /productpage/x matches nothing, on either API.
      assert.equal((await get('ingress.example.com', '/productpage/x')).code, '404');
      assert.equal((await get('bookinfo.example.com', '/productpage/x')).code, '404');
      if (!mode.kubernetes) return;
      // The gateway writes the external address (--address, the lab chose it first) to the Ingress's and the Gateway's status.
      const kc = adminKubeConfig(LAB);
      await waitFor(async () => (await kc.makeApiClient(NetworkingV1Api).readNamespacedIngressStatus({ name: 'shop', namespace: NS })).status?.loadBalancer?.ingress?.[0]?.ip === address, `the Ingress's status names ${address}`, 30_000);
      const gw = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObjectStatus({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', namespace: NS, name: GW })) as { status?: { addresses?: unknown } };
      assert.deepEqual(gw.status?.addresses, [{ type: 'IPAddress', value: address }]);
    });

    it('allowedRoutes Same refuses the route from namespace outside (NotAllowedByListeners); its host is not served', async () => {
      assert.equal(await curl(['-w', '%{http_code}', '-H', 'Host: intruder.example.com', `http://${address}/productpage`]), '404');
      const rows = JSON.stringify((await dump()).routes);
      assert.match(rows, /outside\/intruder[^\]]*NotAllowedByListeners/, rows);
    });

    it('lab port-forward svc/public from this machine\'s loopback reaches productpage through the gateway', async () => {
      const f = await labPortForward({ name: LAB, namespace: NS, target: `svc/${GW}`, ports: { local: 0, remote: 80 } });
      try {
        const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: f.local.port, path: '/productpage', headers: { host: 'bookinfo.example.com' }, agent: false }, (r) => {
            let body = '';
            r.on('data', (c: Buffer) => (body += c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          }).on('error', reject);
        });
        assert.equal(res.status, 200, res.body);
        assert.equal((JSON.parse(res.body) as { product: string }).product, 'The Comedy of Errors');
      } finally {
        await f.close();
      }
    });

    it('the demo\'s path: bookinfo-gateway from examples/ingress, a kept port-forward a browser here opens', async () => {
      const exposed = await exposeBookinfo(LAB, READY_MS);
      assert.match(exposed.localUrl, /^http:\/\/127\.0\.0\.1:\d+\/productpage$/);
      const { stdout } = await run('curl', ['-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', exposed.localUrl]);
      assert.equal(stdout, '200');
      assert.ok((await labStatus(LAB)).forwards.some((f) => f.running && exposed.localUrl.startsWith(f.url)));
    });

    it('the gateway pod reports its requests with reporter="source" (its /metrics, and the lab\'s Prometheus)', async () => {
      const r = await labExec({ name: LAB, pod: gatewayPod().name, namespace: NS, command: ['curl', '-sS', '-m', '5', 'http://127.0.0.1:15020/metrics'], timeoutMs: 15_000 });
      assert.equal(r.code, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('destination_service_name="productpage"') && l.includes('response_code="200"'));
      assert.ok(line, r.stdout.slice(0, 3000));
      assert.match(line, /reporter="source"/);
      assert.match(line, /destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage"/);
      assert.ok(r.stdout.split('\n').some((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="301"')), 'the redirect is counted too');
      await waitFor(async () => (await queryLabPrometheus(LAB, `sum(istio_requests_total{reporter="source", job="weft-waypoints", destination_service_name="productpage"})`))[0]?.value, 'the lab\'s Prometheus scraped the gateway', 30_000);
    });

    it('deleting the Gateway takes its pod, its Service and its external address away', async () => {
      await labDelete({ name: LAB, file: join(dir, 'gateway.yaml') });
      await waitFor(async () => {
        const st = await labStatus(LAB);
        return !st.gateways.some((g) => g.name === GW) && !st.services.some((v) => v.name === GW) && !st.pods.some((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === GW);
      }, 'the gateway and its objects are gone', READY_MS);
      // Nothing answers on the address any more (the other gateway, bookinfo-gateway, has its own).
      await waitFor(async () => (await internet(['curl', '-sS', '-m', '3', '-o', '/dev/null', '-H', 'Host: bookinfo.example.com', `http://${address}/productpage`])).code !== 0, 'the external address no longer leads anywhere', 30_000);
      const other = (await labStatus(LAB)).gateways.find((g) => g.name === 'bookinfo-gateway')!;
      assert.notEqual(other.addresses[0], undefined);
      assert.notEqual(other.addresses[0], address);
    });
  });
}
