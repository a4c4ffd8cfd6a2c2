/**
 * The agent's readiness and pods it fails to capture (docs/architecture.md listed the gap: the
 * probe said ready after the first pass even when a meshed pod of its node was not captured, so
 * a DaemonSet rollout went on while that pod ran unprotected). Now readiness is false, naming
 * the pod and the reason, while such a pod's capture keeps failing; it comes back once the pod
 * is captured or leaves. The pod here has an IP no network namespace holds
 * (WEFT_ERR_NETNS_NOT_FOUND): nothing is created in the machine's namespaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { silentLogger } from '../../agent/log.js';
import { waitFor } from '../helpers/wait.js';

const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {weft.dev/mesh: enabled}\n';
const POD = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  nodeName: kstat-n1\n  containers: [{name: app}]\nstatus:\n  podIP: 198.18.140.77\n  phase: Running\n';

test('a meshed pod of the node that cannot be captured makes the agent not ready, with the pod and the reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-kstat-readiness-'));
  // Only namespaces with this prefix are looked at: none exists, so the pod's is never found.
  const agent = new Agent({ nodeName: 'kstat-n1', manifestsDir: dir, logger: silentLogger, podNetnsPrefix: 'kstat-none-', adminAddress: '', captureReadyGraceMs: 0 });
  try {
    writeFileSync(join(dir, 'ns.yaml'), NAMESPACE);
    writeFileSync(join(dir, 'pod.yaml'), POD);
    await agent.start();
    const reason = agent.readiness();
    assert.equal(typeof reason, 'string', 'not ready while shop/cart is not captured');
    assert.match(reason as string, /1 pod\(s\) not captured: shop\/cart/);
    assert.match(reason as string, /WEFT_ERR_NETNS_NOT_FOUND/);
    // The pod leaves the mesh: nothing to capture, ready again.
    writeFileSync(join(dir, 'ns.yaml'), NAMESPACE.replace('enabled', 'disabled'));
    await waitFor(() => agent.readiness() === true || undefined, 'ready once the pod is out of the mesh');
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
