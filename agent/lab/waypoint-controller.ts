/**
 * Kubernetes mode: what Istio's waypoint deployment controller does, for Weft's class. Every
 * Gateway of class `weft-waypoint` gets the objects waypointObjects makes (ServiceAccount,
 * Deployment, Service), owned by the Gateway (so the API server's garbage collector removes them
 * with it); the Deployment controller then runs its pod. The pod runs `weft waypoint` against
 * the lab's API server with the agents' kubeconfig and the CA credentials of the agent of its
 * node (`$(NODE_NAME)` expands in the kubelet, as on Kubernetes). Gateways are watched only once
 * the Gateway API CRDs exist (until then the informer retries quietly). It also keeps the lab
 * Prometheus's target file listing the running waypoint pods (job weft-waypoints), as converge
 * does for the local lab.
 */
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { KubeObject } from '../discovery/types.js';
import { isWaypointGateway, waypointObjects, type WaypointObjectOptions } from '../waypoint/objects.js';
import { gatewayObjects, isIngressGatewayObject } from '../gateway/objects.js';
import { gatewayOptionsFor } from './waypoints.js';
import { allocateExternalIp } from './addressing.js';
import { requestedExternalIp } from './external-controller.js';
import { LAB_CA_URL } from './ca.js';
import { kubePaths } from './kube-paths.js';
import { LabInformer, serialized } from './kube-informer.js';
import { stableJson } from './spec.js';
import { GATEWAY_NAME_LABEL } from '../discovery/types.js';
import { writeLabPrometheusTargets } from './prometheus.js';
import { readState } from './state.js';
import { subsetOf } from './kube-mode.js';

/**
 * How the Kubernetes-mode lab runs an ingress gateway's pod (class weft, gatewayObjects): as a
 * waypoint's, with the CA credentials of its node's agent, and the weft-gateway account's
 * kubeconfig (kube-mode.ts binds it to the weft-gateway and weft-waypoint ClusterRoles).
 */
export function kubeLabGatewayOptions(lab: string): WaypointObjectOptions {
  const w = kubeLabWaypointOptions(lab);
  const args = w.args.map((a) => (a.startsWith('--kubeconfig=') ? `--kubeconfig=${kubePaths(lab).gatewayKubeconfig}` : a));
  return { ...w, args };
}

/** How the Kubernetes-mode lab runs a waypoint's pod (its node's agent pod holds the CA token and root). */
export function kubeLabWaypointOptions(lab: string): WaypointObjectOptions {
  const paths = kubePaths(lab);
  const agentPodDir = join(paths.podsDir, 'weft-system_weft-agent-$(NODE_NAME)');
  return {
    cli: process.env['WEFT_LAB_WAYPOINT_CLI']?.split(' ').filter((a) => a !== '') ?? ['weft'],
    args: [`--kubeconfig=${paths.waypointKubeconfig}`, `--ca=${LAB_CA_URL}`, `--ca-token-file=${join(agentPodDir, 'ca-token', 'token')}`, `--ca-root=${join(agentPodDir, 'ca-root', 'root-cert.pem')}`],
  };
}

type Stored = KubernetesObject & { metadata: { name: string; namespace?: string; resourceVersion?: string } };

/** Whether `have` is what the controller wants: its fields (server-set ones aside), labels and owner. */
function current(have: Stored, want: Stored): boolean {
  const { metadata: wm, ...wantBody } = want as Stored & { metadata: { labels?: Record<string, string>; ownerReferences?: { uid?: string }[] } };
  const hm = have.metadata as { labels?: Record<string, string>; ownerReferences?: { uid?: string }[] };
  return subsetOf(wantBody, have) && stableJson(hm.labels ?? {}) === stableJson(wm.labels ?? {}) && hm.ownerReferences?.[0]?.uid === wm.ownerReferences?.[0]?.uid;
}

export class WaypointController {
  readonly #api: KubernetesObjectApi;
  readonly #log: Logger;
  readonly #options: WaypointObjectOptions;
  readonly #gatewayOptions: WaypointObjectOptions;
  readonly #gateways: LabInformer<KubernetesObject>;
  readonly #pods: LabInformer<V1Pod>;
  readonly #services: LabInformer<V1Service>;
  readonly #schedule: () => void;
  readonly #scheduleTargets: () => void;
  readonly #lab: string;
  #targets = '';

  constructor(kubeConfig: KubeConfig, logger: Logger, options: WaypointObjectOptions, lab: string, gatewayOptions: WaypointObjectOptions = options) {
    this.#log = logger;
    this.#options = options;
    this.#gatewayOptions = gatewayOptions;
    this.#lab = lab;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.#scheduleTargets = serialized(() => this.#writeTargets(), 200, logger, 'waypoint scrape targets');
    this.#pods = new LabInformer<V1Pod>({
      kubeConfig,
      logger,
      onChange: () => this.#scheduleTargets(),
      path: '/api/v1/pods',
      labelSelector: GATEWAY_NAME_LABEL,
      list: () => core.listPodForAllNamespaces({ labelSelector: GATEWAY_NAME_LABEL }),
    });
    this.#services = new LabInformer<V1Service>({ kubeConfig, logger, onChange: () => this.#schedule(), path: '/api/v1/services', list: () => core.listServiceForAllNamespaces() });
    this.#api = KubernetesObjectApi.makeApiClient(kubeConfig);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.#schedule = serialized(() => this.#sync(), 20, logger, 'waypoint sync');
    this.#gateways = new LabInformer<KubernetesObject>({
      kubeConfig,
      logger,
      onChange: () => this.#schedule(),
      path: '/apis/gateway.networking.k8s.io/v1/gateways',
      list: async () => (await custom.listClusterCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' })) as KubernetesListObject<KubernetesObject>,
    });
  }

  /** Does not wait for the Gateway kind to exist: the informer starts listing when it does. */
  start(): void {
    void this.#gateways.start();
    void this.#pods.start();
    void this.#services.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#gateways.stop(), this.#pods.stop(), this.#services.stop()]);
  }

  async #writeTargets(): Promise<void> {
    const state = await readState(this.#lab);
    if (state === undefined || !state.agents || state.prometheusEnabled === false) return;
    const targets = this.#pods
      .list()
      .filter((p) => p.status?.phase === 'Running' && p.status.podIP !== undefined && p.metadata?.deletionTimestamp === undefined)
      .map((p) => ({ pod: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? 'default', node: p.spec?.nodeName ?? '', ip: p.status!.podIP! }))
      .sort((a, b) => a.pod.localeCompare(b.pod));
    const key = stableJson(targets);
    if (key === this.#targets) return;
    await writeLabPrometheusTargets(state, targets);
    this.#targets = key;
  }

  /**
   * An ingress gateway's objects with its external address chosen first: the Service asks for it
   * (spec.loadBalancerIP, which the load balancer controller honours) and the pod is told it
   * (`--address`), so the gateway writes the address clients use to its Gateway's and its
   * Ingresses' status, not its ClusterIP.
   */
  #ingressObjects(g: Parameters<typeof gatewayObjects>[0], chosen: Set<string>): KubeObject[] {
    const services = this.#services.list();
    const mine = services.find((s) => s.metadata?.namespace === (g.metadata.namespace ?? 'default') && s.metadata?.name === g.metadata.name);
    const ip = requestedExternalIp(mine) ?? allocateExternalIp(new Set([...services.filter((s) => s !== mine).flatMap((s) => [requestedExternalIp(s), s.status?.loadBalancer?.ingress?.[0]?.ip]).filter((x): x is string => x !== undefined), ...chosen]));
    const options = gatewayOptionsFor(g, this.#gatewayOptions);
    if (ip === undefined) return gatewayObjects(g, options); // no address left: the Service stays <pending>
    chosen.add(ip);
    return gatewayObjects(g, { ...options, args: [...options.args, `--address=${ip}`] }).map((o) =>
      o.kind === 'Service' ? ({ ...o, spec: { ...(o as unknown as { spec: object }).spec, loadBalancerIP: ip } } as KubeObject) : o,
    );
  }

  async #sync(): Promise<void> {
    if (!this.#gateways.synced || !this.#services.synced) return;
    let retry = false;
    const chosen = new Set<string>();
    for (const gw of this.#gateways.list()) {
      const g = gw as unknown as KubeObject;
      if (g.metadata.deletionTimestamp !== undefined || g.metadata.uid === undefined) continue;
      // Waypoints and ingress gateways (class weft) alike: one pure function each makes the objects.
      const objects = isWaypointGateway(g) ? waypointObjects(g, this.#options) : isIngressGatewayObject(g) ? this.#ingressObjects(g, chosen) : [];
      for (const want of objects as unknown as Stored[]) {
        const what = `${want.kind} ${want.metadata.namespace}/${want.metadata.name}`;
        try {
          let have: Stored | undefined;
          try {
            have = (await this.#api.read(want)) as Stored;
          } catch (err) {
            if ((err as { code?: number }).code !== 404) throw err;
          }
          if (have === undefined) {
            await this.#api.create(want);
            this.#log.info({ gateway: `${g.metadata.namespace}/${g.metadata.name}`, object: what }, 'waypoint object created');
          } else if (!current(have, want)) {
            // The server's fields stay (a Service's clusterIP), the controller's are set again.
            const spec = { ...(have as { spec?: object }).spec, ...(want as { spec?: object }).spec };
            await this.#api.replace({ ...have, ...want, spec, metadata: { ...have.metadata, labels: want.metadata.labels, ownerReferences: (want.metadata as { ownerReferences?: unknown }).ownerReferences } } as Stored);
            this.#log.info({ object: what }, 'waypoint object updated');
          }
        } catch (err) {
          this.#log.warn({ object: what, err: { message: (err as Error).message } }, 'waypoint object write failed; retrying');
          retry = true;
        }
      }
    }
    if (retry) setTimeout(() => this.#schedule(), 1000).unref();
  }
}
