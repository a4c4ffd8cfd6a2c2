// examples/httpbin as a lab (root, no agents): Istio's httpbin and fortio manifests apply as they
// are (no namespace: `default`), httpbin answers through its Service (8000 -> 8080) to the
// fortio pod, which runs bookinfo's load tool with the concurrency the circuit-breaking task uses.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDown, labExec, labStatus, labUp } from '../../agent/lab/index.js';
import { REPO_DIR } from '../../agent/lab/paths.js';

const LAB = 'labd2';
const DIR = join(REPO_DIR, 'examples', 'httpbin');

describe('examples/httpbin in the lab', () => {
  before(async () => {
    await labDown({ name: LAB });
    await labUp({ name: LAB, dir: DIR, startAgents: false });
  });

  after(async () => {
    await labDown({ name: LAB });
  });

  it('runs httpbin and fortio as Deployments in default; fortio reaches httpbin:8000 with concurrency 2', async () => {
    const status = await labStatus(LAB);
    assert.deepEqual(status.deployments.map((d) => [d.name, d.ready]).sort(), [['fortio-deploy', 1], ['httpbin', 1]]);
    // deploy/NAME picks a running pod of the Deployment, as kubectl exec does.
    const r = await labExec({ name: LAB, pod: 'deploy/fortio-deploy', command: ['node', '../bookinfo/app/load.mjs', 'http://httpbin:8000/get', '--count', '20', '--concurrency', '2', '--keepalive', '--deadline-ms', '20000'], timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const summary = JSON.parse(r.stdout) as { ok: number; statuses: Record<string, number>; sample: { url: string; headers: Record<string, string[]> } };
    assert.deepEqual(summary.statuses, { 200: 20 });
    assert.match(summary.sample.url, /^http:\/\/httpbin:8000\/get$/);
    assert.deepEqual(summary.sample.headers['Host'], ['httpbin:8000']);
  });

  it('exec deploy/NAME refuses a Deployment that is not there', async () => {
    await assert.rejects(labExec({ name: LAB, pod: 'deploy/nope', command: ['true'] }), { code: 'WEFT_ERR_LAB_NOT_FOUND', message: /no deployment default\/nope/ });
    const status = await labStatus(LAB);
    const httpbin = status.pods.find((p) => p.labels['app'] === 'httpbin')!;
    const r = await labExec({ name: LAB, pod: 'deploy/httpbin', command: ['sh', '-c', 'echo $POD_NAME'] });
    assert.equal(r.stdout.trim(), httpbin.name);
  });

  it('applies again unchanged (the sample manifests are idempotent)', async () => {
    const result = await labApply({ name: LAB, file: join(DIR, 'httpbin.yaml') });
    assert.deepEqual(result.created, []);
    assert.deepEqual(result.configured, []);
  });
});
