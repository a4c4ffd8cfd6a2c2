/**
 * Kubernetes mode: the EndpointSlice controller role (what kube-controller-manager does), as an
 * ordinary API client. For every Service with a selector it keeps discovery.k8s.io/v1
 * EndpointSlices of the pods it selects that have an IP: conditions ready (pod Ready and not
 * terminating), serving (pod Ready) and terminating (deletionTimestamp set), nodeName, targetRef,
 * and ports by name with the target port resolved per pod (pods that resolve a named port
 * differently go into different slices, as upstream). Slices are labelled
 * kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by and owned by the
 * Service. Selectorless Services are left to their owners (the `kubernetes` Service's slice is
 * written by the lab, pointing at the API server).
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type DiscoveryV1EndpointPort, type V1EndpointSlice, type V1Pod, type V1Service } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { LabInformer, serialized } from './kube-informer.js';
import { SERVICE_NAME_LABEL } from './kube-proxy.js';
import { stableJson } from './spec.js';

export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** The upstream controller's value: consumers that filter on it see the lab's slices as theirs. */
export const MANAGED_BY = 'endpointslice-controller.k8s.io';

export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function resolvePort(pod: V1Pod, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name === target) return p.containerPort;
  return undefined;
}

/** The slices a Service should have, by name (pure: the controller diffs them against the API). */
export function desiredSlices(svc: V1Service, pods: readonly V1Pod[]): Map<string, V1EndpointSlice> {
  const out = new Map<string, V1EndpointSlice>();
  const name = svc.metadata?.name;
  const namespace = svc.metadata?.namespace ?? 'default';
  const selector = svc.spec?.selector;
  if (name === undefined || selector === undefined || Object.keys(selector).length === 0) return out;
  const groups = new Map<string, { ports: DiscoveryV1EndpointPort[]; pods: V1Pod[] }>();
  for (const pod of pods) {
    if ((pod.metadata?.namespace ?? 'default') !== namespace || !selects(selector, pod.metadata?.labels)) continue;
    if (!pod.status?.podIP || pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
    const ports: DiscoveryV1EndpointPort[] = [];
    for (const sp of svc.spec?.ports ?? []) {
      const port = resolvePort(pod, sp.targetPort ?? sp.port);
      // A pod without the named port is no endpoint of that port (upstream does the same).
      if (port === undefined) continue;
      ports.push({ name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP', ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}) });
    }
    const key = stableJson(ports);
    const g = groups.get(key) ?? { ports, pods: [] };
    g.pods.push(pod);
    groups.set(key, g);
  }
  for (const [key, g] of groups) {
    const sliceName = `${name.slice(0, 50)}-${createHash('sha256').update(key).digest('hex').slice(0, 5)}`;
    out.set(sliceName, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sliceName,
        namespace,
        labels: { [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid: svc.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true }],
      },
      addressType: 'IPv4',
      ports: g.ports,
      endpoints: g.pods
        .map((pod) => {
          const terminating = pod.metadata?.deletionTimestamp !== undefined;
          const ready = podReady(pod);
          return {
            addresses: [pod.status!.podIP!],
            conditions: { ready: ready && !terminating, serving: ready, terminating },
            ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
            targetRef: { kind: 'Pod', namespace, name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
          };
        })
        .sort((a, b) => a.targetRef.name.localeCompare(b.targetRef.name)),
    });
  }
  return out;
}

/** What of a slice the controller owns (compared to decide whether to write). */
function essence(s: V1EndpointSlice): string {
  return stableJson({ labels: s.metadata?.labels ?? {}, ports: s.ports ?? [], endpoints: s.endpoints ?? [], owner: s.metadata?.ownerReferences?.[0]?.uid ?? '' });
}

export class EndpointSliceController {
  readonly #discovery: DiscoveryV1Api;
  readonly #log: Logger;
  readonly #services: LabInformer<V1Service>;
  readonly #pods: LabInformer<V1Pod>;
  readonly #slices: LabInformer<V1EndpointSlice>;
  readonly #schedule: () => void;

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    this.#log = logger;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.#discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    this.#schedule = serialized(() => this.#sync(), 20, logger, 'endpointslice sync');
    const onChange = (): void => this.#schedule();
    this.#services = new LabInformer({ kubeConfig, logger, onChange, path: '/api/v1/services', list: () => core.listServiceForAllNamespaces() });
    this.#pods = new LabInformer({ kubeConfig, logger, onChange, path: '/api/v1/pods', list: () => core.listPodForAllNamespaces() });
    this.#slices = new LabInformer({
      kubeConfig,
      logger,
      onChange,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      list: () => this.#discovery.listEndpointSliceForAllNamespaces({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.#services.start(), this.#pods.start(), this.#slices.start()]);
    this.#schedule();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#services.stop(), this.#pods.stop(), this.#slices.stop()]);
  }

  async #sync(): Promise<void> {
    if (!this.#services.synced || !this.#pods.synced || !this.#slices.synced) return;
    const pods = this.#pods.list();
    const want = new Map<string, V1EndpointSlice>();
    for (const svc of this.#services.list()) {
      for (const [name, slice] of desiredSlices(svc, pods)) want.set(`${slice.metadata!.namespace}/${name}`, slice);
    }
    const have = new Map(this.#slices.list().map((s) => [`${s.metadata?.namespace}/${s.metadata?.name}`, s]));
    for (const [key, slice] of want) {
      const old = have.get(key);
      const namespace = slice.metadata!.namespace!;
      try {
        if (old === undefined) {
          await this.#discovery.createNamespacedEndpointSlice({ namespace, body: slice });
        } else if (essence(old) !== essence(slice)) {
          await this.#discovery.replaceNamespacedEndpointSlice({
            name: slice.metadata!.name!,
            namespace,
            body: { ...slice, metadata: { ...slice.metadata, resourceVersion: old.metadata?.resourceVersion } },
          });
        }
      } catch (err) {
        // A conflict or a lost race with the cache: the next event (or the retry below) fixes it.
        this.#log.warn({ slice: key, err: { message: (err as Error).message } }, 'endpointslice write failed; retrying');
        setTimeout(() => this.#schedule(), 500).unref();
      }
    }
    for (const [key, old] of have) {
      if (want.has(key)) continue;
      try {
        await this.#discovery.deleteNamespacedEndpointSlice({ name: old.metadata!.name!, namespace: old.metadata!.namespace! });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) this.#log.warn({ slice: key, err: { message: (err as Error).message } }, 'endpointslice delete failed');
      }
    }
  }
}
