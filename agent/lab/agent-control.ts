/**
 * Process control a test needs to take the mesh's parts away and back:
 *   labRestartAgent  a node's agent handed over to a new one as a DaemonSet rollout with
 *                    `maxSurge: 1, maxUnavailable: 0` does: the new agent starts beside the old
 *                    one (SO_REUSEPORT everywhere), and only once it listens in every meshed pod
 *                    of the node does the old one get SIGTERM (it drains, then exits). When the
 *                    old agent is not running (killed), the new one just starts.
 *   labStopCa / labStartCa  the CA goes and comes back; `apply` leaves a stopped CA stopped.
 */
import { fetchAdmin } from '../admin/client.js';
import { WeftError } from '../errors.js';
import { checkLabName, DEFAULT_LAB_NAME } from './paths.js';
import { refAlive, stopProcesses, type ProcRef } from './procs.js';
import { startAgent } from './converge.js';
import { startLabCa } from './ca.js';
import { readState, withLabLock, writeState, type LabState, type NodeState } from './state.js';
import { DEFAULT_ADMIN_ADDRESS } from '../config.js';

export interface RestartAgentResult {
  node: string;
  /** The agent that was replaced (undefined when none ran). */
  oldPid: number | undefined;
  newPid: number;
  /** How long the new agent took to listen in every meshed pod of the node. */
  readyMs: number;
}

interface DumpWorkload {
  key: string;
  node: string;
  inMesh: boolean;
  captured: boolean;
}

const POLL_MS = 25;

async function requireLab(name: string): Promise<LabState> {
  const state = await readState(name);
  if (state === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${name} is not up: run weft lab up --name ${name}`);
  if (!state.agents) throw new WeftError('WEFT_ERR_LAB', `lab ${name} runs without agents (up --no-agents)`);
  return state;
}

/**
 * Both agents listen on the node's admin port during a handover: each request reaches one of
 * them. Polls until the one that answers is `pid` and it has captured every meshed pod of its
 * node.
 */
async function waitAgentReady(state: LabState, node: NodeState, ref: ProcRef, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  const want = state.pods.filter((p) => p.node === node.name).map((p) => `${p.namespace}/${p.name}`);
  for (;;) {
    if (!refAlive(ref)) throw new WeftError('WEFT_ERR_LAB', `the new agent of node ${node.name} exited before it was ready (see ${node.agentLog})`);
    try {
      const dump = (await fetchAdmin({ label: `agent of ${node.name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${node.netns}` }, '/config_dump')) as { pid?: number; ready?: boolean; workloads?: DumpWorkload[] };
      if (dump.pid === ref.pid) {
        const byKey = new Map((dump.workloads ?? []).map((w) => [w.key, w]));
        const lagging = want.filter((k) => {
          const w = byKey.get(k);
          return w === undefined || w.inMesh !== w.captured;
        });
        if (dump.ready === true && lagging.length === 0) return;
        last = dump.ready !== true ? 'not ready' : `not captured yet: ${lagging.join(', ')}`;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `the new agent of node ${node.name} was not ready within ${timeoutMs} ms (${last}); the old one serves on`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function labRestartAgent(options: { name?: string; node: string; readyTimeoutMs?: number }): Promise<RestartAgentResult> {
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  return withLabLock(name, async () => {
    const state = await requireLab(name);
    const node = state.nodes.find((n) => n.name === options.node);
    if (node === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${name} has no node ${options.node} (nodes: ${state.nodes.map((n) => n.name).join(', ')})`);
    const old = refAlive(node.agent) ? node.agent : undefined;
    const started = Date.now();
    const next = await startAgent(state, node);
    if (next === undefined) throw new WeftError('WEFT_ERR_LAB', `the agent of node ${node.name} did not start`);
    try {
      await waitAgentReady(state, node, next, options.readyTimeoutMs ?? 20_000);
    } catch (err) {
      await stopProcesses([next], [], 1_000);
      throw err;
    }
    const readyMs = Date.now() - started;
    node.agent = next;
    await writeState(state);
    // SIGTERM only: the old agent drains on its own and exits by its deadline (`down` kills
    // whatever still runs in the node's namespace).
    if (old !== undefined) {
      try {
        process.kill(old.pid, 'SIGTERM');
      } catch {
        // it went away by itself meanwhile
      }
    }
    return { node: node.name, oldPid: old?.pid, newPid: next.pid, readyMs };
  });
}

export async function labStopCa(options: { name?: string } = {}): Promise<{ stopped: boolean }> {
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  return withLabLock(name, async () => {
    const state = await requireLab(name);
    const running = refAlive(state.ca);
    if (state.ca !== undefined) await stopProcesses([state.ca], [], 3_000);
    state.caStopped = true;
    await writeState(state);
    return { stopped: running };
  });
}

export async function labStartCa(options: { name?: string } = {}): Promise<{ started: boolean; pid: number }> {
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  return withLabLock(name, async () => {
    const state = await requireLab(name);
    if (refAlive(state.ca)) return { started: false, pid: state.ca!.pid };
    state.ca = await startLabCa(state);
    state.caStopped = false;
    await writeState(state);
    return { started: true, pid: state.ca.pid };
  });
}
