/**
 * apps/v1 Deployments as the lab runs them (both modes): a Deployment is expanded into its pods,
 * named as Kubernetes names them, `<deployment>-<pod-template-hash>-<suffix>`. Pure.
 * - The template hash is of the pod template (what Kubernetes' ReplicaSet names carry), so a
 *   changed template gives new pod names, and an unchanged one the same names: the lab then keeps
 *   those pods running.
 * - The suffix is derived from the hash and the replica's index, so names are stable across
 *   `apply`s; scaling down removes the highest indexes.
 * - Placement: `spec.template.spec.nodeName` when set (all replicas there), else replica i goes to
 *   nodes[(offset + i) % nodes.length], offset from the Deployment's name: deterministic, and
 *   replicas spread over the lab's nodes.
 * There are no ReplicaSets: the pods are owned by the Deployment directly (the lab's only
 * controller of them), and carry `pod-template-hash` as Kubernetes' do.
 */
import { createHash } from 'node:crypto';
import { validateDocument } from '../discovery/manifest.js';
import type { KubeObject, PodObject } from '../discovery/types.js';
import { stableJson } from './spec.js';

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** Kubernetes' rand.SafeEncodeString alphabet (no vowels, no 0/1/3: no words, no look-alikes). */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export interface DeploymentObject extends KubeObject {
  kind: 'Deployment';
  spec: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: PodObject['spec'] & Record<string, unknown> };
  };
}

export function isDeployment(o: KubeObject): o is DeploymentObject {
  return o.kind === 'Deployment' && o.apiVersion === 'apps/v1';
}

/** The Deployment's parts the lab uses, checked; or why it cannot run. */
export interface DeploymentPlan {
  name: string;
  namespace: string;
  replicas: number;
  selector: Record<string, string>;
  hash: string;
  template: NonNullable<DeploymentObject['spec']['template']>;
}

export function planDeployment(o: DeploymentObject): { plan: DeploymentPlan } | { problem: string } {
  const spec = (o as { spec?: DeploymentObject['spec'] }).spec;
  if (typeof spec !== 'object' || spec === null) return { problem: 'spec: required' };
  const replicas = spec.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0) return { problem: `spec.replicas: must be a whole number >= 0, not ${String(replicas)}` };
  if (spec.selector?.matchExpressions !== undefined && spec.selector.matchExpressions.length > 0) {
    return { problem: 'spec.selector.matchExpressions: not supported by the lab (use matchLabels)' };
  }
  const selector = spec.selector?.matchLabels;
  if (selector === undefined || Object.keys(selector).length === 0) return { problem: 'spec.selector.matchLabels: required (a Deployment must select its pods)' };
  const template = spec.template;
  if (template?.spec === undefined) return { problem: 'spec.template.spec: required' };
  const labels = template.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(selector)) {
    if (labels[k] !== v) return { problem: `spec.template.metadata.labels: must match spec.selector (${k}=${v} is missing), as the API server requires` };
  }
  return { plan: { name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', replicas, selector, hash: templateHash(template), template } };
}

/** 10 characters of the safe alphabet, from the template as JSON with sorted keys. */
export function templateHash(template: unknown): string {
  return safeEncode(createHash('sha256').update(stableJson(template)).digest(), 10);
}

function safeEncode(bytes: Buffer, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += SAFE_ALPHABET[bytes[i]! % SAFE_ALPHABET.length];
  return out;
}

export function deploymentPodName(deployment: string, hash: string, index: number): string {
  const suffix = safeEncode(createHash('sha256').update(`${deployment}/${hash}/${index}`).digest(), 5);
  return `${deployment}-${hash}-${suffix}`;
}

/** The node of replica `index` (see the module comment); `nodes` sorted, non-empty. */
export function placeReplica(plan: Pick<DeploymentPlan, 'name' | 'namespace' | 'template'>, index: number, nodes: readonly string[]): string {
  const pinned = plan.template.spec?.nodeName;
  if (pinned !== undefined) return pinned;
  const offset = createHash('sha256').update(`${plan.namespace}/${plan.name}`).digest().readUInt32BE(0);
  return nodes[(offset + index) % nodes.length]!;
}

/**
 * The Pod objects of a Deployment (checked as any Pod of the manifests is), or the first problem.
 * `owner` is set as the pods' controller reference (Kubernetes mode passes the Deployment's uid).
 */
export function deploymentPods(
  plan: DeploymentPlan,
  nodes: readonly string[],
  owner: { apiVersion: string; kind: string; name: string; uid?: string },
): { pods: PodObject[] } | { problem: string } {
  const pods: PodObject[] = [];
  for (let i = 0; i < plan.replicas; i++) {
    const name = deploymentPodName(plan.name, plan.hash, i);
    const raw = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...plan.template.metadata,
        name,
        namespace: plan.namespace,
        labels: { ...plan.template.metadata?.labels, [POD_TEMPLATE_HASH_LABEL]: plan.hash },
        ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...plan.template.spec, nodeName: placeReplica(plan, i, nodes) },
    };
    const checked = validateDocument(raw);
    if ('problem' in checked) return { problem: `spec.template: ${checked.problem.text}` };
    pods.push(checked.object as PodObject);
  }
  return { pods };
}

/** Node names a Deployment pins its pods to (spreading ones name none). */
export function pinnedNode(o: DeploymentObject): string | undefined {
  return o.spec?.template?.spec?.nodeName;
}

