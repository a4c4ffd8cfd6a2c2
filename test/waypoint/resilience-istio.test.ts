/**
 * Istio's own objects, compiled by agent/l7 (no test table), executed by the waypoint: the
 * httpbin circuit-breaking task's DestinationRule (maxConnections 1, http1MaxPendingRequests 1,
 * maxRequestsPerConnection 1: a client with concurrency 3 sees 503 UO), a VirtualService's
 * retries (counted at the backend), and its fault abort (FI).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { waitFor } from '../helpers/wait.js';
import { NS, startHarness, type Harness } from './harness.js';

const HTTPBIN = '198.18.122.130';
const FLAKY = '198.18.122.131';

const extra: ManifestObject[] = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'httpbin', namespace: NS },
    spec: {
      host: 'httpbin',
      trafficPolicy: {
        connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } },
        outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: 100 },
      },
    },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'flaky', namespace: NS },
    spec: {
      hosts: ['flaky'],
      http: [
        { match: [{ uri: { prefix: '/abort' } }], fault: { abort: { percentage: { value: 100 }, httpStatus: 418 } }, route: [{ destination: { host: 'flaky' } }] },
        { route: [{ destination: { host: 'flaky' } }], retries: { attempts: 2, retryOn: '5xx', perTryTimeout: '2s' } },
      ],
    },
  },
];

const held: http.ServerResponse[] = [];

function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('waypoint resilience from Istio objects', () => {
  let h: Harness;
  let httpbin: number;
  let flaky: number;

  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'httpbin-1', ip: '198.18.120.131', labels: { app: 'httpbin' } },
        { name: 'flaky-1', ip: '198.18.120.132', labels: { app: 'flaky' } },
      ],
      services: [
        { name: 'httpbin', vip: HTTPBIN, selector: { app: 'httpbin' } },
        { name: 'flaky', vip: FLAKY, selector: { app: 'flaky' } },
      ],
      extra,
      app: (_pod, req, res) => {
        if (req.url === '/hold') {
          held.push(res);
          return true;
        }
        if (req.url === '/fail') {
          res.writeHead(503).end('busy');
          return true;
        }
        return false;
      },
    });
    httpbin = await h.tunnelPort(HTTPBIN, 80);
    flaky = await h.tunnelPort(FLAKY, 80);
  });
  after(async () => {
    for (const r of held.splice(0)) r.destroy();
    await h.close();
  });

  it("Istio's circuit-breaking task: with concurrency 3 one request gets 503 UO at once, the others get through one at a time", async () => {
    const replies = [0, 1, 2].map(() => get(httpbin, '/hold', 'httpbin'));
    const first = await Promise.race(replies);
    assert.equal(first.status, 503);
    await waitFor(() => held.length === 1, 'one request at the pod');
    held.shift()!.end('one');
    await waitFor(() => held.length === 1, 'the pending one next');
    held.shift()!.end('two');
    assert.deepEqual((await Promise.all(replies)).map((r) => r.status).sort(), [200, 200, 503]);
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/hold' && l.flags === 'UO'), 'UO in the access log');
    const text = await h.waypoint.registry.metrics();
    assert.ok(text.split('\n').some((l) => l.startsWith('istio_requests_total{') && l.includes('response_flags="UO"') && l.includes('destination_service_name="httpbin"')));
  });

  it("a VirtualService's retries: 5xx retried twice, counted at the backend, URX at the end", async () => {
    const r = await get(flaky, '/fail', 'flaky');
    assert.equal(r.status, 503);
    assert.equal(h.pods.get('flaky-1')!.requests.filter((q) => q.url === '/fail').length, 3);
    const line = await waitFor(() => h.logs.find((l) => l.msg === 'request' && l.path === '/fail'), 'logged');
    assert.equal(line.flags, 'URX');
    assert.equal(line.attempts, 3);
  });

  it("a VirtualService's fault abort answers its status with FI", async () => {
    const r = await get(flaky, '/abort/x', 'flaky');
    assert.equal(r.status, 418);
    assert.equal(h.pods.get('flaky-1')!.requests.filter((q) => q.url === '/abort/x').length, 0);
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/abort/x' && l.flags === 'FI'), 'FI logged');
  });
});
