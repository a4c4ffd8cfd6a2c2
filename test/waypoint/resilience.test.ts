/**
 * The waypoint executes a rule's resilience (issue 12 point 1) over HTTP/1, in process against
 * fake backends: retries (counted at the backends) with Envoy's retry_on, previous hosts, URX,
 * per-try timeouts, a body past the buffer limit never retried; fault delay and abort; mirror
 * percentages; connection-pool circuit breaking (503 UO, Istio's httpbin task); outlier
 * ejection on an injected clock; local rate limits (429 RL). Flags checked in the access log and
 * in istio_requests_total.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WAYPOINT_RETRY_BUFFER_BYTES } from '../../agent/config.js';
import type { BackendPolicy, BackendTarget, RequestPlan, RequestView, RouteRule, RouteTable } from '../../agent/l7/types.js';
import { directTable } from '../../agent/waypoint/routes.js';
import { waitFor } from '../helpers/wait.js';
import { startHarness, type BackendPod, type Harness } from './harness.js';

const API = '198.18.121.120';
const FLAKY = '198.18.121.121';
const POOL = '198.18.121.122';
const OD = '198.18.121.123';
const SHADOW = '198.18.121.124';
const PANIC = '198.18.121.125';

type Forward = Extract<RequestPlan, { kind: 'forward' }>;

function rule(name: string, extra: Partial<RouteRule> = {}): RouteRule {
  return { name, matches: [], filters: [], backends: [], timeouts: { requestMs: undefined, backendRequestMs: undefined }, ...extra };
}

// Built once, as a compiled table's are: the engine keys state on them.
const RETRY_5XX = rule('VirtualService shop/api rule 0', { retry: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ['5xx'], backoffBaseMs: 1 } });
const RETRY_ONE = rule('VirtualService shop/api rule 1', { retry: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ['5xx'], backoffBaseMs: 1 } });
const RETRY_GATEWAY = rule('VirtualService shop/api rule 2', { retry: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ['gateway-error'], backoffBaseMs: 1 } });
const RETRY_4XX_CODES = rule('HTTPRoute shop/api rule 3', { retry: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ['retriable-4xx'], statusCodes: [418], backoffBaseMs: 1 } });
const RETRY_CONNECT = rule('VirtualService shop/flaky rule 0', { retry: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ['connect-failure'], backoffBaseMs: 1 } });
const PER_TRY = rule('VirtualService shop/api rule 4', { retry: { attempts: 1, perTryTimeoutMs: 150, retryOn: ['5xx'], backoffBaseMs: 1 } });
const ABORT = rule('VirtualService shop/api rule 5', { fault: { abort: { statusCode: 503, percent: 100 } } });
const NO_ABORT = rule('VirtualService shop/api rule 6', { fault: { abort: { statusCode: 503, percent: 0 }, delay: { ms: 5000, percent: 0 } } });
const DELAY = rule('VirtualService shop/api rule 7', { fault: { delay: { ms: 30, percent: 100 } } });
const LIMITED = rule('HTTPRoute shop/api rule 8', { rateLimit: { policy: 'shop/api-limit', maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 1000 } });
const PLAIN = rule('HTTPRoute shop/api rule 9');
// A LocalRateLimitPolicy targeting the Service: every rule on it carries the same bucket.
const SERVICE_LIMIT = { policy: 'shop/svc-limit', maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000, bucket: 'LocalRateLimitPolicy shop/svc-limit Service shop/api' };
const SHARED_A = rule('HTTPRoute shop/api rule 10', { rateLimit: SERVICE_LIMIT });
const SHARED_B = rule('HTTPRoute shop/api rule 11', { rateLimit: SERVICE_LIMIT });

const HTTPBIN_POOL: BackendPolicy = { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } };
const MAX_REQUESTS: BackendPolicy = { connectionPool: { http2MaxRequests: 1 } };
const PER_CONNECTION: BackendPolicy = { connectionPool: { maxRequestsPerConnection: 1 } };
const OUTLIER: BackendPolicy = { outlierDetection: { consecutive5xxErrors: 2, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100 } };
const OUTLIER_PANIC: BackendPolicy = { outlierDetection: { consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100, minHealthPercent: 60 } };

const to = (service: string, policy?: BackendPolicy): BackendTarget => ({ service: `shop/${service}`, port: 80, policy });
const BACKENDS = { pool: to('pool', HTTPBIN_POOL), maxRequests: to('pool', MAX_REQUESTS), perConnection: to('pool', PER_CONNECTION), od: to('od', OUTLIER), panic: to('panic', OUTLIER_PANIC) };

const table: RouteTable = {
  plan(service: string, port: number, req: RequestView, random: number): RequestPlan {
    const f = directTable.plan(service, port, req, random) as Forward;
    const p = req.path;
    const top = p.split('/')[1] ?? '';
    const with_ = (r: RouteRule, backend: BackendTarget = f.backend): Forward => ({ ...f, rule: r, backend });
    if (top === 'retry') return with_(RETRY_5XX);
    if (top === 'retry-one') return with_(RETRY_ONE);
    if (top === 'retry-gateway') return with_(RETRY_GATEWAY);
    if (top === 'retry-4xx') return with_(RETRY_4XX_CODES);
    if (top === 'retry-connect') return with_(RETRY_CONNECT, to('flaky'));
    if (top === 'per-try') return with_(PER_TRY);
    if (top === 'abort') return with_(ABORT);
    if (top === 'no-abort') return with_(NO_ABORT);
    if (top === 'delay') return with_(DELAY);
    if (top === 'limited') return with_(LIMITED);
    if (top === 'shared-a') return with_(SHARED_A);
    if (top === 'shared-b') return with_(SHARED_B);
    if (top === 'pool') return with_(PLAIN, BACKENDS.pool);
    if (top === 'max-requests') return with_(PLAIN, BACKENDS.maxRequests);
    if (top === 'per-connection') return with_(PLAIN, BACKENDS.perConnection);
    if (top === 'od') return with_(PLAIN, BACKENDS.od);
    if (top === 'panic') return with_(PLAIN, BACKENDS.panic);
    if (top === 'mirror-none') return { ...f, mirrors: [{ backend: to('shadow'), percent: 0 }] };
    if (top === 'mirror-all') return { ...f, mirrors: [{ backend: to('shadow'), percent: 100 }] };
    return f;
  },
};

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: 'api.shop', ...opts.headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The path's first-segment app behaviours, answered by every pod (per x-id where it says "once"). */
const seenIds = new Map<string, number>();
const held: http.ServerResponse[] = [];

function app(pod: BackendPod, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  const id = String(req.headers['x-id'] ?? '');
  const n = (seenIds.get(id) ?? 0) + 1;
  if (id !== '') seenIds.set(id, n);
  const answer = (status: number): true => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'x-pod': pod.spec.name }).end(`${pod.spec.name}:${status}`));
    return true;
  };
  if (url.endsWith('/fail')) return answer(503);
  if (url.endsWith('/500')) return answer(500);
  if (url.endsWith('/409')) return answer(409);
  if (url.endsWith('/418')) return answer(418);
  if (url.endsWith('/fail-once') && n === 1) return answer(503);
  if (url.endsWith('/hang-once') && n === 1) return true;
  if (url.endsWith('/hang')) return true;
  if (url.endsWith('/hold')) {
    held.push(res);
    return true;
  }
  if (url.startsWith('/od') || url.startsWith('/panic')) return pod.spec.name.startsWith('bad') ? answer(503) : answer(200);
  return false;
}

function requestsTo(h: Harness, pod: string, pathEnd: string, id?: string): number {
  return h.pods.get(pod)!.requests.filter((q) => q.url.endsWith(pathEnd) && (id === undefined || q.headers['x-id'] === id)).length;
}

async function logLine(h: Harness, path: string): Promise<Record<string, unknown>> {
  return waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === path), `the access-log line of ${path}`);
}

async function hasSeries(h: Harness, labels: Record<string, string>): Promise<boolean> {
  const text = await h.waypoint.registry.metrics();
  return text.split('\n').some((l) => l.startsWith('istio_requests_total{') && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
}

describe('waypoint resilience over HTTP/1', () => {
  let h: Harness;
  let api: number;
  let now = 1_000_000;

  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'api-1', ip: '198.18.120.121', labels: { app: 'api' } },
        { name: 'api-2', ip: '198.18.120.122', labels: { app: 'api' } },
        { name: 'dead-1', ip: '198.18.120.123', labels: { app: 'flaky' } },
        { name: 'live-1', ip: '198.18.120.124', labels: { app: 'flaky' } },
        { name: 'pool-1', ip: '198.18.120.125', labels: { app: 'pool' } },
        { name: 'bad-1', ip: '198.18.120.126', labels: { app: 'od' } },
        { name: 'good-1', ip: '198.18.120.127', labels: { app: 'od' } },
        { name: 'shadow-1', ip: '198.18.120.128', labels: { app: 'shadow' } },
        { name: 'bad-2', ip: '198.18.120.129', labels: { app: 'panic' } },
        { name: 'good-2', ip: '198.18.120.130', labels: { app: 'panic' } },
      ],
      services: [
        { name: 'api', vip: API, selector: { app: 'api' } },
        { name: 'flaky', vip: FLAKY, selector: { app: 'flaky' } },
        { name: 'pool', vip: POOL, selector: { app: 'pool' } },
        { name: 'od', vip: OD, selector: { app: 'od' } },
        { name: 'shadow', vip: SHADOW, selector: { app: 'shadow' } },
        { name: 'panic', vip: PANIC, selector: { app: 'panic' } },
      ],
      deadAgents: ['dead-1'],
      app,
      waypoint: { routes: () => table, clock: () => now },
    });
    api = await h.tunnelPort(API, 80);
  });
  after(async () => {
    for (const r of held.splice(0)) r.destroy();
    await h.close();
  });

  it('retries 5xx up to the attempts, each retry on another endpoint, then answers with URX', async () => {
    for (let i = 0; i < 6; i++) {
      const id = `r5-${i}`;
      const r = await request(api, '/retry/fail', { headers: { 'x-id': id } });
      assert.equal(r.status, 503);
      const a = requestsTo(h, 'api-1', '/retry/fail', id);
      const b = requestsTo(h, 'api-2', '/retry/fail', id);
      assert.equal(a + b, 3, 'the first attempt and 2 retries');
      assert.ok(a >= 1 && b >= 1, `a retry goes to the other endpoint (api-1 ${a}, api-2 ${b})`);
    }
    const line = await logLine(h, '/retry/fail');
    assert.equal(line.flags, 'URX');
    assert.match(String(line.reason), /^WEFT_ERR_WAYPOINT_RETRIES_EXHAUSTED/);
    assert.ok(await hasSeries(h, { response_code: '503', response_flags: 'URX', destination_service_name: 'api' }));
  });

  it('a retry that succeeds answers 200 without a flag; a request body is sent again in full', async () => {
    const r = await request(api, '/retry-one/fail-once', { headers: { 'x-id': 'once-1' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(requestsTo(h, 'api-1', '/fail-once', 'once-1') + requestsTo(h, 'api-2', '/fail-once', 'once-1'), 2);
    const body = Buffer.alloc(100_000, 7);
    const p = await request(api, '/retry-one/fail-once', { method: 'POST', headers: { 'x-id': 'once-2', 'content-type': 'application/octet-stream' }, body });
    assert.equal(p.status, 200, p.body);
    assert.equal(JSON.parse(p.body).bodyBytes, body.length, 'the retried attempt got the whole body');
    const line = await waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === '/retry-one/fail-once' && l.method === 'POST'), 'POST logged');
    assert.equal(line.flags, '-');
    assert.equal(line.requestBytes, body.length);
  });

  it('never retries a request whose body streamed past the buffer limit', async () => {
    const body = Buffer.alloc(WAYPOINT_RETRY_BUFFER_BYTES + 64 * 1024, 1);
    const r = await request(api, '/retry-one/fail', { method: 'POST', headers: { 'x-id': 'big-1', 'content-type': 'application/octet-stream' }, body });
    assert.equal(r.status, 503);
    assert.equal(requestsTo(h, 'api-1', '/retry-one/fail', 'big-1') + requestsTo(h, 'api-2', '/retry-one/fail', 'big-1'), 1, 'one attempt only');
  });

  it('gateway-error retries 503 but not 500; retriable-4xx retries 409, listed codes 418', async () => {
    await request(api, '/retry-gateway/500', { headers: { 'x-id': 'g500' } });
    assert.equal(requestsTo(h, 'api-1', '/500', 'g500') + requestsTo(h, 'api-2', '/500', 'g500'), 1);
    await request(api, '/retry-gateway/fail', { headers: { 'x-id': 'g503' } });
    assert.equal(requestsTo(h, 'api-1', '/fail', 'g503') + requestsTo(h, 'api-2', '/fail', 'g503'), 3);
    await request(api, '/retry-4xx/409', { headers: { 'x-id': 'c409' } });
    assert.equal(requestsTo(h, 'api-1', '/409', 'c409') + requestsTo(h, 'api-2', '/409', 'c409'), 2);
    await request(api, '/retry-4xx/418', { headers: { 'x-id': 'c418' } });
    assert.equal(requestsTo(h, 'api-1', '/418', 'c418') + requestsTo(h, 'api-2', '/418', 'c418'), 2);
    await request(api, '/retry-4xx/fail', { headers: { 'x-id': 'c503' } });
    assert.equal(requestsTo(h, 'api-1', '/fail', 'c503') + requestsTo(h, 'api-2', '/fail', 'c503'), 1, '503 is not in retriable-4xx');
  });

  it('connect-failure: a request to an unreachable endpoint is retried on the reachable one', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await request(api, '/retry-connect/x');
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).pod, 'live-1');
    }
    assert.ok(h.logs.some((l) => l.msg === 'request' && l.path === '/retry-connect/x' && l.attempts === 2), 'some requests were tried at the dead endpoint first');
  });

  it('a per-try timeout is retried; when every try times out: 504 UT with URX', async () => {
    const r = await request(api, '/per-try/hang-once', { headers: { 'x-id': 'pt-1' } });
    assert.equal(r.status, 200, r.body);
    const all = await request(api, '/per-try/hang', { headers: { 'x-id': 'pt-2' } });
    assert.equal(all.status, 504);
    assert.equal(all.body, 'upstream request timeout');
    assert.equal(requestsTo(h, 'api-1', '/per-try/hang', 'pt-2') + requestsTo(h, 'api-2', '/per-try/hang', 'pt-2'), 2);
    const line = await logLine(h, '/per-try/hang');
    assert.equal(line.flags, 'URX,UT');
    assert.ok(await hasSeries(h, { response_code: '504', response_flags: 'URX,UT' }));
  });

  it('fault abort answers the status with FI, never reaching the backend; percent 0 never fires', async () => {
    const r = await request(api, '/abort/x', { headers: { 'x-id': 'ab-1' } });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'fault filter abort');
    assert.equal(requestsTo(h, 'api-1', '/abort/x') + requestsTo(h, 'api-2', '/abort/x'), 0);
    const line = await logLine(h, '/abort/x');
    assert.equal(line.flags, 'FI');
    assert.match(String(line.reason), /^WEFT_ERR_WAYPOINT_FAULT_INJECTED/);
    assert.ok(await hasSeries(h, { response_code: '503', response_flags: 'FI' }));
    for (let i = 0; i < 5; i++) assert.equal((await request(api, '/no-abort/x')).status, 200);
    assert.ok(h.logs.filter((l) => l.msg === 'request' && l.path === '/no-abort/x').every((l) => l.flags === '-'));
  });

  it('fault delay holds the request, then forwards it, flagged DI', async () => {
    const r = await request(api, '/delay/x');
    assert.equal(r.status, 200);
    assert.equal((await logLine(h, '/delay/x')).flags, 'DI');
    assert.ok(await hasSeries(h, { response_code: '200', response_flags: 'DI' }));
  });

  it('a mirror with percent 0 is never sent, with 100 always, with the -shadow host', async () => {
    for (let i = 0; i < 5; i++) await request(api, '/mirror-none/x');
    await request(api, '/mirror-all/x', { headers: { host: 'api.shop:80' } });
    const shadow = h.pods.get('shadow-1')!;
    await waitFor(() => shadow.requests.some((q) => q.url === '/mirror-all/x'), 'the mirror got its copy');
    assert.equal(shadow.requests.find((q) => q.url === '/mirror-all/x')!.headers.host, 'api.shop-shadow:80');
    assert.equal(shadow.requests.filter((q) => q.url === '/mirror-none/x').length, 0);
  });

  it("circuit breaking as Istio's httpbin task: maxConnections 1, http1MaxPendingRequests 1: the third concurrent request gets 503 UO at once", async () => {
    const pool = h.pods.get('pool-1')!;
    const before = pool.requests.filter((q) => q.url === '/pool/hold').length;
    const replies = [0, 1, 2].map(() => request(api, '/pool/hold'));
    const overflowed = await Promise.race(replies.map((p) => p.then((r) => r)));
    assert.equal(overflowed.status, 503, 'the first answer is the overflow, while the others wait');
    assert.match(overflowed.body, /overflow/);
    await waitFor(() => held.length === 1, 'one request reached the pod');
    assert.equal(pool.requests.filter((q) => q.url === '/pool/hold').length - before, 1, 'the pending one waits for the connection');
    held.shift()!.end('first');
    await waitFor(() => held.length === 1, 'the pending request got the connection');
    held.shift()!.end('second');
    const statuses = (await Promise.all(replies)).map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 503]);
    const line = await waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === '/pool/hold' && l.flags === 'UO'), 'UO logged');
    assert.match(String(line.reason), /^WEFT_ERR_WAYPOINT_OVERFLOW/);
    assert.ok(await hasSeries(h, { response_code: '503', response_flags: 'UO', destination_service_name: 'pool' }));
  });

  it('http2MaxRequests caps active requests (HTTP/1 too)', async () => {
    const first = request(api, '/max-requests/hold');
    await waitFor(() => held.length === 1, 'the first request is in flight');
    const second = await request(api, '/max-requests/hold');
    assert.equal(second.status, 503);
    held.shift()!.end('done');
    assert.equal((await first).status, 200);
  });

  it('maxRequestsPerConnection 1: every request gets a new upstream connection', async () => {
    const pool = h.pods.get('pool-1')!;
    await request(api, '/per-connection/warm');
    const before = pool.connects.length;
    for (let i = 0; i < 3; i++) assert.equal((await request(api, '/per-connection/x')).status, 200);
    assert.equal(pool.connects.length - before, 3);
  });

  it('outlier detection ejects an endpoint after consecutive 5xx, for the base ejection time on the clock', async () => {
    const bad = (): number => requestsTo(h, 'bad-1', '/od/x');
    for (let i = 0; i < 60 && bad() < 2; i++) await request(api, '/od/x');
    assert.equal(bad(), 2, 'the bad endpoint answered 2 (the threshold)');
    await waitFor(() => h.logs.some((l) => l.code === 'WEFT_ERR_WAYPOINT_ENDPOINT_EJECTED' && l.backend === 'shop/od'), 'ejection logged');
    for (let i = 0; i < 10; i++) assert.equal((await request(api, '/od/x')).status, 200, 'only the good endpoint answers');
    assert.equal(bad(), 2);
    now += 31_000;
    for (let i = 0; i < 60 && bad() < 3; i++) await request(api, '/od/x');
    assert.equal(bad(), 3, 'back after the ejection time');
  });

  it('below minHealthPercent the ejection is ignored (panic)', async () => {
    const bad = (): number => requestsTo(h, 'bad-2', '/panic/x');
    for (let i = 0; i < 60 && bad() < 1; i++) await request(api, '/panic/x');
    assert.ok(h.logs.some((l) => l.code === 'WEFT_ERR_WAYPOINT_ENDPOINT_EJECTED' && l.backend === 'shop/panic'));
    for (let i = 0; i < 60 && bad() < 2; i++) await request(api, '/panic/x');
    assert.equal(bad(), 2, 'the ejected endpoint still gets requests: 1 of 2 healthy is under 60 %');
  });

  it('a local rate limit answers 429 local_rate_limited with RL and x-ratelimit headers; the bucket refills on the clock', async () => {
    assert.equal((await request(api, '/limited/x')).status, 200);
    const ok = await request(api, '/limited/x');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-ratelimit-limit'], '2');
    const no = await request(api, '/limited/x');
    assert.equal(no.status, 429);
    assert.equal(no.body, 'local_rate_limited');
    assert.equal(no.headers['x-ratelimit-remaining'], '0');
    const line = await waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === '/limited/x' && l.flags === 'RL'), 'RL logged');
    assert.match(String(line.reason), /^WEFT_ERR_WAYPOINT_RATE_LIMITED: shop\/api-limit/);
    assert.ok(await hasSeries(h, { response_code: '429', response_flags: 'RL' }));
    now += 1000;
    assert.equal((await request(api, '/limited/x')).status, 200);
    assert.equal((await request(api, '/limited/x')).status, 429);
  });

  it('a rate limit on the Service is one bucket for all its rules (limit.bucket), not one per rule', async () => {
    assert.equal((await request(api, '/shared-a/x')).status, 200);
    assert.equal((await request(api, '/shared-b/x')).status, 429, 'rule 11 shares rule 10\'s only token');
  });
});
