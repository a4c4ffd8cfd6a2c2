/**
 * Ambient meshes guarantee that a meshed pod is captured before it serves (the CNI sets up
 * in-pod redirection first). The lab gives the same guarantee at the end of `up` and `apply`:
 * it waits until every running agent reports each pod of its node captured when the manifests
 * put it in the mesh, and released when they do not. Otherwise the first meshed connection
 * after `up` could reach a destination whose agent has not opened 15008 yet.
 */
import { fetchAdmin } from '../admin/client.js';
import { WeftError } from '../errors.js';
import { refAlive } from './procs.js';
import type { LabState } from './state.js';
import { DEFAULT_ADMIN_ADDRESS } from '../config.js';

interface DumpWorkload {
  key: string;
  ip: string;
  node: string;
  inMesh: boolean;
  captured: boolean;
}

const POLL_MS = 25;

export async function waitForCapture(state: LabState, timeoutMs: number): Promise<void> {
  await waitForCaptureOf(
    state.nodes.filter((n) => refAlive(n.agent)),
    state.pods,
    timeoutMs,
    state.nodes[0]?.agentLog ?? 'the logs directory',
  );
}

/** The same wait for any nodes (with an agent) and pods: the Kubernetes-mode lab's come from its API. */
export async function waitForCaptureOf(
  nodes: readonly { name: string; netns: string }[],
  pods: readonly { namespace: string; name: string; node: string; ip: string }[],
  timeoutMs: number,
  logHint: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Map(nodes.map((n) => [n.name, n]));
  let lastProblem = '';
  while (pending.size > 0) {
    for (const [name, node] of pending) {
      const want = pods.filter((p) => p.node === name);
      try {
        const dump = (await fetchAdmin({ label: `agent of ${name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${node.netns}` }, '/config_dump')) as { workloads?: DumpWorkload[] };
        const byKey = new Map((dump.workloads ?? []).map((w) => [w.key, w]));
        const lagging = want.filter((p) => {
          const w = byKey.get(`${p.namespace}/${p.name}`);
          return !w || w.ip !== p.ip || w.captured !== w.inMesh;
        });
        if (lagging.length === 0) pending.delete(name);
        else lastProblem = `agent of ${name} has not caught up with ${lagging.map((p) => `${p.namespace}/${p.name}`).join(', ')}`;
      } catch (err) {
        lastProblem = (err as Error).message;
      }
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      throw new WeftError('WEFT_ERR_LAB', `the agents did not capture the meshed pods within ${timeoutMs} ms: ${lastProblem} (see the agent logs in ${logHint})`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
