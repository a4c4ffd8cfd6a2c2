/**
 * The waypoint with the model's own configuration, not test doubles: AuthorizationPolicies with
 * targetRefs (policy/'s evaluator: a DENY answers 403 `RBAC: access denied`, logged with the
 * policy; a non-HTTP stream is decided by the same policies' L4 rules) and an HTTPRoute
 * (agent/l7: a header match sends to another Service, its status is in the config dump).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { waitFor } from '../helpers/wait.js';
import { NS, startHarness, type Harness } from './harness.js';

const WEB = '198.18.121.40';
const CANARY = '198.18.121.41';

const objects: ManifestObject[] = [
  {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'no-admin', namespace: NS },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] },
  } as ManifestObject,
  {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'no-tcp-7000', namespace: NS },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], action: 'DENY', rules: [{ to: [{ operation: { ports: ['7000'] } }] }] },
  } as ManifestObject,
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'web-canary', namespace: NS },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }],
      rules: [
        { matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [{ name: 'canary', port: 80 }] },
        { backendRefs: [{ name: 'web', port: 80 }] },
      ],
    },
  } as ManifestObject,
];

function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('waypoint with the model\'s policies and routes', () => {
  let h: Harness;
  let port: number;
  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'web-1', ip: '198.18.120.41', labels: { app: 'web' } },
        { name: 'canary-1', ip: '198.18.120.42', labels: { app: 'canary' } },
      ],
      services: [
        { name: 'web', vip: WEB, selector: { app: 'web' } },
        { name: 'canary', vip: CANARY, selector: { app: 'canary' } },
      ],
      extra: objects,
    });
    port = await h.tunnelPort(WEB, 80);
  });
  after(() => h.close());

  it('denies what a DENY policy targeting the Service matches, 403 RBAC: access denied, logged with the policy', async () => {
    const r = await get(port, '/admin/users');
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
    await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === '/admin/users' && l.policy === `${NS}/no-admin` && l.status === 403), 'denial in the access log');
    assert.ok(h.logs.some((l) => l.code === 'WEFT_ERR_POLICY_DENIED' && l.policy === `${NS}/no-admin`));
    assert.equal(h.pods.get('web-1')!.requests.some((q) => q.url.startsWith('/admin')), false, 'never reached the pod');
  });

  it('decides on the normalized path, and sends that path upstream', async () => {
    const denied = await get(port, '/public/../admin');
    assert.equal(denied.status, 403);
    const ok = await get(port, '/a/./b/../c?q=1');
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).url, '/a/c?q=1');
  });

  it('routes by the HTTPRoute: a header match to the canary Service, the rest to web', async () => {
    assert.equal(JSON.parse((await get(port, '/x', { 'x-canary': 'yes' })).body).pod, 'canary-1');
    assert.equal(JSON.parse((await get(port, '/x')).body).pod, 'web-1');
    const line = h.logs.filter((l) => l.msg === 'request' && l.path === '/x').at(0)!;
    assert.match(String(line.rule), /HTTPRoute shop\/web-canary/);
    assert.equal(line.backend, `${NS}/canary`);
  });

  it('shows the route status in the config dump', () => {
    const dump = h.waypoint.configDump() as { routes: { route: string }[]; policies: string[] };
    assert.ok(dump.routes.some((r) => JSON.stringify(r).includes('web-canary')), JSON.stringify(dump.routes));
    assert.deepEqual([...dump.policies].sort(), [`${NS}/no-admin`, `${NS}/no-tcp-7000`]);
  });

  it("applies the policies' L4 rules to a stream that is not HTTP (HTTP conditions failing closed)", async () => {
    const s = await h.connect(`${WEB}:7000`);
    s.on('error', () => undefined);
    s.write('\x00binary');
    await new Promise((resolve) => s.once('close', resolve));
    // Both DENY policies match: no-tcp-7000 by its port, no-admin because at L4 its HTTP
    // condition is ignored (fail closed: it denies more); the first by name is reported.
    await waitFor(() => h.logs.some((l) => l.msg === 'connection' && l.policy === `${NS}/no-admin` && String(l.reason).startsWith('WEFT_ERR_POLICY_DENIED')), 'L4 denial logged', 5000);
    assert.equal(h.connects.some((c) => c.authority.endsWith(':7000')), false, 'nothing relayed');
  });
});
