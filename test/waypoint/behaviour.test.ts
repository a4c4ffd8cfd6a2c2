/**
 * What the waypoint does besides proxying: refuses CONNECTs for services it does not serve,
 * relays non-HTTP streams as L4 (also server-first ones), answers denials, redirects and
 * replies itself, applies a plan's header changes, timeouts and mirrors, and reports failures
 * with Envoy's flags (UH, UF, UT, DC) in the access log and the request metrics.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import type { RequestPlan, RequestView, RouteRule, RouteTable } from '../../agent/l7/types.js';
import { directTable } from '../../agent/waypoint/routes.js';
import { waitFor } from '../helpers/wait.js';
import { CLIENT_ID, startHarness, type Harness } from './harness.js';

const WEB = '198.18.121.30';
const OTHER = '198.18.121.31';
const EMPTY = '198.18.121.32';
const DEAD = '198.18.121.33';
const SHADOW = '198.18.121.34';
const PLAIN = '198.18.121.35';
const UNBOUND = '198.18.121.36';

function rule(name: string): RouteRule {
  return { name, matches: [], filters: [], backends: [], timeouts: { requestMs: undefined, backendRequestMs: undefined } };
}

/** A table that does, per path, what a compiled route would (agent/l7 makes these plans). */
const table: RouteTable = {
  plan(service: string, port: number, req: RequestView, random: number): RequestPlan {
    const forward = directTable.plan(service, port, req, random) as Extract<RequestPlan, { kind: 'forward' }>;
    if (req.path === '/redirect') return { kind: 'redirect', rule: rule('HTTPRoute shop/r rule 0'), statusCode: 302, location: 'http://elsewhere.example/x' };
    if (req.path === '/nothing') return { kind: 'reply', rule: rule('HTTPRoute shop/r rule 1'), statusCode: 500, responseFlag: 'NR', reason: 'no valid backend' };
    if (req.path === '/slow') return { ...forward, rule: rule('HTTPRoute shop/r rule 2'), timeouts: { requestMs: 150, backendRequestMs: undefined } };
    if (req.path === '/headers') return { ...forward, rule: rule('HTTPRoute shop/r rule 3'), requestHeaders: { set: [['x-set', 'yes']], add: [], remove: ['x-drop'] }, responseHeaders: { set: [['x-resp', 'added']], add: [], remove: ['x-pod'] } };
    if (req.path === '/mirrored') return { ...forward, rule: rule('HTTPRoute shop/r rule 4'), mirrors: [{ backend: { service: 'shop/shadow', port: 80 }, percent: 100 }] };
    if (req.path === '/to-empty') return { ...forward, backend: { service: 'shop/empty', port: 80 } };
    if (req.path === '/to-dead') return { ...forward, backend: { service: 'shop/dead', port: 80 } };
    if (req.path === '/to-plain') return { ...forward, backend: { service: 'shop/plain', port: 80 } };
    return forward;
  },
};

function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('waypoint behaviour', () => {
  let h: Harness;
  let web: number;
  let denyNext = false;

  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'web-1', ip: '198.18.120.31', labels: { app: 'web' } },
        { name: 'dead-1', ip: '198.18.120.32', labels: { app: 'dead' } },
        { name: 'shadow-1', ip: '198.18.120.33', labels: { app: 'shadow' } },
        { name: 'plain-1', ip: '198.18.120.34', labels: { app: 'plain' }, unmeshed: true },
      ],
      services: [
        { name: 'web', vip: WEB, selector: { app: 'web' } },
        { name: 'other', vip: OTHER, selector: { app: 'web' }, waypoint: 'other-wp' },
        { name: 'unbound', vip: UNBOUND, selector: { app: 'web' }, waypoint: null },
        { name: 'empty', vip: EMPTY, selector: { app: 'nobody' } },
        { name: 'dead', vip: DEAD, selector: { app: 'dead' } },
        { name: 'shadow', vip: SHADOW, selector: { app: 'shadow' } },
        { name: 'plain', vip: PLAIN, selector: { app: 'plain' } },
      ],
      deadAgents: ['dead-1'],
      app: (_pod, req, _res) => {
        // A pod that closes a kept-alive connection as the next request arrives on it.
        const sock = req.socket as typeof req.socket & { served?: number };
        sock.served = (sock.served ?? 0) + 1;
        if (req.url === '/flaky' && sock.served > 1) {
          req.socket.destroy();
          return true;
        }
        return req.url === '/slow' || req.url === '/hang';
      },
      waypoint: {
        routes: () => table,
        sniffTimeoutMs: 200,
        authorizer: {
          authorize: (input) => (denyNext && input.request.path === '/secret' ? { allow: false, policy: 'shop/deny-secret', reason: 'DENY policy shop/deny-secret matched' } : { allow: true }),
        },
      },
    });
    web = await h.tunnelPort(WEB, 80);
  });
  after(() => h.close());

  it('refuses a CONNECT for a service bound to another waypoint, to none, or to no service, with the reason logged', async () => {
    for (const [authority, status] of [[`${OTHER}:80`, 421], [`${UNBOUND}:80`, 421], ['198.18.120.31:8080', 400], [`${WEB}:81`, 400]] as const) {
      await assert.rejects(h.connect(authority), (err: unknown) => isWeftError(err, 'WEFT_ERR_HBONE_REFUSED') && err.message.includes(String(status)), authority);
      assert.ok(h.logs.some((l) => l.code === 'WEFT_ERR_WAYPOINT_NOT_BOUND' && l.authority === authority && l.status === status), `logged refusal of ${authority}`);
    }
    assert.equal(h.connects.length === 0 || h.connects.every((c) => !c.authority.startsWith('198.18.121')), true, 'nothing was proxied for them');
  });

  it('relays a stream that is not HTTP as L4 to a pod of the service', async () => {
    const s = await h.connect(`${WEB}:7000`);
    let got = '';
    s.on('data', (c: Buffer) => (got += c));
    s.write('\x00\x01binary hello');
    await waitFor(() => got.includes('binary hello'), 'echo through the L4 relay', 5000);
    assert.ok(got.startsWith('web-1:'));
    s.end();
    await waitFor(() => h.logs.some((l) => l.msg === 'connection' && l.protocol === 'tcp' && l.flags === '-'), 'L4 access-log line', 5000);
    assert.ok(h.connects.some((c) => c.authority === '198.18.120.31:7000'));
  });

  it('relays a server-first protocol as L4 once the client stays silent', async () => {
    const s = await h.connect(`${WEB}:7000`);
    let got = '';
    s.on('data', (c: Buffer) => (got += c));
    await waitFor(() => got === 'web-1:', 'the server speaks first', 5000);
    s.destroy();
  });

  it('answers 403 RBAC: access denied when the authorization hook denies, and logs the policy', async () => {
    denyNext = true;
    const r = await get(web, '/secret');
    denyNext = false;
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
    const line = h.logs.find((l) => l.msg === 'request' && l.path === '/secret')!;
    assert.equal(line.policy, 'shop/deny-secret');
    assert.equal(line.upstream, undefined, 'never sent upstream');
    assert.ok(h.logs.some((l) => l.code === 'WEFT_ERR_POLICY_DENIED' && l.policy === 'shop/deny-secret'));
  });

  it('answers redirects and replies of the plan itself', async () => {
    const r = await get(web, '/redirect');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://elsewhere.example/x');
    const n = await get(web, '/nothing');
    assert.equal(n.status, 500);
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/nothing' && l.flags === 'NR' && l.rule === 'HTTPRoute shop/r rule 1'), 'NR logged with the rule');
  });

  it("applies the plan's request and response header changes", async () => {
    const r = await get(web, '/headers', { 'x-drop': 'gone', 'x-keep': 'kept' });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(body.headers['x-set'], 'yes');
    assert.equal(body.headers['x-drop'], undefined);
    assert.equal(body.headers['x-keep'], 'kept');
    assert.equal(r.headers['x-resp'], 'added');
    assert.equal(r.headers['x-pod'], undefined);
  });

  it('sends a copy to the mirror backend with a -shadow authority and answers from the real one', async () => {
    const r = await get(web, '/mirrored', { host: 'web.shop:80' });
    assert.equal(JSON.parse(r.body).pod, 'web-1');
    const shadow = h.pods.get('shadow-1')!;
    await waitFor(() => shadow.requests.some((q) => q.url === '/mirrored'), 'the mirror got the request');
    assert.equal(shadow.requests.find((q) => q.url === '/mirrored')!.headers.host, 'web.shop-shadow:80');
  });

  it('sends a request without a body again on a new connection when the kept-alive one was closed under it', async () => {
    assert.equal((await get(web, '/warm')).status, 200);
    const r = await get(web, '/flaky');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).url, '/flaky');
  });

  it('answers 503 UH when the backend has no ready endpoint', async () => {
    const r = await get(web, '/to-empty');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/to-empty' && l.flags === 'UH'), 'UH logged');
  });

  it('answers 503 UF when the chosen pod cannot be reached, with the reason logged', async () => {
    const r = await get(web, '/to-dead');
    assert.equal(r.status, 503);
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/to-dead' && l.flags === 'UF'), 'UF logged');
    assert.ok(h.logs.some((l) => l.code === 'WEFT_ERR_WAYPOINT_UPSTREAM' && String(l.upstream).startsWith('198.18.120.32')));
  });

  it('reaches a pod outside the mesh over plain TCP', async () => {
    const r = await get(web, '/to-plain');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).pod, 'plain-1');
  });

  it('answers 504 UT when the route timeout passes', async () => {
    const r = await get(web, '/slow');
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/slow' && l.flags === 'UT'), 'UT logged');
  });

  it('flags DC when the client goes away before the answer', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: web });
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write('GET /hang HTTP/1.1\r\nhost: web\r\n\r\n');
    const pod = h.pods.get('web-1')!;
    await waitFor(() => pod.requests.some((q) => q.url === '/hang'), 'the request reached the pod');
    sock.destroy();
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/hang' && String(l.flags).includes('DC')), 'DC logged');
  });

  it('counts requests in istio_requests_total with reporter="waypoint", the peers and the flags', async () => {
    const text = await h.waypoint.registry.metrics();
    const series = (name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`));
    const has = (name: string, labels: Record<string, string>): boolean => series(name).some((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    const ok = { reporter: 'waypoint', source_workload: 'client', source_workload_namespace: 'shop', source_principal: CLIENT_ID, destination_workload: 'web-1', destination_service: 'web.shop.svc.cluster.local', destination_service_name: 'web', destination_principal: 'spiffe://cluster.local/ns/shop/sa/web-1', request_protocol: 'http', response_code: '200', response_flags: '-', connection_security_policy: 'mutual_tls' };
    assert.ok(has('istio_requests_total', ok), `a 200 series with ${JSON.stringify(ok)} in\n${series('istio_requests_total').join('\n')}`);
    assert.ok(has('istio_request_duration_milliseconds_bucket', { reporter: 'waypoint', response_code: '200' }));
    assert.ok(has('istio_requests_total', { response_code: '503', response_flags: 'UH', destination_service_name: 'empty' }));
    assert.ok(has('istio_requests_total', { response_code: '503', response_flags: 'UF', destination_service_name: 'dead' }));
    assert.ok(has('istio_requests_total', { response_code: '504', response_flags: 'UT' }));
    assert.ok(has('istio_requests_total', { response_code: '403', source_principal: CLIENT_ID }));
    assert.ok(has('istio_tcp_connections_opened_total', { reporter: 'waypoint', destination_service_name: 'web' }));
  });
});
