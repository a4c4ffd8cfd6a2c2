/**
 * The waypoint end to end on the bookinfo lab (lab `wpe2e`, root): a waypoint Gateway for
 * reviews (the lab starts its pod running `weft waypoint`), the Service labelled
 * weft.dev/use-waypoint, and an HTTPRoute sending `end-user: jason` to reviews-v2 and the rest to
 * reviews-v1. Requests from productpage (a meshed pod: its agent tunnels them to the waypoint)
 * are routed by the header; the waypoint's Prometheus port counts them with reporter="waypoint"
 * and its access log names the rule.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { labApply, labDown, labStatus, labUp } from '../../agent/lab/index.js';
import { podLogFile } from '../../agent/lab/paths.js';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';
import { waitFor } from '../helpers/wait.js';
import { podNode, waitCaptured } from './helpers.js';
import { FETCH_SCRIPT } from './pod-fetch.js';

const LAB = 'wpe2e';
const REVIEWS_VIP = '198.19.128.12';
const tmp = mkdtempSync(join(tmpdir(), `weft-${LAB}-`));
let productpage = '';
let waypointPod = '';

const L7 = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: reviews-wp, namespace: default}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: default
  labels: {app: reviews, service: reviews, weft.dev/use-waypoint: reviews-wp}
spec:
  clusterIP: ${REVIEWS_VIP}
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
    - matches: [{headers: [{name: end-user, value: jason}]}]
      backendRefs: [{name: reviews-v2, port: 9080}]
    - backendRefs: [{name: reviews-v1, port: 9080}]
`;

/** `count` requests from productpage to reviews, returning the versions that answered. */
async function versions(count: number, headers: Record<string, string>): Promise<string[]> {
  const reqs = Array.from({ length: count }, () => ({ url: `http://${REVIEWS_VIP}:9080/reviews/0`, headers, timeoutMs: 5000 }));
  const r = await podNode(LAB, productpage, 'default', FETCH_SCRIPT, [JSON.stringify(reqs), 'versions']);
  return JSON.parse(r.stdout || '[]') as string[];
}

async function waypointMetrics(): Promise<string> {
  const r = await podNode(LAB, waypointPod, 'default', `fetch('http://127.0.0.1:15020/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`);
  return r.stdout;
}

before(async () => {
  await labDown({ name: LAB });
  const status = await labUp({ name: LAB });
  productpage = bookinfoPodName(status, 'productpage');
  await waitCaptured(LAB, 'node-1', [productpage, bookinfoPodName(status, 'reviews', 'v1'), bookinfoPodName(status, 'reviews', 'v2'), bookinfoPodName(status, 'reviews', 'v3')].map((n) => `default/${n}`));
  const file = join(tmp, 'l7.yaml');
  writeFileSync(file, L7);
  await labApply({ name: LAB, file });
  await waitFor(async () => {
    const s = await labStatus(LAB);
    const wp = s.pods.find((p) => p.namespace === 'default' && p.labels[GATEWAY_NAME_LABEL] === 'reviews-wp' && p.running);
    waypointPod = wp?.name ?? '';
    return waypointPod !== '';
  }, 'the waypoint pod runs', 60_000);
  await waitFor(async () => (await podNode(LAB, waypointPod, 'default', `fetch('http://127.0.0.1:15021/healthz/ready').then((r) => process.stdout.write(String(r.status)))`)).stdout === '200', 'the waypoint is ready', 60_000);
  // The agents and the waypoint read the change from the manifests: until then requests may go to any version.
  await waitFor(async () => (await versions(3, { 'end-user': 'jason' })).every((v) => v === 'v2'), 'jason routed to reviews-v2', 60_000);
});

after(async () => {
  await labDown({ name: LAB });
  rmSync(tmp, { recursive: true, force: true });
});

test('the HTTPRoute at the waypoint sends end-user: jason to reviews-v2 and everyone else to reviews-v1', async () => {
  assert.deepEqual(await versions(10, { 'end-user': 'jason' }), Array(10).fill('v2'));
  assert.deepEqual(await versions(10, {}), Array(10).fill('v1'));
});

test('the waypoint counts the requests with reporter="waypoint" and its access log names the rule', async () => {
  await versions(2, { 'end-user': 'jason' });
  const text = await waypointMetrics();
  const lines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  const has = (labels: Record<string, string>): boolean => lines.some((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  assert.ok(has({ reporter: 'waypoint', source_app: 'productpage', source_workload: 'productpage-v1', destination_workload: 'reviews-v2', destination_service_name: 'reviews-v2', destination_app: 'reviews', destination_version: 'v2', response_code: '200', connection_security_policy: 'mutual_tls' }), lines.join('\n'));
  assert.ok(has({ reporter: 'waypoint', destination_service_name: 'reviews-v1', response_code: '200' }), lines.join('\n'));
  const log = readFileSync(podLogFile(LAB, 'default', waypointPod), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const line = log.find((l) => l['msg'] === 'request' && l['backend'] === 'default/reviews-v2');
  assert.ok(line, 'an access-log line for a request routed to reviews-v2');
  assert.equal(line['rule'], 'HTTPRoute default/reviews rule 0');
  assert.equal(line['sourcePrincipal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
});
