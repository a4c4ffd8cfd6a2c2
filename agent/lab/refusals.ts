/**
 * After `weft lab apply` converged: what the agents refuse. Each agent's admin API lists its
 * refusals (discovery input it could not take, policies that do not validate); they are read
 * once the agent has read the manifests this apply wrote, so a refused policy is reported by
 * the command that applied it, not only in the agent's log.
 */
import { fetchAdmin } from '../admin/client.js';
import type { Refusal } from '../discovery/types.js';
import type { ManifestObject } from '../discovery/types.js';
import type { AgentRefusal } from './converge.js';
import { manifestFileName } from './manifests.js';
import { refAlive } from './procs.js';
import type { LabState } from './state.js';
import { DEFAULT_ADMIN_ADDRESS } from '../config.js';

const POLL_MS = 25;

export interface RefusalsResponse {
  readStartedAt?: number;
  resourceVersions?: Record<string, string>;
  refusals?: Refusal[];
}

/**
 * Refusals of every running agent, read once its last completed scan began after
 * `publishedAt`. Agents that do not answer in time are skipped (their capture was already
 * waited for; a slow re-scan is no reason to fail an apply that worked).
 */
export async function collectRefusals(state: LabState, publishedAt: number, timeoutMs: number): Promise<AgentRefusal[]> {
  return collectRefusalsWhen(state.nodes.filter((n) => refAlive(n.agent)), (answer) => (answer.readStartedAt ?? 0) >= publishedAt, timeoutMs);
}

/**
 * Kubernetes mode: refusals once each agent's watches have seen, per kind, at least the given
 * resourceVersion (the lab's API server numbers them).
 */
export function collectRefusalsAfter(nodes: readonly { name: string; netns: string }[], seen: Record<string, number>, timeoutMs: number): Promise<AgentRefusal[]> {
  return collectRefusalsWhen(nodes, (answer) => Object.entries(seen).every(([kind, rv]) => Number(answer.resourceVersions?.[kind] ?? 0) >= rv), timeoutMs);
}

async function collectRefusalsWhen(nodes: readonly { name: string; netns: string }[], caughtUp: (answer: RefusalsResponse) => boolean, timeoutMs: number): Promise<AgentRefusal[]> {
  const deadline = Date.now() + timeoutMs;
  const out: AgentRefusal[] = [];
  for (const node of nodes) {
    for (;;) {
      let answer: RefusalsResponse | undefined;
      try {
        answer = (await fetchAdmin({ label: `agent of ${node.name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${node.netns}` }, '/refusals')) as RefusalsResponse;
      } catch {
        answer = undefined;
      }
      if (answer !== undefined && caughtUp(answer)) {
        for (const r of answer.refusals ?? []) out.push({ node: node.name, object: r.object, code: r.code, reason: r.reason });
        break;
      }
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
  return out;
}

/** The names a refusal may give an object: its lab manifest file, `Kind/ns/name`, `Kind ns/name`. */
export function refusalNames(o: ManifestObject): string[] {
  const ns = o.metadata.namespace ?? 'default';
  return [manifestFileName(o), `${o.kind}/${ns}/${o.metadata.name}`, `${o.kind} ${ns}/${o.metadata.name}`];
}

/** One line per refused object (the same refusal from several agents is said once, with the nodes). */
export function formatRefusals(refused: readonly AgentRefusal[]): string[] {
  const byText = new Map<string, string[]>();
  for (const r of refused) {
    const text = `${r.object} refused by the agents (${r.code}): ${r.reason}`;
    const nodes = byText.get(text);
    if (nodes === undefined) byText.set(text, [r.node]);
    else nodes.push(r.node);
  }
  return [...byText].map(([text, nodes]) => `${text} [${nodes.join(', ')}]`);
}
