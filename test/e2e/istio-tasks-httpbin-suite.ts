/**
 * Istio's httpbin traffic-management tasks as their pages describe them, on a lab built from
 * examples/httpbin (root; lab `tasks2` on the local source, istio-tasks-httpbin.test.ts, and
 * `ktasks2` in Kubernetes mode, istio-tasks-httpbin-kubernetes.test.ts, Istio's CRDs installed
 * and every manifest applied with the real kubectl; Istio's httpbin and fortio samples in `default`) with
 * Istio's ambient waypoint (`waypoint`, class istio-waypoint, the namespace labelled
 * istio.io/use-waypoint):
 * - circuit breaking: the DestinationRule (maxConnections 1, http1MaxPendingRequests 1,
 *   maxRequestsPerConnection 1, outlierDetection) trips for fortio's `load -c 3 -qps 0 -n 30`:
 *   some calls get 503, and the waypoint counts exactly those with response_flags UO;
 * - mirroring: with all of httpbin to v1, only httpbin-v1 logs the requests; with v2 mirrored
 *   100 %, httpbin-v2 logs each of them too, with the Host `httpbin-shadow:8000`, and the client
 *   only ever sees v1's answers.
 * One lab for the file; each task deletes what it applied.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labDown, labExec, labStatus, labUp } from '../../agent/lab/index.js';
import { podLogFile, REPO_DIR } from '../../agent/lab/paths.js';
import { waitFor } from '../helpers/wait.js';
import { applyFile, applyFixtures, deleteFile, deleteFixtures, enrollWaypoint, requestLines, requestsTotal, seriesOf, waypointMetrics, installIstioCrds, rolledOut, type TaskLab } from './istio-tasks-helpers.js';

/** The httpbin tasks on `LAB` (istio-tasks-httpbin.test.ts: local source; -kubernetes: Kubernetes mode). */
export function httpbinTasksSuite(LAB: TaskLab): void {
  const DIR = join(REPO_DIR, 'examples', 'httpbin');
  let waypointPod = '';

  /** fortio's JSON result, the fields the task reads. */
  interface FortioResult {
    RetCodes: Record<string, number>;
    DurationHistogram: { Count: number };
  }

  /** `fortio load ARGS` in the fortio pod (examples/loadclient/fortio.mjs), as the task runs it. */
  async function fortio(args: string[]): Promise<FortioResult> {
    const r = await labExec({ name: LAB.name, pod: 'deploy/fortio-deploy', command: ['node', '../loadclient/fortio.mjs', 'load', ...args, '-json', '-'], timeoutMs: 60_000 });
    try {
      return JSON.parse(r.stdout) as FortioResult;
    } catch {
      throw new Error(`fortio printed no result (exit ${r.code}): ${r.stderr || r.stdout}`);
    }
  }

  function uoCount(text: string): number {
    return requestsTotal(text, { reporter: 'waypoint', destination_service_name: 'httpbin', response_code: '503', response_flags: 'UO' });
  }

  describe(`Istio httpbin tasks on the waypoint${LAB.kubernetes ? ' (Kubernetes mode, kubectl)' : ''}`, () => {
    before(async () => {
      await labDown({ name: LAB.name });
      await labUp({ name: LAB.name, dir: DIR, kubernetes: LAB.kubernetes });
      // Kubernetes mode: Istio's CRDs first, as on a cluster without Istio (the agents and the waypoint watch the kinds once served).
      installIstioCrds(LAB);
      waypointPod = await enrollWaypoint(LAB);
      // httpbin answers through the waypoint (its metrics count the call).
      await waitFor(async () => {
        const r = await fortio(['-c', '1', '-qps', '0', '-n', '1', 'http://httpbin:8000/get']);
        return r.RetCodes['200'] === 1 && requestsTotal(await waypointMetrics(LAB, waypointPod), { reporter: 'waypoint', destination_service_name: 'httpbin', response_code: '200' }) > 0;
      }, 'httpbin answers through the waypoint', 60_000);
    });

    after(async () => {
      await labDown({ name: LAB.name });
    });

    it('circuit breaking: with maxConnections 1 and http1MaxPendingRequests 1, fortio -c 3 -n 30 gets some 503s, each counted with response_flags UO', async () => {
      await applyFixtures(LAB, 'httpbin-circuit-breaker-destination-rule.yaml');
      try {
        // The agents and the waypoint read the DestinationRule: the first overflow shows it took effect.
        await waitFor(async () => ((await fortio(['-c', '3', '-qps', '0', '-n', '30', 'http://httpbin:8000/get'])).RetCodes['503'] ?? 0) > 0, 'the circuit breaker trips for 3 connections', 60_000);
        // "Pass in -curl to indicate that you just want to make one call": it succeeds.
        const one = await labExec({ name: LAB.name, pod: 'deploy/fortio-deploy', command: ['node', '../loadclient/fortio.mjs', 'load', '-curl', 'http://httpbin:8000/get'], timeoutMs: 30_000 });
        assert.match(one.stdout, /^HTTP\/1\.1 200 OK\n/, one.stdout + one.stderr);
        assert.match(one.stdout, /"url": "http:\/\/httpbin:8000\/get"/);
        // "-c 2 -n 20: almost all requests made it through".
        const two = await fortio(['-c', '2', '-qps', '0', '-n', '20', '-loglevel', 'Warning', 'http://httpbin:8000/get']);
        assert.equal(two.DurationHistogram.Count, 20);
        assert.ok((two.RetCodes['200'] ?? 0) > 0, JSON.stringify(two.RetCodes));
        const before = uoCount(await waypointMetrics(LAB, waypointPod));
        const three = await fortio(['-c', '3', '-qps', '0', '-n', '30', '-loglevel', 'Warning', 'http://httpbin:8000/get']);
        assert.equal(three.DurationHistogram.Count, 30);
        assert.deepEqual(Object.keys(three.RetCodes).sort(), ['200', '503'], `only 200 and 503: ${JSON.stringify(three.RetCodes)}`);
        assert.ok(three.RetCodes['200']! > 0 && three.RetCodes['503']! > 0, JSON.stringify(three.RetCodes));
        const text = await waypointMetrics(LAB, waypointPod);
        assert.equal(uoCount(text) - before, three.RetCodes['503'], `every 503 of the run has flag UO (upstream overflow): ${requestLines(text)}`);
        // Overflows are the waypoint's own answers, not the endpoint's: outlier detection (consecutive5xxErrors 1) ejects nothing.
        const uh = seriesOf(text, 'istio_requests_total').filter((s) => s.labels['destination_service_name'] === 'httpbin' && s.labels['response_flags'] === 'UH');
        assert.deepEqual(uh, [], 'no "no healthy upstream" answers');
      } finally {
        await deleteFixtures(LAB, 'httpbin-circuit-breaker-destination-rule.yaml');
      }
    });

    it('mirroring: all to v1, only v1 logs the requests; with v2 mirrored 100 %, v2 logs each one too, with Host httpbin-shadow:8000', async () => {
      // The task's own httpbin-v1, httpbin-v2 and curl in place of samples/httpbin's Deployment.
      await deleteFile(LAB, join(DIR, 'httpbin.yaml'));
      await applyFile(LAB, join(DIR, 'mirroring'));
      await rolledOut(LAB, ['httpbin-v1', 'httpbin-v2', 'curl']);
      const status = await labStatus(LAB.name);
      const pod = (version: string): string => {
        const p = status.pods.find((x) => x.namespace === 'default' && x.labels['app'] === 'httpbin' && x.labels['version'] === version && x.running);
        assert.ok(p, `a running httpbin ${version} pod`);
        return p.name;
      };
      const v1 = pod('v1');
      const v2 = pod('v2');
      /** The access-log lines of a pod for requests of one batch (a query that names it). */
      const logged = (name: string, batch: string): string[] => {
        const file = podLogFile(LAB.name, 'default', name);
        return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(`uri="/headers?batch=${batch}"`)) : [];
      };
      let batches = 0;
      /** `count` requests as the task sends them (`curl -sS http://httpbin:8000/headers`), tagged with a batch; returns the batch and the answers. */
      const send = async (count: number): Promise<{ batch: string; hosts: string[] }> => {
        const batch = `b${++batches}`;
        const script = `for i in $(seq ${count}); do curl -sS -m 5 "http://httpbin:8000/headers?batch=${batch}" | tr -d '\\n' | sed 's/.*"Host": *\\[ *"\\([^"]*\\)".*/\\1/'; echo; done`;
        const r = await labExec({ name: LAB.name, pod: 'deploy/curl', command: ['sh', '-c', script], timeoutMs: 60_000 });
        const hosts = r.stdout.split('\n').filter((l) => l !== '');
        return { batch, hosts };
      };
      try {
        await applyFixtures(LAB, 'httpbin-mirror-all-v1.yaml');
        await waitFor(async () => {
          const { batch } = await send(4);
          return logged(v1, batch).length === 4 && logged(v2, batch).length === 0;
        }, 'every request goes to httpbin-v1', 60_000);
        const plain = await send(10);
        assert.deepEqual(plain.hosts, Array(10).fill('httpbin:8000'), 'the client sees its own Host echoed');
        assert.equal(logged(v1, plain.batch).length, 10, 'v1 logged every request');
        assert.equal(logged(v2, plain.batch).length, 0, 'v2 logged none');

        await applyFixtures(LAB, 'httpbin-mirror.yaml');
        await waitFor(async () => {
          const { batch } = await send(2);
          return waitFor(() => logged(v2, batch).length === 2, 'mirrored', 5000).catch(() => false);
        }, 'requests are mirrored to httpbin-v2', 60_000);
        const mirrored = await send(10);
        assert.deepEqual(mirrored.hosts, Array(10).fill('httpbin:8000'), "the client gets v1's answers (the mirror's are discarded)");
        assert.equal(logged(v1, mirrored.batch).length, 10, 'v1 still answers every request');
        // Fire and forget: v2's copies may log a little after the client's answers.
        await waitFor(() => logged(v2, mirrored.batch).length === 10, 'httpbin-v2 logged the 10 mirrored requests', 15_000);
        for (const line of logged(v2, mirrored.batch)) assert.match(line, /status=200 method="GET" .* host="httpbin-shadow:8000"$/);
        for (const line of logged(v1, mirrored.batch)) assert.match(line, /host="httpbin:8000"$/);
        const text = await waypointMetrics(LAB, waypointPod);
        assert.ok(seriesOf(text, 'istio_requests_total').some((s) => s.labels['destination_version'] === 'v1' && s.labels['destination_service_name'] === 'httpbin'), requestLines(text));
      } finally {
        await deleteFixtures(LAB, 'httpbin-mirror.yaml');
      }
    });
  });
}
