/**
 * The waypoint's resilience over HTTP/2 (h2c) and gRPC, in process: retries before the response
 * head only (gRPC `unavailable` on a trailers-only answer, 5xx with the body sent again,
 * REFUSED_STREAM), fault aborts answered as gRPC does (grpc-status from the fault, else mapped
 * from the HTTP status), and http2MaxRequests overflowing with UO. Counted at the backends.
 */
import assert from 'node:assert/strict';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { BackendPolicy, RequestPlan, RequestView, RouteRule, RouteTable } from '../../agent/l7/types.js';
import { directTable } from '../../agent/waypoint/routes.js';
import { waitFor } from '../helpers/wait.js';
import { startHarness, type Harness } from './harness.js';

const VIP = '198.18.122.120';

type Forward = Extract<RequestPlan, { kind: 'forward' }>;

function rule(name: string, extra: Partial<RouteRule>): RouteRule {
  return { name, matches: [], filters: [], backends: [], timeouts: { requestMs: undefined, backendRequestMs: undefined }, ...extra };
}

const RETRY_GRPC = rule('VirtualService shop/echo rule 0', { retry: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ['unavailable'], backoffBaseMs: 1 } });
const RETRY_5XX = rule('VirtualService shop/echo rule 1', { retry: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ['5xx'], backoffBaseMs: 1 } });
const RETRY_REFUSED = rule('VirtualService shop/echo rule 2', { retry: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ['refused-stream'], backoffBaseMs: 1 } });
const ABORT_GRPC = rule('VirtualService shop/echo rule 3', { fault: { abort: { statusCode: 503, percent: 100, grpcStatus: 8 } } });
const ABORT_HTTP = rule('VirtualService shop/echo rule 4', { fault: { abort: { statusCode: 404, percent: 100 } } });
const PLAIN = rule('VirtualService shop/echo rule 5', {});
const ONE_AT_A_TIME: BackendPolicy = { connectionPool: { http2MaxRequests: 1 } };

const table: RouteTable = {
  plan(service: string, port: number, req: RequestView, random: number): RequestPlan {
    const f = directTable.plan(service, port, req, random) as Forward;
    const p = req.path;
    if (p.startsWith('/retry.Grpc/')) return { ...f, rule: RETRY_GRPC };
    if (p.startsWith('/retry5xx/')) return { ...f, rule: RETRY_5XX };
    if (p.startsWith('/refused/')) return { ...f, rule: RETRY_REFUSED };
    if (p.startsWith('/abort.Grpc/')) return { ...f, rule: ABORT_GRPC };
    if (p.startsWith('/abort.Http/')) return { ...f, rule: ABORT_HTTP };
    if (p.startsWith('/limited/')) return { ...f, rule: PLAIN, backend: { ...f.backend, policy: ONE_AT_A_TIME } };
    return f;
  },
};

const seen = new Map<string, number>();
const held: http2.ServerHttp2Stream[] = [];

interface H2Reply {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: string;
}

function call(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': path, ...headers }, { endStream: false });
    let got: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let text = '';
    s.on('response', (h) => (got = h));
    s.on('trailers', (t) => (trailers = t));
    s.on('data', (c: Buffer) => (text += c));
    s.on('end', () => resolve({ headers: got, trailers, body: text }));
    s.on('error', reject);
    s.end(body);
  });
}

describe('waypoint resilience over HTTP/2 and gRPC', () => {
  let h: Harness;
  let session: ClientHttp2Session;
  const grpc = { 'content-type': 'application/grpc', te: 'trailers' };

  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'echo-1', ip: '198.18.120.141', labels: { app: 'echo' } },
        { name: 'echo-2', ip: '198.18.120.142', labels: { app: 'echo' } },
      ],
      services: [{ name: 'echo', vip: VIP, selector: { app: 'echo' } }],
      h2app: (pod, stream, headers) => {
        const path = String(headers[':path']);
        const id = String(headers['x-id'] ?? '');
        const n = (seen.get(id) ?? 0) + 1;
        seen.set(id, n);
        if (path.startsWith('/retry.Grpc/') && n === 1) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'try again' }, { endStream: true });
          return true;
        }
        if (path.startsWith('/retry5xx/') && n === 1) {
          stream.resume();
          stream.on('end', () => {
            stream.respond({ ':status': 503 });
            stream.end('busy');
          });
          return true;
        }
        if (path.startsWith('/refused/') && n === 1) {
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return true;
        }
        if (path.startsWith('/limited/hold')) {
          held.push(stream);
          return true;
        }
        if (path.startsWith('/retry.Grpc/')) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-pod': pod.spec.name }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end();
          return true;
        }
        return false;
      },
      waypoint: { routes: () => table },
    });
    const port = await h.tunnelPort(VIP, 9090);
    session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  });
  after(async () => {
    for (const s of held.splice(0)) s.close();
    await new Promise<void>((resolve) => session.close(() => resolve()));
    await h.close();
  });

  const attemptsOf = (path: string, id: string): number => [...h.pods.values()].reduce((n, p) => n + p.requests.filter((q) => q.url === path && q.headers['x-id'] === id).length, 0);

  it('retries a gRPC call whose trailers-only answer is UNAVAILABLE (before any response head went to the client)', async () => {
    const r = await call(session, '/retry.Grpc/Get', { ...grpc, 'x-id': 'g1' });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.trailers?.['grpc-status'], '0');
    assert.equal(attemptsOf('/retry.Grpc/Get', 'g1'), 2);
  });

  it('retries a 5xx over HTTP/2 with the request body sent again', async () => {
    const body = Buffer.alloc(50_000, 3);
    const r = await call(session, '/retry5xx/post', { 'x-id': 'h1' }, body);
    assert.equal(r.headers[':status'], 200, r.body);
    assert.equal(JSON.parse(r.body).bodyBytes, body.length);
    assert.equal(attemptsOf('/retry5xx/post', 'h1'), 2);
  });

  it('retries a stream the upstream refused (REFUSED_STREAM)', async () => {
    const r = await call(session, '/refused/x', { 'x-id': 'rf1' });
    assert.equal(r.headers[':status'], 200, r.body);
    assert.equal(attemptsOf('/refused/x', 'rf1'), 2);
  });

  it("aborts a gRPC call as gRPC: HTTP 200, the fault's grpc-status, flag FI; else the status mapped as Envoy", async () => {
    const r = await call(session, '/abort.Grpc/Get', grpc);
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['grpc-status'], '8');
    const mapped = await call(session, '/abort.Http/Get', grpc);
    assert.equal(mapped.headers['grpc-status'], '12', '404 is UNIMPLEMENTED');
    const plain = await call(session, '/abort.Http/page');
    assert.equal(plain.headers[':status'], 404, 'a request that is not gRPC gets the status');
    const line = await waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === '/abort.Grpc/Get'), 'logged');
    assert.equal(line.flags, 'FI');
    assert.equal(line.grpcStatus, '8');
    assert.equal(attemptsOf('/abort.Grpc/Get', ''), 0);
  });

  it('http2MaxRequests 1: a second concurrent stream gets 503 UO at once', async () => {
    const first = call(session, '/limited/hold');
    await waitFor(() => held.length === 1, 'the first stream is at the pod');
    const second = await call(session, '/limited/hold2');
    assert.equal(second.headers[':status'], 503);
    const g = await call(session, '/limited/hold3', grpc);
    assert.equal(g.headers['grpc-status'], '14', 'a gRPC call gets UNAVAILABLE');
    const s = held.shift()!;
    s.respond({ ':status': 200 });
    s.end('ok');
    assert.equal((await first).headers[':status'], 200);
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/limited/hold2' && l.flags === 'UO'), 'UO logged');
  });
});
