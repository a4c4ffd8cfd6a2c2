/**
 * The kinds the API server serves, as one table: discovery documents, URL routing, field
 * selectors and RBAC resource names all come from it. CRDs add rows at run time
 * (ResourceRegistry.addCrd), as the real apiextensions server makes a created CRD's kind served.
 */
import { isJsonObject, pathValue, type KubeObject } from './types.js';

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources beyond the object itself, e.g. `status`. */
  subresources: string[];
  /** Field-selector fields beyond metadata.name and metadata.namespace. */
  fields: string[];
  /** Columns of `kubectl get` (Table output) beyond Name and Age. */
  columns: Column[];
  /** Set for kinds served because a CRD exists. */
  crd?: string;
}

export interface Column {
  name: string;
  type: 'string' | 'integer' | 'date' | 'number' | 'boolean';
  /** Dotted path (jsonPath without the leading dot), or a function for computed cells. */
  path: string | ((o: KubeObject) => string | number);
  /** Shown only with `kubectl get -o wide` (Table priority 1). */
  wide?: boolean;
}

export const VERBS_ALL = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** `apiVersion` as objects carry it. */
export function apiVersionOf(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

function podReady(o: KubeObject): string {
  const statuses = pathValue(o, 'status.containerStatuses');
  const containers = pathValue(o, 'spec.containers');
  const total = Array.isArray(containers) ? containers.length : 0;
  const ready = Array.isArray(statuses) ? statuses.filter((s) => isJsonObject(s) && s['ready'] === true).length : 0;
  return `${ready}/${total}`;
}

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating';
  const phase = pathValue(o, 'status.phase');
  return typeof phase === 'string' ? phase : 'Pending';
}

function podRestarts(o: KubeObject): number {
  const statuses = pathValue(o, 'status.containerStatuses');
  if (!Array.isArray(statuses)) return 0;
  return statuses.reduce<number>((n, s) => n + (isJsonObject(s) && typeof s['restartCount'] === 'number' ? s['restartCount'] : 0), 0);
}

function servicePorts(o: KubeObject): string {
  const ports = pathValue(o, 'spec.ports');
  if (!Array.isArray(ports) || ports.length === 0) return '<none>';
  return ports
    .filter(isJsonObject)
    .map((p) => `${String(p['port'])}${p['nodePort'] !== undefined ? `:${String(p['nodePort'])}` : ''}/${String(p['protocol'] ?? 'TCP')}`)
    .join(',');
}

function dataCount(o: KubeObject): number {
  const count = (v: unknown): number => (isJsonObject(v) ? Object.keys(v).length : 0);
  return count(o['data']) + count(o['binaryData']);
}

function nodeStatus(o: KubeObject): string {
  const conditions = pathValue(o, 'status.conditions');
  const ready = Array.isArray(conditions) ? conditions.find((c) => isJsonObject(c) && c['type'] === 'Ready') : undefined;
  const state = isJsonObject(ready) && ready['status'] === 'True' ? 'Ready' : ready === undefined ? 'Unknown' : 'NotReady';
  return pathValue(o, 'spec.unschedulable') === true ? `${state},SchedulingDisabled` : state;
}

function endpointsList(o: KubeObject): string {
  const subsets = o['subsets'];
  const out: string[] = [];
  for (const ss of Array.isArray(subsets) ? subsets.filter(isJsonObject) : []) {
    const ips = Array.isArray(ss['addresses']) ? ss['addresses'].filter(isJsonObject).map((a) => String(a['ip'])) : [];
    const ports = Array.isArray(ss['ports']) ? ss['ports'].filter(isJsonObject).map((p) => String(p['port'])) : [];
    for (const ip of ips) for (const port of ports.length > 0 ? ports : ['']) out.push(port === '' ? ip : `${ip}:${port}`);
  }
  return out.length === 0 ? '<none>' : out.join(',');
}

function serviceSelector(o: KubeObject): string {
  const sel = pathValue(o, 'spec.selector');
  return isJsonObject(sel) && Object.keys(sel).length > 0 ? Object.entries(sel).map(([k, v]) => `${k}=${String(v)}`).join(',') : '<none>';
}

function row(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<Pick<ResourceType, 'shortNames' | 'subresources' | 'fields' | 'columns' | 'categories'>> = {},
): ResourceType {
  return {
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    categories: extra.categories ?? [],
    subresources: extra.subresources ?? [],
    fields: extra.fields ?? [],
    columns: extra.columns ?? [],
  };
}

/** The built-in kinds (those Weft, its lab and kubectl's everyday commands use). */
export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  row('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], subresources: ['status', 'finalize'], fields: ['status.phase'], columns: [{ name: 'Status', type: 'string', path: 'status.phase' }] }),
  row('', 'v1', 'Pod', 'pods', true, {
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status', 'portforward', 'proxy', 'log', 'exec', 'eviction', 'binding', 'ephemeralcontainers'],
    fields: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
    columns: [
      { name: 'Ready', type: 'string', path: podReady },
      { name: 'Status', type: 'string', path: podStatus },
      { name: 'Restarts', type: 'integer', path: podRestarts },
      { name: 'IP', type: 'string', path: 'status.podIP', wide: true },
      { name: 'Node', type: 'string', path: 'spec.nodeName', wide: true },
    ],
  }),
  row('', 'v1', 'Service', 'services', true, {
    shortNames: ['svc'],
    categories: ['all'],
    subresources: ['status', 'proxy'],
    columns: [
      { name: 'Type', type: 'string', path: 'spec.type' },
      { name: 'Cluster-IP', type: 'string', path: 'spec.clusterIP' },
      { name: 'Port(s)', type: 'string', path: servicePorts },
      { name: 'Selector', type: 'string', path: serviceSelector, wide: true },
    ],
  }),
  row('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'], subresources: ['token'] }),
  row('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'], columns: [{ name: 'Data', type: 'integer', path: dataCount }] }),
  row('', 'v1', 'Secret', 'secrets', true, { fields: ['type'], columns: [{ name: 'Type', type: 'string', path: 'type' }, { name: 'Data', type: 'integer', path: dataCount }] }),
  row('', 'v1', 'Event', 'events', true, {
    shortNames: ['ev'],
    fields: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
  }),
  row('', 'v1', 'Node', 'nodes', false, { shortNames: ['no'], subresources: ['status', 'proxy'], fields: ['spec.unschedulable'], columns: [{ name: 'Status', type: 'string', path: nodeStatus }] }),
  row('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'], columns: [{ name: 'Endpoints', type: 'string', path: endpointsList }] }),
  row('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true, { fields: ['addressType'], columns: [{ name: 'AddressType', type: 'string', path: 'addressType' }] }),
  row('apps', 'v1', 'Deployment', 'deployments', true, { shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  row('apps', 'v1', 'DaemonSet', 'daemonsets', true, { shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  row('apps', 'v1', 'ReplicaSet', 'replicasets', true, { shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  row('apps', 'v1', 'StatefulSet', 'statefulsets', true, { shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'] }),
  row('batch', 'v1', 'Job', 'jobs', true, { categories: ['all'], subresources: ['status'] }),
  row('batch', 'v1', 'CronJob', 'cronjobs', true, { shortNames: ['cj'], categories: ['all'], subresources: ['status'] }),
  row('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  row('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, { shortNames: ['netpol'] }),
  row('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, { shortNames: ['ing'], subresources: ['status'] }),
  row('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false, {}),
  row('', 'v1', 'ResourceQuota', 'resourcequotas', true, { shortNames: ['quota'], subresources: ['status'] }),
  row('', 'v1', 'LimitRange', 'limitranges', true, { shortNames: ['limits'] }),
  row('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, { shortNames: ['pdb'], subresources: ['status'] }),
  row('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  row('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  row('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  row('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  row('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', false, { shortNames: ['pc'] }),
  row('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, { shortNames: ['crd', 'crds'], subresources: ['status'] }),
];

/**
 * Kinds that are requests, not stored objects (POST only): TokenReview, access reviews. They
 * appear in discovery with the `create` verb so kubectl and RBAC see them as Kubernetes has them.
 */
export const VIRTUAL_RESOURCES: readonly ResourceType[] = [
  row('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false),
  row('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', false),
  row('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false),
  row('authorization.k8s.io', 'v1', 'SubjectAccessReview', 'subjectaccessreviews', false),
];

/** Key of a resource in the store and in maps: `group/plural`. */
export function resourceKey(t: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${t.group}/${t.plural}`;
}

/** The served kinds: built-in ones plus those of stored CRDs. */
export class ResourceRegistry {
  readonly #byPath = new Map<string, ResourceType>();
  readonly #virtual = new Map<string, ResourceType>();

  constructor() {
    for (const t of BUILTIN_RESOURCES) this.#byPath.set(`${apiVersionOf(t)}/${t.plural}`, t);
    for (const t of VIRTUAL_RESOURCES) this.#virtual.set(`${apiVersionOf(t)}/${t.plural}`, t);
  }

  /** The stored kind at `apiVersion`/`plural`, if served. */
  lookup(apiVersion: string, plural: string): ResourceType | undefined {
    return this.#byPath.get(`${apiVersion}/${plural}`);
  }

  lookupVirtual(apiVersion: string, plural: string): ResourceType | undefined {
    return this.#virtual.get(`${apiVersion}/${plural}`);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    for (const t of this.#byPath.values()) if (apiVersionOf(t) === apiVersion && t.kind === kind) return t;
    return undefined;
  }

  /** Every served version of a group/plural (CRDs may serve several). */
  versionsOf(group: string, plural: string): ResourceType[] {
    return [...this.#byPath.values()].filter((t) => t.group === group && t.plural === plural);
  }

  all(): ResourceType[] {
    return [...this.#byPath.values(), ...this.#virtual.values()];
  }

  stored(): ResourceType[] {
    return [...this.#byPath.values()];
  }

  /** Serves the kinds of a CRD (every version with `served: true`); replaces earlier rows of it. */
  addCrd(crd: KubeObject): void {
    this.removeCrd(crd.metadata.name ?? '');
    const spec = crd['spec'];
    if (!isJsonObject(spec)) return;
    const names = spec['names'];
    const versions = spec['versions'];
    if (!isJsonObject(names) || !Array.isArray(versions) || typeof spec['group'] !== 'string') return;
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    for (const v of versions) {
      if (!isJsonObject(v) || v['served'] === false || typeof v['name'] !== 'string') continue;
      const subs = isJsonObject(v['subresources']) ? v['subresources'] : {};
      const printer = Array.isArray(v['additionalPrinterColumns']) ? v['additionalPrinterColumns'] : [];
      const columns: Column[] = printer
        .filter(isJsonObject)
        .filter((c) => str(c['name']) !== 'Age' && typeof c['jsonPath'] === 'string')
        .map((c) => ({ name: str(c['name']), type: 'string', path: str(c['jsonPath']).replace(/^\./, '') }));
      const t: ResourceType = {
        group: spec['group'],
        version: v['name'],
        kind: str(names['kind']),
        plural: str(names['plural']),
        singular: str(names['singular']) || str(names['kind']).toLowerCase(),
        namespaced: spec['scope'] !== 'Cluster',
        shortNames: list(names['shortNames']),
        categories: list(names['categories']),
        subresources: Object.keys(subs).filter((s) => s === 'status' || s === 'scale'),
        fields: [],
        columns,
        crd: crd.metadata.name ?? '',
      };
      this.#byPath.set(`${apiVersionOf(t)}/${t.plural}`, t);
    }
  }

  removeCrd(name: string): void {
    for (const [k, t] of this.#byPath) if (t.crd === name) this.#byPath.delete(k);
  }
}
