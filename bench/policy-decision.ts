/**
 * Cost of one L4 policy decision at cluster scale: 5,000 workloads (50 namespaces x 100 pods),
 * 500 AuthorizationPolicies (mesh-wide, namespace-wide and per-app; ALLOW, DENY and AUDIT; IPv4
 * and IPv6 blocks; principal wildcards), 5 PeerAuthentications per namespace level mix.
 * Prints compile time, per-workload view build time and ns per evaluate(). No thresholds: run
 * `node dist/bench/policy-decision.js` and compare with the budget in docs/policy.md (5 us).
 *
 * Then the waypoint's L7 decision (evaluateRequest) at the same scale: 500 more policies with
 * targetRefs (per Service: methods, path wildcards, hosts, principals, header conditions; per
 * waypoint Gateway: DENY on paths; one GatewayClass DENY), 1,000 Services, a mix of requests.
 */
import {
  compilePolicies,
  evaluate,
  evaluateRequest,
  type ConnectionInfo,
  type HttpRequestInfo,
  type WaypointPolicy,
  type WorkloadPolicy,
} from '../policy/index.js';

const NAMESPACES = 50;
const PODS_PER_NAMESPACE = 100;
const APPS_PER_NAMESPACE = 20;
const ROOT = 'weft-system';

const ap = (name: string, namespace: string, spec: Record<string, unknown>) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });
const pa = (name: string, namespace: string, spec: Record<string, unknown>) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'PeerAuthentication', metadata: { name, namespace }, spec });
const ns = (i: number) => `team-${i}`;
const principal = (n: number, app: number) => `cluster.local/ns/${ns(n)}/sa/app-${app}`;

function policies(): unknown[] {
  const out: unknown[] = [];
  // 10 mesh-wide policies in the root namespace.
  out.push(ap('deny-metadata', ROOT, { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['169.254.0.0/16', 'fd00:ec2::/64'] } }] }] }));
  out.push(ap('deny-quarantine', ROOT, { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['quarantine-*'] } }] }] }));
  out.push(ap('audit-ssh', ROOT, { action: 'AUDIT', rules: [{ to: [{ operation: { ports: ['22'] } }] }] }));
  for (let i = 0; i < 7; i++) out.push(ap(`deny-port-${i}`, ROOT, { action: 'DENY', rules: [{ to: [{ operation: { ports: [String(30000 + i)] } }] }] }));
  // 49 policies in each of 10 namespaces' worth... 490 spread over 50 namespaces: 9.8 each.
  let n = 0;
  for (let i = 0; n < 490; i = (i + 1) % NAMESPACES) {
    const k = Math.floor(n / NAMESPACES);
    const app = (k * 3 + i) % APPS_PER_NAMESPACE;
    if (k === 0) {
      out.push(ap('deny-outside', ns(i), { action: 'DENY', rules: [{ from: [{ source: { notIpBlocks: ['198.18.0.0/15', '2001:db8::/32'] } }] }] }));
    } else if (k === 9) {
      out.push(ap('audit-admin', ns(i), { action: 'AUDIT', selector: { matchLabels: { app: `app-${app}` } }, rules: [{ to: [{ operation: { ports: ['9901'] } }] }] }));
    } else {
      out.push(
        ap(`allow-app-${app}-${k}`, ns(i), {
          selector: { matchLabels: { app: `app-${app}` } },
          rules: [
            {
              from: [
                { source: { principals: [principal(i, (app + 1) % APPS_PER_NAMESPACE), principal(i, (app + 2) % APPS_PER_NAMESPACE), `cluster.local/ns/${ns((i + 1) % NAMESPACES)}/*`] } },
                { source: { namespaces: [ns((i + 2) % NAMESPACES)], notPrincipals: ['*/sa/untrusted'] } },
              ],
              to: [{ operation: { ports: ['8080', '8443'] } }],
            },
            { from: [{ source: { ipBlocks: ['198.18.200.0/24'] } }], to: [{ operation: { ports: ['9090'] } }], when: [{ key: 'source.namespace', notValues: ['kube-system'] }] },
          ],
        }),
      );
    }
    n++;
  }
  out.push(pa('mesh', ROOT, { mtls: { mode: 'STRICT' } }));
  for (let i = 0; i < NAMESPACES; i += 5) out.push(pa('ns', ns(i), { mtls: { mode: 'PERMISSIVE' } }));
  return out;
}

const SERVICES_PER_NAMESPACE = 20;
const GATEWAY = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };

function waypointPolicies(): unknown[] {
  const out: unknown[] = [];
  out.push(ap('no-trace', ROOT, { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'weft-waypoint' }], action: 'DENY', rules: [{ to: [{ operation: { methods: ['TRACE', 'CONNECT'] } }] }] }));
  for (let i = 0; i < NAMESPACES; i++) {
    out.push(ap('deny-admin', ns(i), { targetRefs: [GATEWAY], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*', '*/debug'] } }], from: [{ source: { notNamespaces: ['ops'] } }] }] }));
    for (let k = 0; k < 9; k++) {
      const svc = (k * 2 + i) % SERVICES_PER_NAMESPACE;
      out.push(
        ap(`allow-svc-${svc}-${k}`, ns(i), {
          targetRefs: [{ group: '', kind: 'Service', name: `svc-${svc}` }, { group: '', kind: 'Service', name: `svc-${(svc + 1) % SERVICES_PER_NAMESPACE}` }],
          rules: [
            {
              from: [{ source: { principals: [principal(i, svc), `cluster.local/ns/${ns((i + 1) % NAMESPACES)}/*`] } }, { source: { namespaces: [ns((i + 2) % NAMESPACES)] } }],
              to: [{ operation: { methods: ['GET', 'HEAD'], paths: ['/api/v1/*', '*.json', '/'] } }, { operation: { methods: ['POST'], paths: [`/api/v1/items/${k}`], hosts: [`svc-${svc}.${ns(i)}*`] } }],
            },
            { when: [{ key: 'request.headers[x-canary]', values: ['v2*'] }, { key: 'source.namespace', values: [ns(i)] }] },
          ],
        }),
      );
    }
  }
  return out;
}

function l7(): string[] {
  const objects = waypointPolicies();
  let t = process.hrtime.bigint();
  const store = compilePolicies(objects, { rootNamespace: ROOT });
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  if (store.rejected.length > 0) throw new Error(`bench waypoint policies rejected: ${JSON.stringify(store.rejected[0])}`);
  t = process.hrtime.bigint();
  const views: WaypointPolicy[] = [];
  for (let i = 0; i < NAMESPACES; i++) for (let k = 0; k < SERVICES_PER_NAMESPACE; k++) views.push(store.forWaypointTarget({ namespace: ns(i), name: 'waypoint', service: `${ns(i)}/svc-${k}` }));
  const viewUs = Number(process.hrtime.bigint() - t) / 1e3 / views.length;
  let applying = 0;
  for (const v of views) applying += v.authorizationPolicies.length;
  const methods = ['GET', 'GET', 'POST', 'HEAD', 'DELETE', 'GET'];
  const paths = ['/api/v1/items/3', '/api/v1/items/3?full=1', '/static/app.json', '/admin/users', '/a/../admin', '/', '/api/v2/x', '/api/v1/items/%33'];
  const requests: HttpRequestInfo[] = [];
  for (let i = 0; i < 64; i++) {
    const n = i % NAMESPACES;
    requests.push({
      sourceIp: `198.18.${i}.${i + 1}`,
      sourcePrincipal: i % 9 === 8 ? undefined : `spiffe://${principal(i % 3 === 0 ? (n + 1) % NAMESPACES : n, i % SERVICES_PER_NAMESPACE)}`,
      trustDomain: 'cluster.local',
      destinationIp: '10.96.1.1',
      destinationPort: 8080,
      method: methods[i % methods.length]!,
      path: paths[i % paths.length]!,
      authority: `svc-${i % SERVICES_PER_NAMESPACE}.${ns(n)}:8080`,
      headers: { 'user-agent': 'bench/1', accept: '*/*', ...(i % 4 === 0 ? { 'x-canary': 'v2-beta' } : {}) },
    });
  }
  const pairs = 4096;
  const pv: WaypointPolicy[] = [];
  const pr: HttpRequestInfo[] = [];
  for (let i = 0; i < pairs; i++) {
    pv.push(views[(i * 7919) % views.length]!);
    pr.push(requests[i % requests.length]!);
  }
  let allowed = 0;
  const run = (iterations: number): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) if (evaluateRequest(pv[i & (pairs - 1)]!, pr[i & (pairs - 1)]!).allowed) allowed++;
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  run(200_000);
  const samples = [run(1_000_000), run(1_000_000), run(1_000_000)].sort((a, b) => a - b);
  return [
    `waypoint (L7) decision: ${views.length} services, ${objects.length} AuthorizationPolicies with targetRefs`,
    `  compile:             ${compileMs.toFixed(1)} ms`,
    `  forWaypointTarget:   ${viewUs.toFixed(1)} us per service, ${(applying / views.length).toFixed(1)} policies apply on average`,
    `  evaluateRequest:     ${samples[1]!.toFixed(0)} ns per decision (median of 3 x 1M; min ${samples[0]!.toFixed(0)}, max ${samples[2]!.toFixed(0)})`,
    `  mix:                 ${((allowed / (200_000 + 3_000_000)) * 100).toFixed(0)}% allowed`,
  ];
}

function main(): void {
  const objects = policies();
  const authz = objects.filter((o) => (o as { kind: string }).kind === 'AuthorizationPolicy').length;
  let t = process.hrtime.bigint();
  const store = compilePolicies(objects, { rootNamespace: ROOT });
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  if (store.rejected.length > 0) throw new Error(`bench policies rejected: ${JSON.stringify(store.rejected[0])}`);

  const workloads: { namespace: string; labels: Record<string, string> }[] = [];
  for (let i = 0; i < NAMESPACES; i++) {
    for (let p = 0; p < PODS_PER_NAMESPACE; p++) {
      workloads.push({ namespace: ns(i), labels: { app: `app-${p % APPS_PER_NAMESPACE}`, version: `v${p % 3}`, 'pod-template-hash': `h${p % APPS_PER_NAMESPACE}${p % 3}` } });
    }
  }
  t = process.hrtime.bigint();
  const views: WorkloadPolicy[] = workloads.map((w) => store.forWorkload(w));
  const viewUs = Number(process.hrtime.bigint() - t) / 1e3 / workloads.length;
  let policiesPerWorkload = 0;
  for (const v of views) policiesPerWorkload += v.authorizationPolicies.length;

  // A fixed mix of connections: allowed by principal, by wildcard, by IP; denied by DENY, by no match; v4, v6, plaintext.
  const conns: ConnectionInfo[] = [];
  for (let i = 0; i < 64; i++) {
    const n = i % NAMESPACES;
    const app = i % APPS_PER_NAMESPACE;
    const mtls = i % 4 !== 3;
    conns.push({
      sourceIp: i % 5 === 0 ? `2001:db8::${(i + 1).toString(16)}` : i % 7 === 0 ? `::ffff:198.18.200.${i}` : `198.18.${i}.${i + 1}`,
      sourcePrincipal: mtls ? `spiffe://${principal(i % 3 === 0 ? (n + 1) % NAMESPACES : n, (app + 1 + (i % 3)) % APPS_PER_NAMESPACE)}` : undefined,
      destinationIp: '198.18.1.1',
      destinationPort: [8080, 8443, 9090, 22, 30003, 5432][i % 6]!,
    });
  }
  const pairs = 4096;
  const pv: WorkloadPolicy[] = [];
  const pc: ConnectionInfo[] = [];
  for (let i = 0; i < pairs; i++) {
    pv.push(views[(i * 7919) % views.length]!);
    pc.push(conns[i % conns.length]!);
  }
  let allowed = 0;
  const run = (iterations: number): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) if (evaluate(pv[i & (pairs - 1)]!, pc[i & (pairs - 1)]!).allowed) allowed++;
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  run(200_000); // warm-up: let the JIT settle
  const samples = [run(1_000_000), run(1_000_000), run(1_000_000)].sort((a, b) => a - b);
  const allowedShare = allowed / (200_000 + 3_000_000);

  process.stdout.write(
    [
      `policy decision bench: ${workloads.length} workloads, ${authz} AuthorizationPolicies, ${objects.length - authz} PeerAuthentications`,
      `  compile:             ${compileMs.toFixed(1)} ms`,
      `  forWorkload (cold):  ${viewUs.toFixed(1)} us per workload, ${(policiesPerWorkload / views.length).toFixed(1)} policies apply on average`,
      `  evaluate:            ${samples[1]!.toFixed(0)} ns per decision (median of 3 x 1M; min ${samples[0]!.toFixed(0)}, max ${samples[2]!.toFixed(0)})`,
      `  mix:                 ${(allowedShare * 100).toFixed(0)}% allowed`,
      ...l7(),
      '',
    ].join('\n'),
  );
}

main();
