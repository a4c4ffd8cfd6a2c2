/**
 * The pure parts of the waypoint's resilience (agent/waypoint/resilience): what retry_on
 * retries, the jittered backoff, the retry budget and the circuit breaker's accounting, outlier
 * ejection on an injected clock, the token bucket, fault draws on an injected random source.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint, Service } from '../../agent/discovery/types.js';
import { ClusterState } from '../../agent/waypoint/resilience/cluster.js';
import { drawFault, grpcStatusOfHttp } from '../../agent/waypoint/resilience/fault.js';
import { OutlierDetector } from '../../agent/waypoint/resilience/outlier.js';
import { RateLimits } from '../../agent/waypoint/resilience/rate-limit.js';
import { backoffMs, compileRetry, retries, type AttemptOutcome } from '../../agent/waypoint/resilience/retry-on.js';
import { RequestPicker } from '../../agent/waypoint/picker.js';

const status = (s: number, grpcStatus?: number): AttemptOutcome => ({ kind: 'status', status: s, grpcStatus });

describe('retry_on', () => {
  it('5xx retries every 5xx, resets and connect failures, not 4xx', () => {
    const p = compileRetry({ attempts: 2, perTryTimeoutMs: undefined, retryOn: ['5xx'] });
    for (const s of [500, 501, 503, 599]) assert.ok(retries(p, status(s)), String(s));
    assert.ok(!retries(p, status(404)));
    assert.ok(!retries(p, status(409)));
    assert.ok(retries(p, { kind: 'reset' }));
    assert.ok(retries(p, { kind: 'connect-failure' }));
    assert.ok(retries(p, { kind: 'refused-stream' }));
  });

  it('gateway-error retries 502, 503 and 504 only; connect-failure only connect failures; reset resets', () => {
    const g = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['gateway-error'] });
    assert.deepEqual([500, 502, 503, 504].map((s) => retries(g, status(s))), [false, true, true, true]);
    const c = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['connect-failure'] });
    assert.ok(retries(c, { kind: 'connect-failure' }));
    assert.ok(!retries(c, { kind: 'reset' }));
    assert.ok(!retries(c, status(503)));
    const r = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['reset'] });
    assert.ok(retries(r, { kind: 'reset' }));
    assert.ok(!retries(r, status(503)));
    const refused = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['refused-stream'] });
    assert.ok(retries(refused, { kind: 'refused-stream' }));
    assert.ok(!retries(refused, { kind: 'reset' }));
  });

  it('retriable-4xx is 409; listed codes (GEP-1731 codes, Istio numeric retryOn) are retried', () => {
    const p = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['retriable-4xx'] });
    assert.ok(retries(p, status(409)));
    assert.ok(!retries(p, status(429)));
    const codes = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['retriable-status-codes'], statusCodes: [418] });
    assert.ok(retries(codes, status(418)));
    assert.ok(!retries(codes, status(503)));
    const istio = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['503', 'connect-failure'] });
    assert.ok(retries(istio, status(503)));
    assert.ok(!retries(istio, status(502)));
  });

  it("gRPC's conditions read grpc-status", () => {
    const p = compileRetry({ attempts: 1, perTryTimeoutMs: undefined, retryOn: ['unavailable', 'cancelled'] });
    assert.ok(retries(p, status(200, 14)));
    assert.ok(retries(p, status(200, 1)));
    assert.ok(!retries(p, status(200, 13)));
    assert.ok(!retries(p, status(200, undefined)));
  });

  it('backoff: jittered, exponential from 25 ms by default, capped at 10 x base', () => {
    const p = compileRetry({ attempts: 5, perTryTimeoutMs: undefined, retryOn: ['5xx'] });
    assert.equal(p.backoffBaseMs, 25);
    assert.equal(backoffMs(1, 25, 0.999), 24);
    assert.equal(backoffMs(2, 25, 0.999), 49);
    assert.equal(backoffMs(3, 25, 0.5), 50);
    assert.equal(backoffMs(10, 25, 0.999), 249, 'capped at 250');
    assert.equal(backoffMs(3, 25, 0), 0);
  });
});

describe('cluster: circuit breaker and retry budget', () => {
  it('max requests overflows; HTTP/1 connection slots queue up to the pending limit and pass on in order', () => {
    const c = new ClusterState({ connectionPool: { http2MaxRequests: 2, maxConnections: 1, http1MaxPendingRequests: 1 } }, 0);
    assert.ok(c.startRequest());
    assert.ok(c.startRequest());
    assert.ok(!c.startRequest(), 'third active request overflows');
    const granted: string[] = [];
    const w = (name: string) => ({ granted: () => granted.push(name) });
    assert.equal(c.acquireConnection(w('a')), 'now');
    const b = w('b');
    assert.equal(c.acquireConnection(b), 'queued');
    assert.equal(c.acquireConnection(w('c')), 'overflow');
    c.releaseConnection();
    assert.deepEqual(granted, ['b']);
    assert.equal(c.busyConnections, 1, 'the slot passed on');
    c.releaseConnection();
    assert.equal(c.busyConnections, 0);
    const d = w('d');
    assert.equal(c.acquireConnection(w('x')), 'now');
    assert.equal(c.acquireConnection(d), 'queued');
    c.cancelWait(d);
    c.releaseConnection();
    assert.deepEqual(granted, ['b'], 'a waiter that gave up is not granted');
  });

  it('retries: at least 3 concurrent, else 20 % of active and pending requests; maxRetries caps', () => {
    const c = new ClusterState(undefined, 0);
    for (let i = 0; i < 3; i++) assert.ok(c.startRetry());
    assert.ok(!c.startRetry(), 'a fourth with only retries active');
    for (let i = 0; i < 20; i++) c.startRequest();
    assert.ok(c.startRetry(), '20 % of 20 = 4');
    assert.ok(!c.startRetry());
    c.endRetry();
    assert.ok(c.startRetry());
    const capped = new ClusterState({ connectionPool: { maxRetries: 1 } }, 0);
    for (let i = 0; i < 100; i++) capped.startRequest();
    assert.ok(capped.startRetry());
    assert.ok(!capped.startRetry(), 'maxRetries 1');
  });
});

describe('outlier detection', () => {
  it('ejects after consecutive 5xx for base x ejections, brought back at the interval sweep', () => {
    const d = new OutlierDetector({ consecutive5xxErrors: 3, intervalMs: 1000, baseEjectionTimeMs: 5000, maxEjectionPercent: 100 }, 0);
    assert.equal(d.report('a', 503, 2, 10), undefined);
    assert.equal(d.report('a', 200, 2, 20), undefined, 'a success resets the count');
    d.report('a', 500, 2, 30);
    d.report('a', 502, 2, 40);
    const e = d.report('a', 503, 2, 50);
    assert.ok(e !== undefined);
    assert.equal(e.until, 6000, 'first sweep after 50 + 5000');
    assert.ok(d.ejected('a', 5999));
    assert.ok(!d.ejected('a', 6000));
    for (let i = 0; i < 3; i++) d.report('a', 503, 2, 6100 + i);
    assert.ok(d.ejected('a', 6103));
    assert.ok(d.ejected('a', 16000), 'second ejection lasts 2 x base');
    assert.ok(!d.ejected('a', 17000));
    assert.ok(!d.anyEjected(17000));
  });

  it('consecutive gateway errors count 502/503/504 only; maxEjectionPercent keeps hosts in (one always may go)', () => {
    const d = new OutlierDetector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 40 }, 0);
    d.report('a', 500, 4, 1);
    assert.equal(d.report('a', 500, 4, 2), undefined, '500 is no gateway error');
    d.report('a', 504, 4, 3);
    assert.ok(d.report('a', 503, 4, 4) !== undefined, 'one host may always be ejected');
    d.report('b', 502, 4, 5);
    assert.equal(d.report('b', 502, 4, 6), undefined, '2 of 4 = 50 % > 40 %');
    assert.ok(!d.ejected('b', 7));
  });

  it('the picker skips ejected endpoints, unless fewer than minHealthPercent are healthy (panic)', () => {
    const eps: Endpoint[] = [{ ip: '10.0.0.1', port: 80 } as Endpoint, { ip: '10.0.0.2', port: 80 } as Endpoint];
    const service = { key: 'ns/s', ports: new Map([[80, eps]]) } as unknown as Service;
    const picker = new RequestPicker(() => 0);
    const strict = new OutlierDetector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, 0);
    strict.report('10.0.0.1', 503, 2, 0);
    for (let i = 0; i < 5; i++) assert.equal(picker.pick(service, { service: 'ns/s', port: 80 }, undefined, strict, 1)?.ip, '10.0.0.2');
    const panicky = new OutlierDetector({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 60 }, 0);
    panicky.report('10.0.0.1', 503, 2, 0);
    assert.equal(picker.pick(service, { service: 'ns/s', port: 80 }, undefined, panicky, 1)?.ip, '10.0.0.1', '50 % healthy < 60 %: all count');
    assert.equal(picker.pick(service, { service: 'ns/s', port: 80 }, [eps[0]!])?.ip, '10.0.0.2', 'previous hosts avoided');
  });
});

describe('rate limit and faults', () => {
  it('a token bucket per rule: full at first, refilled per interval, headers as Envoy', () => {
    const r = new RateLimits();
    const limit = { policy: 'shop/rl', maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 1000 };
    assert.ok(r.take('rule', limit, 0).allowed);
    assert.ok(r.take('rule', limit, 10).allowed);
    const no = r.take('rule', limit, 20);
    assert.ok(!no.allowed);
    assert.deepEqual(no.headers, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1' });
    assert.ok(r.take('other', limit, 20).allowed, 'another rule has its own bucket');
    assert.ok(r.take('rule', limit, 1000).allowed, 'one token after the interval');
    assert.ok(!r.take('rule', limit, 1001).allowed);
    assert.ok(!r.take('rule', { ...limit }, 1002).allowed, 'a rebuilt table with the same limits keeps the bucket');
    assert.ok(r.take('rule', { ...limit, maxTokens: 3 }, 1003).allowed, 'changed limits: a new, full bucket');
  });

  it('delay and abort are drawn each against its percentage', () => {
    const seq = (...v: number[]) => () => v.shift() ?? 0;
    const fault = { delay: { ms: 7000, percent: 50 }, abort: { statusCode: 500, percent: 10 } };
    assert.deepEqual(drawFault(fault, seq(0.4, 0.05)), { delayMs: 7000, abort: { statusCode: 500, grpcStatus: undefined } });
    assert.deepEqual(drawFault(fault, seq(0.6, 0.05)), { delayMs: 0, abort: { statusCode: 500, grpcStatus: undefined } });
    assert.equal(drawFault(fault, seq(0.6, 0.2)), undefined);
    assert.equal(grpcStatusOfHttp(503), 14);
    assert.equal(grpcStatusOfHttp(404), 12);
  });
});
