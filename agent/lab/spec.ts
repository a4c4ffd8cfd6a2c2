/**
 * The cluster a set of manifests asks for, as the lab needs it: pods with their node, argv and
 * environment, services with their selector and ports, namespace labels. Pure. The schema checks
 * are discovery's (manifest.ts); here only what the lab adds: a pod must name its node and its
 * command, namespace names must not collide, ClusterIPs must be inside the lab's service range.
 */
import { createHash } from 'node:crypto';
import { isNamespace, isPod, isService, objectKey } from '../discovery/manifest.js';
import { MESH_DISABLED, MESH_ENABLED, MESH_LABEL } from '../discovery/types.js';
import type { ManifestError, ManifestObject, PodObject, ServicePort } from '../discovery/types.js';
import { isWaypointGateway, waypointObjects, type WaypointObjectOptions } from '../waypoint/objects.js';
import { gatewayObjects, isIngressGatewayObject } from '../gateway/objects.js';
import { clusterIpProblem } from './addressing.js';
import { gatewayOptionsFor } from './waypoints.js';
import { deploymentPods, isDeployment, pinnedNode, planDeployment } from './deployments.js';

export interface ContainerRun {
  name: string;
  /** command + args, as written (the lab resolves `node` to its own Node binary when starting). */
  argv: string[];
  env: Record<string, string>;
  /** Variables from the downward API (`valueFrom.fieldRef`): name -> field path, resolved when the pod starts. */
  fieldEnv: Record<string, string>;
  /** TCP ports the container declares: the pod is ready when it listens on all of them. */
  tcpPorts: number[];
}

export interface DesiredPod {
  /** `<namespace>/<name>` */
  key: string;
  name: string;
  namespace: string;
  node: string;
  labels: Record<string, string>;
  serviceAccount: string;
  containers: ContainerRun[];
  /** Named container ports of the whole pod (a Service's targetPort may name one). */
  namedPorts: Map<string, number>;
  /** Changes when anything but labels/annotations changes: the pod is then recreated. */
  specHash: string;
  /** `<namespace>/<name>` of the Deployment that made this pod. */
  owner?: string;
}

export interface DesiredDeployment {
  key: string;
  name: string;
  namespace: string;
  replicas: number;
  /** pod-template-hash of the current template. */
  hash: string;
  /** Keys of its pods (`<namespace>/<name>`), by replica index. */
  pods: string[];
  /** `<namespace>/<name>` of the waypoint or ingress Gateway it was made for. */
  gateway?: string;
  /** It runs an ingress gateway (class weft), not a waypoint. */
  ingress?: boolean;
}

export interface SpecOptions {
  /** How the lab starts a waypoint's pods; without it Gateways deploy nothing (plans, tests). */
  waypoint?: WaypointObjectOptions;
  /** How the lab starts an ingress Gateway's (class weft) pods (agent/gateway/objects.ts); without it they deploy nothing. */
  gateway?: WaypointObjectOptions;
}

export interface DesiredService {
  key: string;
  name: string;
  namespace: string;
  /** From the manifest; undefined: allocate; 'None': headless (no VIP, no DNAT). */
  clusterIP: string | undefined;
  selector: Record<string, string> | undefined;
  ports: ServicePort[];
  /** `LoadBalancer`: the lab gives it an external address on its internet network (internet.ts). */
  type?: string;
}

export interface ClusterSpec {
  /** Every object by discovery's objectKey, in the order given. */
  objects: Map<string, ManifestObject>;
  namespaces: Map<string, Record<string, string>>;
  pods: Map<string, DesiredPod>;
  services: Map<string, DesiredService>;
  deployments: Map<string, DesiredDeployment>;
  /**
   * Objects the lab made from the given ones (a waypoint Gateway's ServiceAccount, Deployment and
   * Service; a Deployment's Pods), by objectKey: published to the agents like the given ones.
   */
  derived: Map<string, ManifestObject>;
  /** Node names the pods are placed on, sorted. */
  nodes: string[];
}

/** Where a Deployment without spec.template.spec.nodeName goes when no object names a node. */
export const DEFAULT_NODE = 'node-1';

/** A DNS label, as Kubernetes checks node names that become part of our namespace names. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Builds the spec, or returns every problem (with the file the object came from) so nothing is
 * applied when anything is wrong.
 */
export function clusterSpec(
  objects: readonly ManifestObject[],
  fileOf: (key: string) => string,
  options: SpecOptions = {},
): { spec: ClusterSpec; errors: [] } | { spec: undefined; errors: ManifestError[] } {
  const errors: ManifestError[] = [];
  const spec: ClusterSpec = { objects: new Map(), namespaces: new Map(), pods: new Map(), services: new Map(), deployments: new Map(), derived: new Map(), nodes: [] };
  const nodes = new Set<string>();
  const netnsOwner = new Map<string, string>();
  const vipOwner = new Map<string, string>();

  // Waypoint Gateways first: what they deploy is handled below like the objects given (an object
  // given with the same kind and name wins: the user's own ServiceAccount, say).
  const given = new Set(objects.map(objectKey));
  const all: { o: ManifestObject; source: string; gateway?: string; ingress?: boolean }[] = objects.map((o) => ({ o, source: objectKey(o) }));
  for (const o of objects) {
    const ingress = options.gateway !== undefined && isIngressGatewayObject(o);
    if (!ingress && (options.waypoint === undefined || !isWaypointGateway(o))) continue;
    const gateway = `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
    const deployed = ingress ? gatewayObjects(o as Parameters<typeof gatewayObjects>[0], gatewayOptionsFor(o, options.gateway!)) : waypointObjects(o as Parameters<typeof waypointObjects>[0], options.waypoint!);
    for (const made of deployed as ManifestObject[]) {
      const key = objectKey(made);
      if (given.has(key)) continue;
      spec.derived.set(key, made);
      all.push({ o: made, source: objectKey(o), gateway, ingress });
    }
  }
  // The nodes replicas spread over: those the objects name.
  const named = new Set<string>();
  for (const { o } of all) {
    const node = isPod(o) ? o.spec.nodeName : isDeployment(o) ? pinnedNode(o) : undefined;
    if (node !== undefined) named.add(node);
  }
  const spread = named.size > 0 ? [...named].sort() : [DEFAULT_NODE];

  for (const { o, source, gateway, ingress } of all) {
    const key = objectKey(o);
    if (!spec.derived.has(key)) spec.objects.set(key, o);
    const fail = (reason: string): void => {
      errors.push({ file: fileOf(source), reason: `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}: ${reason}` });
    };
    const pods: { pod: PodObject; owner?: string }[] = [];
    if (isNamespace(o)) {
      spec.namespaces.set(o.metadata.name, o.metadata.labels ?? {});
    } else if (isDeployment(o)) {
      const planned = planDeployment(o);
      if ('problem' in planned) {
        fail(planned.problem);
        continue;
      }
      const plan = planned.plan;
      const made = deploymentPods(plan, spread, { apiVersion: 'apps/v1', kind: 'Deployment', name: plan.name });
      if ('problem' in made) {
        fail(made.problem);
        continue;
      }
      const dkey = `${plan.namespace}/${plan.name}`;
      spec.deployments.set(dkey, {
        key: dkey,
        name: plan.name,
        namespace: plan.namespace,
        replicas: plan.replicas,
        hash: plan.hash,
        pods: made.pods.map((p) => `${plan.namespace}/${p.metadata.name}`),
        ...(gateway !== undefined ? { gateway } : {}),
        ...(ingress === true ? { ingress } : {}),
      });
      for (const pod of made.pods) {
        spec.derived.set(objectKey(pod), pod);
        pods.push({ pod, owner: dkey });
      }
    } else if (isPod(o)) {
      pods.push({ pod: o });
    } else if (isService(o)) {
      const ns = o.metadata.namespace ?? 'default';
      const vip = o.spec.clusterIP === '' ? undefined : o.spec.clusterIP;
      if (vip !== undefined && vip !== 'None') {
        const problem = clusterIpProblem(vip);
        if (problem !== undefined) {
          fail(problem);
          continue;
        }
        const other = vipOwner.get(vip);
        if (other !== undefined) {
          fail(`spec.clusterIP: ${vip} is already the ClusterIP of service ${other}`);
          continue;
        }
        vipOwner.set(vip, `${ns}/${o.metadata.name}`);
      }
      spec.services.set(`${ns}/${o.metadata.name}`, {
        key: `${ns}/${o.metadata.name}`,
        name: o.metadata.name,
        namespace: ns,
        clusterIP: vip,
        selector: o.spec.selector,
        ports: o.spec.ports ?? [],
        ...(o.spec.type !== undefined ? { type: o.spec.type } : {}),
      });
    }
    for (const { pod: p, owner } of pods) {
      const pod = desiredPod(p, fail);
      if (pod === undefined) continue;
      if (owner !== undefined) pod.owner = owner;
      // `-` joins namespace and pod in the netns name: `a-b`/`c` and `a`/`b-c` would share one.
      const joined = `${pod.namespace}-${pod.name}`;
      const other = netnsOwner.get(joined);
      if (other !== undefined) {
        fail(`its network namespace name would be the same as pod ${other}'s; rename one of them`);
        continue;
      }
      netnsOwner.set(joined, pod.key);
      nodes.add(pod.node);
      spec.pods.set(pod.key, pod);
    }
  }
  if (errors.length > 0) return { spec: undefined, errors };
  spec.nodes = [...nodes].sort();
  return { spec, errors: [] };
}

function desiredPod(o: PodObject, fail: (reason: string) => void): DesiredPod | undefined {
  const namespace = o.metadata.namespace ?? 'default';
  const node = o.spec.nodeName;
  if (node === undefined) {
    fail('spec.nodeName: required in the lab (it says which lab node runs the pod)');
    return undefined;
  }
  if (!DNS_LABEL.test(node)) {
    fail(`spec.nodeName: "${node}" must be a DNS label (lower-case letters, digits, "-", at most 63)`);
    return undefined;
  }
  const containers: ContainerRun[] = [];
  const namedPorts = new Map<string, number>();
  for (let c = 0; c < o.spec.containers.length; c++) {
    const container = o.spec.containers[c]!;
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    if (container.command === undefined || container.command.length === 0 || argv[0] === '') {
      fail(`spec.containers[${c}].command: required in the lab (there is no image entrypoint; the command runs in the pod's network namespace)`);
      return undefined;
    }
    const env: Record<string, string> = {};
    const fieldEnv: Record<string, string> = {};
    for (const e of container.env ?? []) {
      const field = (e as { valueFrom?: { fieldRef?: { fieldPath?: string } } }).valueFrom?.fieldRef?.fieldPath;
      if (field !== undefined) fieldEnv[e.name] = field;
      else env[e.name] = e.value ?? '';
    }
    const tcpPorts: number[] = [];
    for (const p of container.ports ?? []) {
      if ((p.protocol ?? 'TCP') === 'TCP') tcpPorts.push(p.containerPort);
      if (p.name !== undefined) namedPorts.set(p.name, p.containerPort);
    }
    containers.push({ name: container.name, argv, env, fieldEnv, tcpPorts });
  }
  const serviceAccount = o.spec.serviceAccountName ?? 'default';
  return {
    key: `${namespace}/${o.metadata.name}`,
    name: o.metadata.name,
    namespace,
    node,
    labels: o.metadata.labels ?? {},
    serviceAccount,
    containers,
    namedPorts,
    specHash: hashOf({ node, serviceAccount, containers }),
  };
}

/** In the mesh: namespace labelled `weft.dev/mesh=enabled` and the pod not labelled `=disabled`. */
export function podInMesh(labels: Record<string, string>, namespaceLabels: Record<string, string> | undefined): boolean {
  return namespaceLabels?.[MESH_LABEL] === MESH_ENABLED && labels[MESH_LABEL] !== MESH_DISABLED;
}

export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false;
  const keys = Object.keys(selector);
  // An empty selector selects nothing for a Service (Kubernetes leaves its endpoints to the user).
  if (keys.length === 0) return false;
  for (const k of keys) if (labels[k] !== selector[k]) return false;
  return true;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted, so equal values hash equally whatever order the YAML had. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
