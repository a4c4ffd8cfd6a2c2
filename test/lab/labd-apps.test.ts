/**
 * The example apps as Istio's tasks need them (issue 12, point 3), on loopback (no root):
 * bookinfo's productpage and reviews carry `end-user` and the trace headers on, productpage
 * retries reviews once and takes the user from /login's cookie, reviews v2/v3 colour their stars
 * (v1 does not call ratings), every answer names its version; httpbin answers as go-httpbin.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_LAB_DIR, REPO_DIR } from '../../agent/lab/paths.js';

const BOOKINFO = join(DEFAULT_LAB_DIR, 'app');
const HTTPBIN = join(REPO_DIR, 'examples', 'httpbin', 'app', 'httpbin.mjs');
const children: ChildProcess[] = [];
const servers: Server[] = [];

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
});

/** Starts an app on a free loopback port; resolves with its base URL once it listens. */
function startApp(script: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', POD_NAME: 'test-pod', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${out}`)));
  });
}

/** An upstream that records what it was sent and answers with `reply(n)` (n: the call's number). */
function recorder(reply: (n: number, path: string) => { status: number; body: unknown }): Promise<{ url: string; calls: { path: string; headers: IncomingHttpHeaders }[] }> {
  const calls: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    calls.push({ path: req.url ?? '', headers: req.headers });
    const r = reply(calls.length, req.url ?? '');
    res.writeHead(r.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r.body));
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls })));
}

const TRACE = {
  'x-request-id': 'req-1',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'weft=1',
  'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
  'x-b3-spanid': 'e457b5a2e4d86bd1',
  'x-b3-parentspanid': '05e3ac9a4f6e3b90',
  'x-b3-sampled': '1',
  b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
};

test('productpage forwards end-user and the trace headers to details and reviews, and retries reviews once', async () => {
  const details = await recorder(() => ({ status: 200, body: { service: 'details' } }));
  const reviews = await recorder((n) => (n === 1 ? { status: 503, body: { error: 'first try fails' } } : { status: 200, body: { service: 'reviews', version: 'v2' } }));
  const productpage = await startApp(join(BOOKINFO, 'productpage.mjs'), { DETAILS_URL: details.url, REVIEWS_URL: reviews.url });
  const res = await fetch(`${productpage}/productpage`, { headers: { 'end-user': 'jason', 'x-unrelated': 'no', ...TRACE } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { version: string; user: string; reviews: { ok: boolean; attempts: number } };
  assert.equal(body.version, 'v1');
  assert.equal(body.user, 'jason');
  assert.deepEqual([body.reviews.ok, body.reviews.attempts], [true, 2], 'one retry after the 503');
  assert.equal(reviews.calls.length, 2);
  for (const call of [...details.calls, ...reviews.calls]) {
    assert.equal(call.headers['end-user'], 'jason', call.path);
    for (const [k, v] of Object.entries(TRACE)) assert.equal(call.headers[k], v, `${k} to ${call.path}`);
  }
  // Not propagated: what the apps do not forward (a hop-by-hop or unrelated header).
  assert.equal(reviews.calls[0]!.headers['x-unrelated'], undefined);
});

test('productpage takes the user from the /login cookie when the request has no end-user header', async () => {
  const details = await recorder(() => ({ status: 200, body: {} }));
  const reviews = await recorder(() => ({ status: 200, body: {} }));
  const productpage = await startApp(join(BOOKINFO, 'productpage.mjs'), { DETAILS_URL: details.url, REVIEWS_URL: reviews.url });
  const login = await fetch(`${productpage}/login`, { method: 'POST', body: new URLSearchParams({ username: 'jason', passwd: 'x' }), redirect: 'manual' });
  assert.equal(login.status, 302);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  assert.equal(cookie, 'user=jason');
  await fetch(`${productpage}/productpage`, { headers: { cookie } });
  assert.equal(reviews.calls.at(-1)!.headers['end-user'], 'jason');
  await fetch(`${productpage}/productpage`);
  assert.equal(reviews.calls.at(-1)!.headers['end-user'], undefined, 'no user: no header');
});

test('reviews: v1 does not call ratings, v2 shows black stars and v3 red, forwarding end-user and the trace headers', async () => {
  const ratings = await recorder(() => ({ status: 200, body: { ratings: { Reviewer1: 5, Reviewer2: 4 } } }));
  for (const [version, color] of [['v1', undefined], ['v2', 'black'], ['v3', 'red']] as const) {
    const before = ratings.calls.length;
    const reviews = await startApp(join(BOOKINFO, 'reviews.mjs'), { SERVICE_VERSION: version, RATINGS_URL: ratings.url });
    const res = await fetch(`${reviews}/reviews/0`, { headers: { 'end-user': 'jason', ...TRACE } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { version: string; pod: string; reviews: { rating?: { stars: number; color: string } }[] };
    assert.equal(body.version, version);
    assert.equal(body.pod, 'test-pod');
    assert.deepEqual(body.reviews.map((r) => r.rating?.color), [color, color]);
    assert.equal(ratings.calls.length - before, version === 'v1' ? 0 : 1);
    if (version !== 'v1') {
      const call = ratings.calls.at(-1)!;
      assert.equal(call.headers['end-user'], 'jason');
      for (const [k, v] of Object.entries(TRACE)) assert.equal(call.headers[k], v, k);
    }
  }
});

test('reviews answers 200 with "Ratings service is currently unavailable" when ratings fails, as Istio\'s does', async () => {
  const ratings = await recorder(() => ({ status: 500, body: { error: 'fault filter abort' } }));
  const reviews = await startApp(join(BOOKINFO, 'reviews.mjs'), { SERVICE_VERSION: 'v2', RATINGS_URL: ratings.url });
  const res = await fetch(`${reviews}/reviews/0`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { reviews: { rating: { error?: string } }[] };
  assert.deepEqual(body.reviews.map((r) => r.rating.error), ['Ratings service is currently unavailable', 'Ratings service is currently unavailable']);
});

test('httpbin answers /get, /headers, /ip, /status, /delay and /anything as go-httpbin does', async () => {
  const base = await startApp(HTTPBIN);
  const get = (await (await fetch(`${base}/get?a=1&a=2`, { headers: { 'x-b3-traceid': 'abc' } })).json()) as { args: Record<string, string[]>; headers: Record<string, string[]>; method: string; origin: string; url: string };
  assert.deepEqual(get.args, { a: ['1', '2'] });
  assert.deepEqual(get.headers['X-B3-Traceid'], ['abc']);
  assert.equal(get.method, 'GET');
  assert.equal(get.origin, '127.0.0.1');
  assert.match(get.url, /\/get\?a=1&a=2$/);
  const headers = (await (await fetch(`${base}/headers`, { headers: { 'end-user': 'jason' } })).json()) as { headers: Record<string, string[]> };
  assert.deepEqual(headers.headers['End-User'], ['jason']);
  assert.deepEqual(await (await fetch(`${base}/ip`, { headers: { 'x-forwarded-for': '198.18.9.9, 10.0.0.1' } })).json(), { origin: '198.18.9.9' });
  const s503 = await fetch(`${base}/status/503`);
  assert.equal(s503.status, 503);
  assert.equal(await s503.text(), '');
  for (let i = 0; i < 5; i++) assert.equal((await fetch(`${base}/status/200:0,500:1`)).status, 500, 'weights pick the code');
  assert.equal((await fetch(`${base}/status/abc`)).status, 400);
  const delayed = (await (await fetch(`${base}/delay/0.1`)).json()) as { method: string };
  assert.equal(delayed.method, 'GET');
  const any = (await (await fetch(`${base}/anything/x?q=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"k":"v"}' })).json()) as { method: string; json: unknown; data: string; args: unknown };
  assert.deepEqual([any.method, any.json, any.data, any.args], ['POST', { k: 'v' }, '{"k":"v"}', { q: ['1'] }]);
  assert.equal((await fetch(`${base}/nowhere`)).status, 404);
});
