/**
 * Kubernetes mode: the Deployment controller role (kube-controller-manager's, plus the
 * scheduler's placement), as an ordinary API client. For every apps/v1 Deployment it keeps the
 * pods deployments.ts names and places (`<deployment>-<pod-template-hash>-<suffix>`, owned by the
 * Deployment, so deleting it deletes them through the API server's garbage collector):
 * - missing pods of the current template are created (scaling up, a replaced or crashed pod);
 * - pods of an older template, and replicas beyond spec.replicas, are deleted only once every
 *   pod of the current template is Ready: a changed template starts the new pods first, so a
 *   Service keeps endpoints throughout (as maxSurge 100 %, maxUnavailable 0 would);
 * - status (replicas, updatedReplicas, readyReplicas, availableReplicas, Available) is written.
 * There are no ReplicaSets (the lab's only controller of these pods is this one).
 */
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment, type V1Node, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { KubeObject } from '../discovery/types.js';
import { deploymentPods, planDeployment, POD_TEMPLATE_HASH_LABEL, type DeploymentObject } from './deployments.js';
import { podReady } from './endpointslice-controller.js';
import { LabInformer, serialized } from './kube-informer.js';
import { stableJson } from './spec.js';

export function ownedBy(pod: V1Pod, uid: string | undefined): boolean {
  return uid !== undefined && (pod.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

/** What the controller does for one Deployment (pure, for tests): pods to create and to delete, and its status. */
export function rollout(deployment: V1Deployment, pods: readonly V1Pod[], nodes: readonly string[]): { create: V1Pod[]; remove: string[]; status: Record<string, unknown> } | { problem: string } {
  const planned = planDeployment(deployment as unknown as DeploymentObject);
  if ('problem' in planned) return planned;
  const plan = planned.plan;
  const uid = deployment.metadata?.uid;
  const made = deploymentPods(plan, nodes.length > 0 ? nodes : ['node-1'], { apiVersion: 'apps/v1', kind: 'Deployment', name: plan.name, ...(uid !== undefined ? { uid } : {}) });
  if ('problem' in made) return made;
  const mine = pods.filter((p) => ownedBy(p, uid));
  const byName = new Map(mine.map((p) => [p.metadata?.name ?? '', p]));
  const wanted = new Set(made.pods.map((p) => p.metadata.name));
  const create = made.pods.filter((p) => !byName.has(p.metadata.name)) as unknown as V1Pod[];
  const current = made.pods.map((p) => byName.get(p.metadata.name)).filter((p): p is V1Pod => p !== undefined);
  const ready = current.filter((p) => podReady(p) && p.metadata?.deletionTimestamp === undefined).length;
  const settled = create.length === 0 && ready === plan.replicas;
  const remove = settled ? mine.filter((p) => !wanted.has(p.metadata?.name ?? '') && p.metadata?.deletionTimestamp === undefined).map((p) => p.metadata?.name ?? '') : [];
  const updated = mine.filter((p) => p.metadata?.labels?.[POD_TEMPLATE_HASH_LABEL] === plan.hash).length;
  const status = {
    observedGeneration: deployment.metadata?.generation ?? 1,
    replicas: mine.filter((p) => p.metadata?.deletionTimestamp === undefined).length,
    updatedReplicas: updated,
    readyReplicas: mine.filter(podReady).length,
    availableReplicas: ready,
    conditions: [{ type: 'Available', status: ready === plan.replicas ? 'True' : 'False', reason: ready === plan.replicas ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable' }],
  };
  return { create, remove, status };
}

export class DeploymentController {
  readonly #apps: AppsV1Api;
  readonly #core: CoreV1Api;
  readonly #log: Logger;
  readonly #deployments: LabInformer<V1Deployment>;
  readonly #pods: LabInformer<V1Pod>;
  readonly #nodes: LabInformer<V1Node>;
  readonly #schedule: () => void;
  /** Problems already logged (a refused Deployment is logged once per version, not per sync). */
  readonly #reported = new Set<string>();

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    this.#log = logger;
    this.#apps = kubeConfig.makeApiClient(AppsV1Api);
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#schedule = serialized(() => this.#sync(), 20, logger, 'deployment sync');
    const onChange = (): void => this.#schedule();
    this.#deployments = new LabInformer({ kubeConfig, logger, onChange, path: '/apis/apps/v1/deployments', list: () => this.#apps.listDeploymentForAllNamespaces() });
    this.#pods = new LabInformer({ kubeConfig, logger, onChange, path: '/api/v1/pods', list: () => this.#core.listPodForAllNamespaces() });
    this.#nodes = new LabInformer({ kubeConfig, logger, onChange, path: '/api/v1/nodes', list: () => this.#core.listNode() });
  }

  async start(): Promise<void> {
    await Promise.all([this.#deployments.start(), this.#pods.start(), this.#nodes.start()]);
    this.#schedule();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#deployments.stop(), this.#pods.stop(), this.#nodes.stop()]);
  }

  async #sync(): Promise<void> {
    if (!this.#deployments.synced || !this.#pods.synced || !this.#nodes.synced) return;
    const nodes = this.#nodes.list().map((n) => n.metadata?.name ?? '').filter((n) => n !== '').sort();
    const pods = this.#pods.list();
    let retry = false;
    for (const d of this.#deployments.list()) {
      const key = `${d.metadata?.namespace}/${d.metadata?.name}`;
      if (d.metadata?.deletionTimestamp !== undefined) continue;
      const plan = rollout(d, pods, nodes);
      if ('problem' in plan) {
        const id = `${key}@${d.metadata?.resourceVersion}`;
        if (!this.#reported.has(id)) this.#log.warn({ deployment: key, problem: plan.problem }, 'deployment refused');
        this.#reported.add(id);
        continue;
      }
      const namespace = d.metadata?.namespace ?? 'default';
      for (const body of plan.create) {
        try {
          await this.#core.createNamespacedPod({ namespace, body });
          this.#log.info({ deployment: key, pod: body.metadata?.name, node: body.spec?.nodeName }, 'pod created');
        } catch (err) {
          // 409: a pod of that name is still terminating; the next event retries.
          if ((err as { code?: number }).code !== 409) this.#log.warn({ deployment: key, err: { message: (err as Error).message } }, 'pod create failed');
          retry = true;
        }
      }
      for (const name of plan.remove) {
        try {
          await this.#core.deleteNamespacedPod({ name, namespace });
          this.#log.info({ deployment: key, pod: name }, 'pod deleted');
        } catch (err) {
          if ((err as { code?: number }).code !== 404) this.#log.warn({ deployment: key, pod: name, err: { message: (err as Error).message } }, 'pod delete failed');
        }
      }
      if (stableJson(plan.status) !== stableJson((d.status ?? {}) as KubeObject)) {
        try {
          await this.#apps.replaceNamespacedDeploymentStatus({ name: d.metadata?.name ?? '', namespace, body: { ...d, status: plan.status } as V1Deployment });
        } catch (err) {
          // A conflict with a newer version: its own event brings the next sync.
          if ((err as { code?: number }).code !== 409) this.#log.warn({ deployment: key, err: { message: (err as Error).message } }, 'deployment status write failed');
        }
      }
    }
    if (retry) setTimeout(() => this.#schedule(), 500).unref();
  }
}
