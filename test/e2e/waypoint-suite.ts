/**
 * Issue 11's "done when", end to end in a lab built from examples/grpc (root): a waypoint for
 * the echo (HTTP/1.1 + h2c) and grpc-echo (grpcio) Services, the HTTPRoute and GRPCRoute of
 * routes.yaml, an L7 DENY policy, the lab's Prometheus scraping the waypoint. Requests come from
 * the meshed client pod (its agent tunnels them to the waypoint) with three independent clients:
 * Node's fetch, curl (HTTP/1.1 and --http2-prior-knowledge) and grpcio. waypoint-lab.test.ts runs
 * it on the local source, waypoint-lab-kubernetes.test.ts on the Kubernetes-mode lab.
 *
 * Weights are checked over WEIGHT_REQUESTS requests against a 90/10 split: the count of the 10 %
 * backend is binomial (n = 400, p = 0.1: mean 40, standard deviation 6) and must lie within 4
 * standard deviations (16..64); a fair split leaves that band with probability below 1e-4.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDown, labExec, labStatus, labUp, type LabStatus } from '../../agent/lab/index.js';
import { podLogFile, REPO_DIR } from '../../agent/lab/paths.js';
import { queryLabPrometheus } from '../../agent/lab/prometheus.js';
import { fetchAdmin } from '../../agent/admin/client.js';
import { DEFAULT_ADMIN_ADDRESS } from '../../agent/config.js';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { REQUEST_LABELS } from '../../agent/telemetry/request-metrics.js';
import { pythonWith } from '../helpers/python.js';
import { waitFor } from '../helpers/wait.js';
import { accessLog } from './helpers.js';
import { FETCH_SCRIPT } from './pod-fetch.js';

export interface WaypointSuiteMode {
  lab: string;
  kubernetes: boolean;
}

const EXAMPLE = join(REPO_DIR, 'examples', 'grpc');
const GRPC_CLIENT = join(EXAMPLE, 'app', 'grpc_client.py');
const WEIGHT_REQUESTS = 400;
/** 4 standard deviations of Binomial(400, 0.1) around its mean 40. */
const WEIGHT_BAND = { low: 16, high: 64 } as const;
const DENIED = 'RBAC: access denied';

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: { pod?: string; version?: string; protocol?: string; method?: string; path?: string; authority?: string; headers?: Record<string, string | string[]> } | string;
  error?: string;
}

interface Req {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export function waypointSuite(mode: WaypointSuiteMode): void {
  const LAB = mode.lab;
  const python = pythonWith('grpc');
  const noGrpc = python === undefined ? 'no python3 with grpcio (scripts/setup.sh installs it with pip)' : false;
  const tmp = mkdtempSync(join(tmpdir(), `weft-${LAB}-`));
  let status: LabStatus;
  let echoVip = '';
  let grpcVip = '';
  let waypointPod = '';

  function vip(name: string): string {
    const ip = status.services.find((s) => s.namespace === 'default' && s.name === name)?.clusterIP;
    if (ip === undefined) throw new Error(`no service default/${name} in the lab`);
    return ip;
  }

  function podOf(app: string, version?: string): NonNullable<LabStatus['pods'][number]> {
    const pod = status.pods.find((p) => p.namespace === 'default' && p.labels['app'] === app && (version === undefined || p.labels['version'] === version) && p.running);
    if (pod === undefined) throw new Error(`no running pod of ${app} ${version ?? ''}`);
    return pod;
  }

  /** The directory the lab is built from: the example, or without grpcio the example minus grpc-echo. */
  function labDir(): string {
    if (!noGrpc) return EXAMPLE;
    const dir = join(tmp, 'grpc');
    // The pods run in the lab's directory: app/ and ../bookinfo must be where the manifests say.
    symlinkSync(join(REPO_DIR, 'examples', 'bookinfo'), join(tmp, 'bookinfo'));
    mkdirSync(dir);
    symlinkSync(join(EXAMPLE, 'app'), join(dir, 'app'));
    for (const f of readdirSync(EXAMPLE).filter((f) => f.endsWith('.yaml') && f !== 'grpc-echo.yaml')) copyFileSync(join(EXAMPLE, f), join(dir, f));
    // routes.yaml's GRPCRoute then names a Service that is not there (its status says so).
    return dir;
  }

  async function fetchAll(reqs: Req[]): Promise<Answer[]> {
    const r = await labExec({ name: LAB, pod: 'deploy/client', command: ['node', '-e', FETCH_SCRIPT, JSON.stringify(reqs)], timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('['), `the fetch script printed no answers (stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)})`);
    return JSON.parse(r.stdout) as Answer[];
  }

  async function fetchOne(req: Req): Promise<Answer> {
    return (await fetchAll([req]))[0]!;
  }

  /** The version that answered each of `count` requests to `url` ('status N' / 'error' otherwise). */
  async function versions(url: string, count: number, headers: Record<string, string> = {}): Promise<string[]> {
    const r = await labExec({ name: LAB, pod: 'deploy/client', command: ['node', '-e', FETCH_SCRIPT, JSON.stringify(Array.from({ length: count }, () => ({ url, headers }))), 'versions'], timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as string[];
  }

  function tally(list: readonly string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const v of list) out[v] = (out[v] ?? 0) + 1;
    return out;
  }

  async function grpc<T>(...args: string[]): Promise<T> {
    const r = await labExec({ name: LAB, pod: 'deploy/client', command: [python!, GRPC_CLIENT, args[0]!, `${grpcVip}:50051`, ...args.slice(1)], timeoutMs: 120_000 });
    assert.equal(r.code, 0, `grpc client: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  async function curl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return labExec({ name: LAB, pod: 'deploy/client', command: ['curl', '-sS', '--noproxy', '*', '--max-time', '10', ...args], timeoutMs: 30_000 });
  }

  function waypointLog(): Record<string, unknown>[] {
    return readFileSync(podLogFile(LAB, 'default', waypointPod), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  function podLog(pod: string): Record<string, unknown>[] {
    return readFileSync(podLogFile(LAB, 'default', pod), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async function waypointAdmin(path: string): Promise<Record<string, unknown>> {
    const pod = status.pods.find((p) => p.name === waypointPod)!;
    return (await fetchAdmin({ label: 'waypoint', admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${pod.netns}` }, path)) as Record<string, unknown>;
  }

  async function apply(name: string, text: string) {
    const file = join(tmp, name);
    writeFileSync(file, text);
    return labApply({ name: LAB, file });
  }

  const routesYaml = (): string => readFileSync(join(EXAMPLE, 'routes.yaml'), 'utf8');
  const echoServiceYaml = (labelled: boolean): string =>
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: default\n  labels:\n    app: echo\n${labelled ? '    weft.dev/use-waypoint: waypoint\n' : ''}spec:\n  selector:\n    app: echo\n  ports:\n    - name: http\n      port: 8080\n      targetPort: 8080\n`;

  const body = (a: Answer) => (typeof a.body === 'object' ? a.body : {});

  describe(`the waypoint in the lab${mode.kubernetes ? ' (Kubernetes mode)' : ''}`, () => {
    before(async () => {
      await labDown({ name: LAB });
      status = await labUp({ name: LAB, dir: labDir(), kubernetes: mode.kubernetes, readyTimeoutMs: 60_000 });
      echoVip = vip('echo');
      if (!noGrpc) grpcVip = vip('grpc-echo');
      await waitFor(async () => {
        status = await labStatus(LAB);
        waypointPod = status.pods.find((p) => p.namespace === 'default' && p.labels[GATEWAY_NAME_LABEL] === 'waypoint' && p.running)?.name ?? '';
        return waypointPod !== '';
      }, 'the waypoint pod runs', 60_000);
      // The agents and the waypoint have the routes once a routed request lands where they say.
      await waitFor(async () => (await versions(`http://${echoVip}:8080/v2/ready`, 3)).every((v) => v === 'v2'), 'echo routed by the waypoint', 90_000);
      if (!noGrpc) await waitFor(async () => (await grpc<{ version?: string }[]>('unary', '--count', '3', '--metadata', 'x-canary=yes')).every((a) => a.version === 'v2'), 'grpc-echo routed by the waypoint', 60_000);
    });

    after(async () => {
      await labDown({ name: LAB });
      rmSync(tmp, { recursive: true, force: true });
    });

    it('every HTTPRoute match type picks its backend: Exact, PathPrefix, RegularExpression, header, query parameter, method; no match is 404', async () => {
      const u = (p: string) => `http://${echoVip}:8080${p}`;
      const cases: [Req, string][] = [
        [{ url: u('/exact') }, 'v2'],
        [{ url: u('/exact/more') }, 'status 404'],
        [{ url: u('/v2/deeper') }, 'v2'],
        [{ url: u('/v2x') }, 'status 404'],
        [{ url: u('/re/123') }, 'v2'],
        [{ url: u('/re/12a') }, 'status 404'],
        // Paths no PathPrefix rule takes (a longer prefix outranks header and query matches).
        [{ url: u('/h'), headers: { 'x-canary': 'yes' } }, 'v2'],
        [{ url: u('/h'), headers: { 'x-canary': 'no' } }, 'status 404'],
        [{ url: u('/q?canary=yes') }, 'v2'],
        [{ url: u('/q?canary=no') }, 'status 404'],
        // The longer prefix wins over the header match.
        [{ url: u('/anything'), headers: { 'x-canary': 'yes' } }, 'v1'],
        [{ url: u('/form'), method: 'POST', body: 'a=1' }, 'v2'],
        [{ url: u('/form') }, 'status 404'],
      ];
      const answers = await fetchAll(cases.map(([r]) => r));
      assert.deepEqual(
        answers.map((a, i) => `${cases[i]![0].method ?? 'GET'} ${cases[i]![0].url} ${JSON.stringify(cases[i]![0].headers ?? {})} -> ${a.status === 200 ? body(a).version : `status ${a.status}`}`),
        cases.map(([r, v]) => `${r.method ?? 'GET'} ${r.url} ${JSON.stringify(r.headers ?? {})} -> ${v}`),
      );
    });

    it('RequestRedirect answers 301 with the Location the filter says; URLRewrite changes the host and prefix the backend sees', async () => {
      const [redirect, rewrite] = await fetchAll([{ url: `http://${echoVip}:8080/old/page?q=1` }, { url: `http://${echoVip}:8080/rewrite/page?q=1` }]);
      assert.equal(redirect!.status, 301);
      assert.equal(redirect!.headers!['location'], 'https://www.example.com:8443/new/page?q=1');
      assert.equal(rewrite!.status, 200);
      assert.equal(body(rewrite!).path, '/rewritten/page?q=1');
      assert.equal(body(rewrite!).authority, 'echo.rewritten');
      assert.equal(body(rewrite!).version, 'v1');
    });

    it('RequestHeaderModifier and ResponseHeaderModifier change the headers each way', async () => {
      const a = await fetchOne({ url: `http://${echoVip}:8080/headers`, headers: { 'x-set': 'from-client', 'x-add': 'from-client', 'x-remove': 'gone', 'x-keep': 'kept' } });
      assert.equal(a.status, 200);
      const seen = body(a).headers!;
      assert.equal(seen['x-set'], 'set-by-route');
      // One header, the added value appended as the conformance suite expects it (`a,b`).
      assert.equal(seen['x-add'], 'from-client,added-by-route');
      assert.equal(seen['x-remove'], undefined);
      assert.equal(seen['x-keep'], 'kept');
      assert.equal(a.headers!['x-route'], 'headers');
      assert.equal(a.headers!['x-echo-pod'], undefined, 'removed from the response');
    });

    it('RequestMirror: the mirror backend gets a copy (authority -shadow), the client the answer of the real backend', async () => {
      const marker = `/mirror/${Date.now()}`;
      const a = await fetchOne({ url: `http://${echoVip}:8080${marker}` });
      assert.equal(a.status, 200);
      assert.equal(body(a).version, 'v1');
      const mirror = podOf('echo-mirror');
      const copy = await waitFor(() => podLog(mirror.name).find((l) => l['path'] === marker), 'the mirror backend logs the copy', 20_000);
      assert.equal(copy['authority'], `${echoVip}-shadow:8080`);
    });

    it('rule timeouts: request and backendRequest answer 504 (flag UT) when the backend is slower, 200 when not', async () => {
      const [slow, fast, slowBackend] = await fetchAll([
        { url: `http://${echoVip}:8080/slow?delay=4000` },
        { url: `http://${echoVip}:8080/slow?delay=0` },
        { url: `http://${echoVip}:8080/slow-backend?delay=4000` },
      ]);
      assert.equal(slow!.status, 504);
      assert.equal(fast!.status, 200);
      assert.equal(slowBackend!.status, 504);
      const lines = await waitFor(() => {
        const l = waypointLog().filter((x) => x['msg'] === 'request' && String(x['path']).startsWith('/slow'));
        return l.length >= 3 ? l : undefined;
      }, 'access-log lines of the timed requests');
      assert.ok(lines.some((l) => l['path'] === '/slow?delay=4000' && String(l['flags'] ?? l['responseFlags']).includes('UT')), JSON.stringify(lines));
    });

    it('L7 authorization: DENY by path and by request header answers 403 RBAC: access denied, logged with the policy; others pass', async () => {
      const [admin, blocked, ok] = await fetchAll([
        { url: `http://${echoVip}:8080/admin/users` },
        { url: `http://${echoVip}:8080/anything`, headers: { 'x-block': 'yes' } },
        { url: `http://${echoVip}:8080/anything` },
      ]);
      assert.equal(admin!.status, 403);
      assert.equal(admin!.body, DENIED);
      assert.equal(blocked!.status, 403);
      assert.equal(blocked!.body, DENIED);
      assert.equal(ok!.status, 200);
      const denial = await waitFor(() => waypointLog().find((l) => l['msg'] === 'request denied by policy' && l['path'] === '/admin/users'), 'the denial in the waypoint log');
      assert.equal(denial['policy'], 'default/echo-deny');
      assert.equal(denial['code'], 'WEFT_ERR_POLICY_DENIED');
    });

    it(`weights 90/10: echo-v2 answers within ${WEIGHT_BAND.low}..${WEIGHT_BAND.high} of ${WEIGHT_REQUESTS} requests (4 standard deviations of the binomial)`, async () => {
      const t = tally(await versions(`http://${echoVip}:8080/split`, WEIGHT_REQUESTS));
      assert.equal((t['v1'] ?? 0) + (t['v2'] ?? 0), WEIGHT_REQUESTS, JSON.stringify(t));
      assert.ok((t['v2'] ?? 0) >= WEIGHT_BAND.low && (t['v2'] ?? 0) <= WEIGHT_BAND.high, `v2 answered ${t['v2']} of ${WEIGHT_REQUESTS}`);
    });

    it('curl through the waypoint: HTTP/1.1 and h2c (--http2-prior-knowledge), routed and answered as sent', async () => {
      const h1 = await curl('-i', `http://${echoVip}:8080/v2/curl`);
      assert.equal(h1.code, 0, h1.stderr);
      assert.match(h1.stdout, /^HTTP\/1\.1 200/);
      assert.match(h1.stdout, /"version":"v2"/);
      assert.match(h1.stdout, /"protocol":"HTTP\/1\.1"/);
      const h2 = await curl('-i', '--http2-prior-knowledge', '-H', 'x-canary: yes', '--data-binary', 'hello', `http://${echoVip}:8080/h2c`);
      assert.equal(h2.code, 0, h2.stderr);
      assert.match(h2.stdout, /^HTTP\/2 200/);
      assert.match(h2.stdout, /"version":"v2"/);
      assert.match(h2.stdout, /"protocol":"HTTP\/2\.0"/);
      assert.match(h2.stdout, /"bodyBytes":5/);
    });

    it('a request to a pod IP is not routed: the pod addressed answers, the waypoint never sees it', async () => {
      const v1 = podOf('echo', 'v1');
      const marker = `/v2/pod-ip-${Date.now()}`;
      const a = await fetchOne({ url: `http://${v1.ip}:8080${marker}` });
      assert.equal(a.status, 200);
      assert.equal(body(a).version, 'v1', 'the /v2 rule would have sent it to v2');
      assert.equal(body(a).pod, v1.name);
      assert.equal(a.headers!['x-route'], undefined, 'no route filter applied');
      assert.equal(waypointLog().some((l) => l['path'] === marker), false);
      // The same path to the Service is routed.
      assert.equal(body(await fetchOne({ url: `http://${echoVip}:8080${marker}` })).version, 'v2');
    });

    describe('gRPC with grpcio through the GRPCRoute', { skip: noGrpc }, () => {
      it('unary: a header match with its RequestHeaderModifier; grpc-status, details and trailers pass', async () => {
        const canary = await grpc<{ code: string; version: string; metadata: Record<string, string>; trailers: Record<string, string> }[]>('unary', '--count', '5', '--metadata', 'x-canary=yes', '--metadata', 'x-drop=1');
        assert.deepEqual(canary.map((a) => `${a.code} ${a.version}`), Array(5).fill('OK v2'));
        // The rule's RequestHeaderModifier, as the server received the call's metadata.
        assert.equal(canary[0]!.metadata['x-route'], 'canary-header');
        assert.equal(canary[0]!.metadata['x-drop'], undefined);
        assert.match(canary[0]!.trailers['x-echo-pod']!, /^grpc-echo-v2-/);
        const failed = await grpc<{ code: string; details: string; trailers: Record<string, string> }[]>('unary', '--metadata', 'x-fail=NOT_FOUND', '--metadata', 'x-canary=yes');
        assert.equal(failed[0]!.code, 'NOT_FOUND');
        assert.match(failed[0]!.details, /failed as asked by grpc-echo-v2-/);
        assert.match(failed[0]!.trailers['x-echo-pod']!, /^grpc-echo-v2-/);
      });

      it('server streaming is routed by the method match, every message and the trailers arrive', async () => {
        const r = await grpc<{ code: string; messages: { version: string; i: number }[]; trailers: Record<string, string> }>('count', '5');
        assert.equal(r.code, 'OK');
        assert.deepEqual(r.messages.map((m) => `${m.version} ${m.i}`), ['v2 0', 'v2 1', 'v2 2', 'v2 3', 'v2 4']);
        assert.match(r.trailers['x-echo-pod']!, /^grpc-echo-v2-/);
      });

      it('bidirectional streaming: each answer comes back before the next message is sent', async () => {
        const r = await grpc<{ code: string; answers: string[] }>('chat', 'one', 'two', 'three');
        assert.equal(r.code, 'OK');
        assert.deepEqual(r.answers, ['ONE', 'TWO', 'THREE']);
      });

      it(`weights 90/10: grpc-echo-v2 answers within ${WEIGHT_BAND.low}..${WEIGHT_BAND.high} of ${WEIGHT_REQUESTS} unary calls on one channel`, async () => {
        const calls = await grpc<{ code: string; version?: string }[]>('unary', '--count', String(WEIGHT_REQUESTS));
        const t = tally(calls.map((c) => (c.code === 'OK' ? c.version! : c.code)));
        assert.equal((t['v1'] ?? 0) + (t['v2'] ?? 0), WEIGHT_REQUESTS, JSON.stringify(t));
        assert.ok((t['v2'] ?? 0) >= WEIGHT_BAND.low && (t['v2'] ?? 0) <= WEIGHT_BAND.high, `v2 answered ${t['v2']} of ${WEIGHT_REQUESTS}`);
      });

      it('L7 DENY on a gRPC call: PERMISSION_DENIED', async () => {
        const r = await grpc<{ code: string }[]>('unary', '--metadata', 'x-block=yes');
        assert.equal(r[0]!.code, 'PERMISSION_DENIED');
      });
    });

    it("the lab's Prometheus has the waypoint's request metrics with every label, valued as Istio does", async () => {
      const wanted = noGrpc ? ['echo-v2'] : ['echo-v2', 'grpc-echo-v2'];
      const series = await waitFor(async () => {
        const s = await queryLabPrometheus(LAB, `istio_requests_total{job="weft-waypoints", reporter="waypoint", source_workload="client", destination_service_name=~"${wanted.join('|')}"}`);
        return wanted.every((w) => s.some((x) => x.metric['destination_service_name'] === w)) ? s : undefined;
      }, 'Prometheus scraped the waypoint', 60_000);
      // Prometheus stores an empty label value as no label: grpc_response_status is "" on HTTP requests.
      for (const s of series) for (const label of REQUEST_LABELS) assert.ok(label in s.metric || (label === 'grpc_response_status' && s.metric['request_protocol'] === 'http'), `${label} on ${JSON.stringify(s.metric)}`);
      const http = series.find((s) => s.metric['destination_service_name'] === 'echo-v2' && s.metric['response_code'] === '200' && s.metric['request_protocol'] === 'http')!;
      assert.ok(http, JSON.stringify(series.map((s) => s.metric)));
      const want: Record<string, string> = {
        reporter: 'waypoint',
        source_workload: 'client',
        source_workload_namespace: 'default',
        source_principal: 'spiffe://cluster.local/ns/default/sa/client',
        source_app: 'client',
        source_version: 'v1',
        source_canonical_service: 'client',
        source_canonical_revision: 'v1',
        source_cluster: 'Kubernetes',
        destination_workload: 'echo-v2',
        destination_workload_namespace: 'default',
        destination_principal: 'spiffe://cluster.local/ns/default/sa/echo',
        destination_app: 'echo',
        destination_version: 'v2',
        destination_canonical_service: 'echo',
        destination_canonical_revision: 'v2',
        destination_cluster: 'Kubernetes',
        destination_service: 'echo-v2.default.svc.cluster.local',
        destination_service_name: 'echo-v2',
        destination_service_namespace: 'default',
        request_protocol: 'http',
        response_code: '200',
        grpc_response_status: '',
        response_flags: '-',
        connection_security_policy: 'mutual_tls',
      };
      assert.deepEqual(Object.fromEntries(Object.keys(want).map((k) => [k, http.metric[k] ?? ''])), want);
      const flags = await queryLabPrometheus(LAB, 'sum by (response_code, response_flags) (istio_requests_total{job="weft-waypoints", destination_service_name="echo-v1", response_code="504"})');
      assert.deepEqual(flags.map((s) => s.metric['response_flags']), ['UT'], 'the timeouts of the earlier case');
      if (!noGrpc) {
        const grpcOk = series.find((s) => s.metric['destination_service_name'] === 'grpc-echo-v2' && s.metric['grpc_response_status'] === '0');
        assert.ok(grpcOk, JSON.stringify(series.map((s) => s.metric)));
        assert.equal(grpcOk.metric['request_protocol'], 'grpc');
        assert.equal(grpcOk.metric['response_code'], '200');
        assert.equal(grpcOk.metric['destination_principal'], 'spiffe://cluster.local/ns/default/sa/grpc-echo');
        assert.ok(series.some((s) => s.metric['destination_service_name'] === 'grpc-echo-v2' && s.metric['grpc_response_status'] === '5'), 'NOT_FOUND counted as grpc_response_status 5');
      }
      for (const metric of ['istio_request_duration_milliseconds_bucket', 'istio_request_bytes_bucket', 'istio_response_bytes_bucket']) {
        const s = await queryLabPrometheus(LAB, `sum by (le) (${metric}{job="weft-waypoints", destination_service_name="echo-v2"})`);
        assert.ok(s.some((x) => x.metric['le'] === '+Inf' && x.value > 0), `${metric}: ${JSON.stringify(s)}`);
      }
    });

    it('an invalid route is refused by field, with the last good version kept in service', async () => {
      // The same route, its catch-all moved to echo-v2, and a match path the spec forbids.
      const bad = routesYaml()
        .split('\n---\n')[0]!
        .replace('value: /anything}', 'value: /anything//bad}')
        .replace(/(name: anything[\s\S]*backendRefs: \[\{name: )echo-v1/, '$1echo-v2');
      assert.notEqual(bad, routesYaml().split('\n---\n')[0]);
      let refusedByApi: unknown;
      let applied: Awaited<ReturnType<typeof apply>> | undefined;
      try {
        applied = await apply('bad-route.yaml', bad);
      } catch (err) {
        // The Kubernetes-mode API server may refuse it itself (the CRD's validation): refused by field too.
        refusedByApi = err;
      }
      if (refusedByApi !== undefined) assert.match((refusedByApi as Error).message, /spec\.rules\[13\]\.matches\[0\]\.path/);
      else {
        // `weft lab apply` says so, from the agents (they read the routes too).
        const said = (applied!.refused ?? []).find((r) => r.object === 'HTTPRoute/default/echo');
        assert.ok(said, JSON.stringify(applied));
        assert.equal(said.code, 'WEFT_ERR_ROUTE_INVALID');
        assert.match(said.reason, /spec\.rules\[13\]\.matches\[0\]\.path\.value/);
        const refusal = await waitFor(() => waypointLog().find((l) => l['code'] === 'WEFT_ERR_ROUTE_INVALID' && String(l['route']).includes('default/echo')), 'the waypoint logs the refusal', 30_000);
        assert.equal(refusal['servingLastGood'], true);
        assert.match(JSON.stringify(refusal['errors']), /spec\.rules\[13\]\.matches\[0\]\.path\.value/);
        const dump = await waypointAdmin('/config_dump');
        const rows = JSON.stringify(dump['routes']);
        assert.match(rows, /UnsupportedValue/);
        assert.match(rows, /spec\.rules\[13\]\.matches\[0\]\.path\.value/);
        // And as the operator reads it: `weft status routes` against the waypoint's admin API.
        const netns = status.pods.find((p) => p.name === waypointPod)!.netns;
        const shown = execFileSync(process.execPath, [join(REPO_DIR, 'dist', 'agent', 'cli', 'main.js'), 'status', 'routes', '--admin', DEFAULT_ADMIN_ADDRESS, '--netns', `/run/netns/${netns}`], { encoding: 'utf8', timeout: 30_000 });
        const line = shown.split('\n').find((l) => l.includes('default/echo') && l.includes('UnsupportedValue'));
        assert.ok(line, shown);
      }
      // Still the last good version: the catch-all answers from v1 with its response header.
      const a = await fetchOne({ url: `http://${echoVip}:8080/anything` });
      assert.equal(body(a).version, 'v1');
      assert.equal(a.headers!['x-route'], 'anything');
      // Fixed: the good routes again.
      await apply('routes.yaml', routesYaml());
    });

    it('removing weft.dev/use-waypoint returns echo to L4 at once; labelling it again routes it again', async () => {
      await apply('echo-l4.yaml', echoServiceYaml(false));
      const marker = `/v2/l4-${Date.now()}`;
      const a = await fetchOne({ url: `http://${echoVip}:8080${marker}` });
      assert.equal(a.status, 200, JSON.stringify(a));
      assert.equal(a.headers!['x-route'], undefined, 'no route filter: not through the waypoint');
      assert.equal(waypointLog().some((l) => l['path'] === marker), false);
      // L4 balances connections over both versions of echo, regardless of the path.
      const seen = new Set(await versions(`http://${echoVip}:8080/v2/l4`, 20));
      assert.deepEqual([...seen].sort(), ['v1', 'v2']);
      await apply('echo-waypoint.yaml', echoServiceYaml(true));
      await waitFor(async () => (await versions(`http://${echoVip}:8080/v2/again`, 5)).every((v) => v === 'v2'), 'routed through the waypoint again', 30_000);
      assert.equal((await fetchOne({ url: `http://${echoVip}:8080/anything` })).headers!['x-route'], 'anything');
    });

    it('a waypoint that is down: the connection is refused with the reason logged, never sent around it', async () => {
      // The pids as they are now: a pid read at the suite's start may have been reused since.
      status = await labStatus(LAB);
      const wp = status.pods.find((p) => p.namespace === 'default' && p.labels[GATEWAY_NAME_LABEL] === 'waypoint' && p.running)!;
      assert.ok(wp !== undefined, 'a running waypoint pod to kill');
      const killedAt = Date.now();
      for (const c of wp.containers) if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
      const marker = `/anything/down-${Date.now()}`;
      const a = await fetchOne({ url: `http://${echoVip}:8080${marker}`, timeoutMs: 5000 });
      assert.ok(a.error !== undefined, `answered while the waypoint was down: ${JSON.stringify(a)}`);
      for (const v of ['v1', 'v2']) assert.equal(podLog(podOf('echo', v).name).some((l) => l['path'] === marker), false, `echo-${v} got the request`);
      const clientNode = podOf('client').node;
      // Refused from the model (no ready waypoint pod: WEFT_ERR_WAYPOINT_UNAVAILABLE) or, before the
      // model says so, by the tunnel to the dead pod failing: either way a warning naming the waypoint.
      const reason = await waitFor(
        () => accessLog(LAB, clientNode).find((l) => Date.parse(String(l['time'])) >= killedAt && (l['code'] === 'WEFT_ERR_WAYPOINT_UNAVAILABLE' || l['msg'] === 'outbound: HBONE tunnel failed; connection reset')),
        'the agent logs why the connection was refused',
        20_000,
      );
      assert.equal(reason['level'], 40, JSON.stringify(reason));
      assert.match(JSON.stringify(reason), /default\/waypoint/);
    });
  });
}

