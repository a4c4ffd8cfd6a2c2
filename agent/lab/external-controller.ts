/**
 * Kubernetes mode: the lab's load balancer controller (what a cloud controller manager, or
 * MetalLB, does), in `weft lab kube-controllers` (the fabric namespace). Every Service of type
 * LoadBalancer gets an external address from 198.19.65.0/24, kept in its
 * status.loadBalancer.ingress (an address already there stays: the controller restarting changes
 * nothing); the fabric's external chain DNATs each address:port to the ready endpoints of the
 * Service's EndpointSlices (internet.ts, as converge does for the local lab); and an ingress
 * Gateway (class weft) gets its Service's address in status.addresses, as Istio's gateway
 * controller reports the address of the Service it made. Status is written with the object's
 * resourceVersion (a conflict is retried), and only the fields this controller owns change.
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { KubeObject } from '../discovery/types.js';
import { isIngressGatewayObject } from '../gateway/objects.js';
import { allocateExternalIp, EXTERNAL_CIDR, inCidr } from './addressing.js';
import { installExternalRules, type ExternalFrontend } from './internet.js';
import { serviceViewsFromApi } from './kube-proxy.js';
import { LabInformer, serialized } from './kube-informer.js';
import { fabricNetns } from './paths.js';
import { stableJson } from './spec.js';

const RETRY_MS = 500;

/** An external address the Service asks for (spec.loadBalancerIP) or has (its status), inside the lab's range. */
export function requestedExternalIp(s: V1Service | undefined): string | undefined {
  const usable = (ip: string | undefined): string | undefined => (ip !== undefined && inCidr(ip, EXTERNAL_CIDR) && !/\.(0|255)$/.test(ip) ? ip : undefined);
  return usable(s?.spec?.loadBalancerIP) ?? usable(s?.status?.loadBalancer?.ingress?.[0]?.ip);
}

/**
 * The external address each LoadBalancer Service has or gets (`ns/name` -> IP): the one it asks
 * for (spec.loadBalancerIP, as MetalLB honours it) or already has, else the lowest free. Pure.
 */
export function assignExternalIps(services: readonly V1Service[]): Map<string, string> {
  const out = new Map<string, string>();
  const balanced = services.filter((s) => s.spec?.type === 'LoadBalancer').sort((a, b) => `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`));
  const used = new Set<string>();
  const pending: string[] = [];
  for (const s of balanced) {
    const key = `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`;
    const had = requestedExternalIp(s);
    if (had !== undefined && !used.has(had)) {
      out.set(key, had);
      used.add(had);
    } else {
      pending.push(key);
    }
  }
  for (const key of pending) {
    const ip = allocateExternalIp(used);
    if (ip === undefined) continue; // the range is full: the Service stays <pending>, as on a cloud out of addresses
    out.set(key, ip);
    used.add(ip);
  }
  return out;
}

type GatewayStored = KubernetesObject & { metadata: { name: string; namespace?: string }; status?: { addresses?: { type?: string; value: string }[] } & Record<string, unknown> };

export class ExternalAddressController {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #log: Logger;
  readonly #lab: string;
  readonly #services: LabInformer<V1Service>;
  readonly #slices: LabInformer<V1EndpointSlice>;
  readonly #gateways: LabInformer<KubernetesObject>;
  readonly #schedule: () => void;
  #rules = '';

  constructor(kubeConfig: KubeConfig, logger: Logger, lab: string) {
    this.#log = logger;
    this.#lab = lab;
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    this.#schedule = serialized(() => this.#sync(), 20, logger, 'external address sync');
    const onChange = (): void => this.#schedule();
    this.#services = new LabInformer({ kubeConfig, logger, onChange, path: '/api/v1/services', list: () => this.#core.listServiceForAllNamespaces() });
    this.#slices = new LabInformer({ kubeConfig, logger, onChange, path: '/apis/discovery.k8s.io/v1/endpointslices', list: () => discovery.listEndpointSliceForAllNamespaces() });
    this.#gateways = new LabInformer<KubernetesObject>({
      kubeConfig,
      logger,
      onChange,
      path: '/apis/gateway.networking.k8s.io/v1/gateways',
      list: async () => (await this.#custom.listClusterCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' })) as KubernetesListObject<KubernetesObject>,
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.#services.start(), this.#slices.start()]);
    // The Gateway kind may come later (its informer retries quietly until it exists).
    void this.#gateways.start();
    this.#schedule();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#services.stop(), this.#slices.stop(), this.#gateways.stop()]);
  }

  async #sync(): Promise<void> {
    if (!this.#services.synced || !this.#slices.synced) return;
    const services = this.#services.list();
    const ips = assignExternalIps(services);
    let retry = false;
    // The fabric first: an address is in a status only once it leads somewhere.
    const frontends: ExternalFrontend[] = [];
    for (const v of serviceViewsFromApi(services, this.#slices.list())) {
      const ip = ips.get(v.key);
      if (ip === undefined) continue;
      for (const p of v.ports) if (p.protocol === 'TCP') frontends.push({ service: v.key, ip, port: p.port, endpoints: p.endpoints.map((e) => ({ ip: e.ip, port: e.targetPort })) });
    }
    const rules = stableJson(frontends);
    if (rules !== this.#rules) {
      try {
        await installExternalRules(fabricNetns(this.#lab), frontends);
        this.#rules = rules;
      } catch (err) {
        this.#log.warn({ err: { message: (err as Error).message } }, 'external address rules not installed; retrying');
        retry = true;
      }
    }
    for (const svc of services) {
      const key = `${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name}`;
      const ip = ips.get(key);
      if (ip === undefined || svc.status?.loadBalancer?.ingress?.[0]?.ip === ip) continue;
      try {
        await this.#core.replaceNamespacedServiceStatus({ name: svc.metadata!.name!, namespace: svc.metadata!.namespace ?? 'default', body: { ...svc, status: { ...svc.status, loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } } });
        this.#log.info({ service: key, ip }, 'external address assigned');
      } catch (err) {
        this.#log.warn({ service: key, err: { message: (err as Error).message } }, 'service status write failed; retrying');
        retry = true;
      }
    }
    if (this.#gateways.synced) {
      for (const gw of this.#gateways.list() as GatewayStored[]) {
        if (!isIngressGatewayObject(gw as unknown as KubeObject)) continue;
        const namespace = gw.metadata.namespace ?? 'default';
        const ip = ips.get(`${namespace}/${gw.metadata.name}`);
        const want = ip === undefined ? [] : [{ type: 'IPAddress', value: ip }];
        if (stableJson(gw.status?.addresses ?? []) === stableJson(want)) continue;
        try {
          await this.#custom.replaceNamespacedCustomObjectStatus({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', namespace, name: gw.metadata.name, body: { ...gw, status: { ...gw.status, addresses: want } } });
          this.#log.info({ gateway: `${namespace}/${gw.metadata.name}`, addresses: want }, 'gateway addresses written');
        } catch (err) {
          this.#log.warn({ gateway: `${namespace}/${gw.metadata.name}`, err: { message: (err as Error).message } }, 'gateway status write failed; retrying');
          retry = true;
        }
      }
    }
    if (retry) setTimeout(() => this.#schedule(), RETRY_MS).unref();
  }
}
