/**
 * `weft gateway` in-process on loopback: a Gateway of class `weft` with an HTTP listener and
 * HTTPS listeners of two hostnames with two certificates (chosen by SNI: curl --resolve, openssl
 * s_client), one with a missing Secret (only that listener down, then back once the Secret is),
 * HTTP->HTTPS redirect, host and path routing, allowedRoutes (Same refuses another namespace,
 * Selector admits a labelled one), request metrics with reporter="source", and HBONE with the
 * gateway's own identity to the meshed backends (test/waypoint's backend pods and CA).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { IngressGateway } from '../../agent/gateway/gateway.js';
import type { SecretObject } from '../../agent/gateway/config.js';
import { captureLogger } from '../helpers/logs.js';
import { waitFor } from '../helpers/wait.js';
import { FixedSource, H2_PORT, HTTP_PORT, NS, TCP_PORT, modelOf, startHarness, type Harness, type PodSpec, type ServiceSpec } from '../waypoint/harness.js';
import { id } from '../tunnel/fixtures.js';

const run = promisify(execFile);
const GW = 'gw';
const GW_ID = id(NS, GW);
const PODS: PodSpec[] = [
  { name: 'web-1', ip: '198.18.152.11', labels: { app: 'web' } },
  { name: 'api-1', ip: '198.18.152.12', labels: { app: 'api' } },
];
const SERVICES: ServiceSpec[] = [
  { name: 'web', vip: '198.18.153.10', selector: { app: 'web' }, waypoint: null },
  { name: 'api', vip: '198.18.153.11', selector: { app: 'api' }, waypoint: null },
];

function tlsSecret(name: string, dir: string, base: string): ManifestObject & SecretObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, type: 'kubernetes.io/tls', data: { 'tls.crt': readFileSync(join(dir, `${base}.crt`)).toString('base64'), 'tls.key': readFileSync(join(dir, `${base}.key`)).toString('base64') } };
}

const route = (ns: string, name: string, spec: object): ManifestObject => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: ns }, spec });

const gateway: ManifestObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name: GW, namespace: NS },
  spec: {
    gatewayClassName: 'weft',
    listeners: [
      { name: 'http', port: 80, protocol: 'HTTP' },
      { name: 'https-foo', port: 443, protocol: 'HTTPS', hostname: 'foo.example.com', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'foo-cert' }] } },
      { name: 'https-bar', port: 443, protocol: 'HTTPS', hostname: '*.bar.example.com', tls: { certificateRefs: [{ name: 'bar-cert' }] } },
      { name: 'https-bad', port: 443, protocol: 'HTTPS', hostname: 'bad.example.com', tls: { certificateRefs: [{ name: 'bad-cert' }] } },
      { name: 'http-team', port: 8080, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } } },
    ],
  },
};

const routes: ManifestObject[] = [
  // Plain HTTP for foo goes to HTTPS.
  route(NS, 'redirect', { parentRefs: [{ name: GW, sectionName: 'http' }], hostnames: ['foo.example.com'], rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }] }),
  // Path routing on foo.
  route(NS, 'foo', {
    parentRefs: [{ name: GW, sectionName: 'https-foo' }],
    rules: [
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'api', port: 80 }] },
      { backendRefs: [{ name: 'web', port: 80 }] },
    ],
  }),
  // Every listener of the Gateway; only those whose hostname intersects take it (http and https-bar).
  route(NS, 'bar', { parentRefs: [{ name: GW }], hostnames: ['x.bar.example.com'], rules: [{ backendRefs: [{ name: 'api', port: 80 }] }] }),
  // Another namespace: https-foo admits only its own (Same), http-team admits team=a.
  route('other', 'intruder', { parentRefs: [{ name: GW, namespace: NS, sectionName: 'https-foo' }], rules: [{ backendRefs: [{ name: 'web', namespace: NS, port: 80 }] }] }),
  route('other', 'team', { parentRefs: [{ name: GW, namespace: NS, sectionName: 'http-team' }], rules: [{ backendRefs: [{ name: 'web', namespace: NS, port: 80 }] }] }),
  { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'from-other', namespace: NS }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'other' }], to: [{ group: '', kind: 'Service' }] } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other', labels: { team: 'a' } } },
  // L7 policy on the Gateway itself: nobody from outside reaches /admin.
  { apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'no-admin', namespace: NS }, spec: { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: GW }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] } } as ManifestObject,
];

async function selfSigned(dir: string, base: string, cn: string): Promise<void> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`, '-keyout', join(dir, `${base}.key`), '-out', join(dir, `${base}.crt`)]);
}

/** openssl s_client's view of a handshake with this SNI: the peer certificate's subject, or the failure. */
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

/** A raw HTTP/1.1 request (any Host) on loopback: status line and headers. */
async function rawGet(port: number, host: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('weft gateway: HTTP and HTTPS listeners of a Gateway of class weft', () => {
  let h: Harness;
  let gw: IngressGateway;
  let source: FixedSource;
  let dir: string;
  const secrets = new Map<string, SecretObject>();
  let https: number;
  let plain: number;
  let team: number;
  let logs: object[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ingr-gw-'));
    await selfSigned(dir, 'foo', 'foo.example.com');
    await selfSigned(dir, 'bar', '*.bar.example.com');
    secrets.set(`${NS}/foo-cert`, tlsSecret('foo-cert', dir, 'foo'));
    secrets.set(`${NS}/bar-cert`, tlsSecret('bar-cert', dir, 'bar'));
    h = await startHarness({ pods: PODS, services: SERVICES });
    const byIp = new Map([...h.pods.values()].map((p) => [p.spec.ip, p]));
    source = new FixedSource(modelOf(PODS, SERVICES, 1, [gateway, ...routes]));
    const { logger, lines } = captureLogger('info');
    logs = lines;
    gw = new IngressGateway({
      name: GW,
      namespace: NS,
      source,
      secrets: (ns, name) => secrets.get(`${ns}/${name}`),
      caClient: new InProcessCaClient(h.ca, 'node-a'),
      logger,
      bindAddress: () => ({ host: '127.0.0.1', port: 0 }),
      createSocket: (host, port) => {
        const pod = byIp.get(host);
        const to = pod === undefined ? 1 : port === 15008 ? pod.ports.hbone : port === HTTP_PORT ? pod.ports.http : port === H2_PORT ? pod.ports.h2 : port === TCP_PORT ? pod.ports.tcp : 1;
        return net.connect({ host: '127.0.0.1', port: to || 1 });
      },
    });
    await gw.start();
    https = gw.address(443)!.port;
    plain = gw.address(80)!.port;
    team = gw.address(8080)!.port;
  });
  after(async () => {
    if (process.env.INGR_DEBUG) for (const l of logs) console.log(JSON.stringify(l));
    await gw?.stop();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('terminates TLS with the certificate the SNI names: two hostnames, two certificates (curl --resolve)', async () => {
    const curl = async (host: string, path: string, ca: string): Promise<string[]> => {
      const { stdout } = await run('curl', ['-sS', '--resolve', `${host}:${https}:127.0.0.1`, '--cacert', join(dir, ca), '-o', '/dev/null', '-w', '%{http_code} %header{x-pod}', `https://${host}:${https}${path}`]);
      return stdout.split(' ');
    };
    assert.deepEqual(await curl('foo.example.com', '/api/items', 'foo.crt'), ['200', 'api-1']);
    assert.deepEqual(await curl('foo.example.com', '/index.html', 'foo.crt'), ['200', 'web-1']);
    assert.deepEqual(await curl('x.bar.example.com', '/', 'bar.crt'), ['200', 'api-1']);
    // foo's certificate is not bar's: verifying bar against foo's fails (curl exit 60).
    await assert.rejects(curl('x.bar.example.com', '/', 'foo.crt'), /SSL certificate problem|exit code 60|Command failed/);
  });

  it('openssl s_client gets each hostname its own certificate', async () => {
    const foo = await sClient(https, 'foo.example.com');
    assert.ok(foo.ok, foo.out);
    assert.match(foo.out, /CN ?= ?foo\.example\.com/);
    const bar = await sClient(https, 'y.bar.example.com');
    assert.ok(bar.ok, bar.out);
    assert.match(bar.out, /CN ?= ?\*\.bar\.example\.com/);
  });

  it('a missing Secret takes down only its listener, with the reason; it serves once the Secret exists', async () => {
    const st = gw.status();
    const bad = st.listeners.find((l) => l.name === 'https-bad')!;
    const resolved = bad.conditions.find((c) => c.type === 'ResolvedRefs')!;
    assert.equal(resolved.status, 'False');
    assert.equal(resolved.reason, 'InvalidCertificateRef');
    assert.match(resolved.message, /Secret shop\/bad-cert not found/);
    assert.equal(bad.conditions.find((c) => c.type === 'Programmed')!.status, 'False');
    for (const name of ['http', 'https-foo', 'https-bar', 'http-team']) assert.equal(st.listeners.find((l) => l.name === name)!.conditions.find((c) => c.type === 'Programmed')!.status, 'True', name);
    assert.equal((await sClient(https, 'bad.example.com')).ok, false);
    assert.ok((await sClient(https, 'foo.example.com')).ok);
    // A Secret of the wrong type is refused the same way.
    secrets.set(`${NS}/bad-cert`, { type: 'Opaque', data: {} });
    source.set(modelOf(PODS, SERVICES, 2, [gateway, ...routes]));
    await gw.settled();
    assert.match(gw.status().listeners.find((l) => l.name === 'https-bad')!.conditions.find((c) => c.type === 'ResolvedRefs')!.message, /type Opaque, not kubernetes\.io\/tls/);
    // The Secret fixed: the listener serves (bad.example.com with foo's key pair would not verify, but it handshakes).
    await selfSigned(dir, 'bad', 'bad.example.com');
    secrets.set(`${NS}/bad-cert`, tlsSecret('bad-cert', dir, 'bad'));
    source.set(modelOf(PODS, SERVICES, 3, [gateway, ...routes]));
    await gw.settled();
    const fixed = await sClient(https, 'bad.example.com');
    assert.ok(fixed.ok, fixed.out);
    assert.match(fixed.out, /CN ?= ?bad\.example\.com/);
  });

  it('redirects plain HTTP to HTTPS (RequestRedirect scheme https, 301)', async () => {
    const r = await rawGet(plain, 'foo.example.com', '/cart?id=7');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://foo.example.com/cart?id=7');
  });

  it('routes by host on one port: each Host its route, an unknown Host 404', async () => {
    const bar = await rawGet(plain, 'x.bar.example.com', '/');
    assert.equal(bar.status, 200);
    assert.equal(bar.headers['x-pod'], 'api-1');
    assert.equal((await rawGet(plain, 'nobody.example.com', '/')).status, 404);
  });

  it('enforces an L7 AuthorizationPolicy with targetRefs to the Gateway (403 RBAC: access denied)', async () => {
    const denied = await rawGet(plain, 'x.bar.example.com', '/admin/users');
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    assert.equal((await rawGet(plain, 'x.bar.example.com', '/adm')).status, 200);
  });

  it('a TLS connection of one hostname does not serve another (421)', async () => {
    const { stdout } = await run('curl', ['-sS', '-k', '--resolve', `foo.example.com:${https}:127.0.0.1`, '-H', 'host: x.bar.example.com', '-o', '/dev/null', '-w', '%{http_code}', `https://foo.example.com:${https}/`]);
    assert.equal(stdout, '421');
  });

  it('allowedRoutes: Same refuses a route of another namespace, Selector admits a labelled namespace', async () => {
    const statuses = gw.routeStatuses();
    const intruder = statuses.find((r) => r.route === 'HTTPRoute other/intruder')!;
    const accepted = intruder.parents[0]!.conditions.find((c) => c.type === 'Accepted')!;
    assert.equal(accepted.status, 'False');
    assert.equal(accepted.reason, 'NotAllowedByListeners');
    const teamRoute = statuses.find((r) => r.route === 'HTTPRoute other/team')!;
    assert.equal(teamRoute.parents[0]!.conditions.find((c) => c.type === 'Accepted')!.status, 'True');
    assert.equal(teamRoute.parents[0]!.conditions.find((c) => c.type === 'ResolvedRefs')!.status, 'True');
    const r = await rawGet(team, 'anything', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pod'], 'web-1');
    // The intruder's rule is nowhere: foo's / still goes to foo's own backend.
    const bar = statuses.find((x) => x.route === 'HTTPRoute shop/bar')!;
    assert.match(bar.parents[0]!.conditions.find((c) => c.type === 'Accepted')!.message, /http, https-bar/);
    assert.equal(gw.status().listeners.find((l) => l.name === 'https-foo')!.attachedRoutes, 1);
  });

  it('reaches the backends over HBONE with its own identity and reports reporter="source" metrics', async () => {
    await waitFor(() => h.connects.some((c) => c.peer === GW_ID), 'a CONNECT from the gateway');
    assert.ok(h.connects.filter((c) => c.peer === GW_ID).every((c) => c.forwarded === 'for="127.0.0.1"'));
    const text = await gw.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('destination_service="api.shop.svc.cluster.local"') && l.includes('response_code="200"'));
    assert.ok(line, text);
    assert.match(line, /reporter="source"/);
    assert.match(line, /destination_principal="spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api-1"/);
    assert.ok(text.split('\n').some((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="301"')));
  });
});
