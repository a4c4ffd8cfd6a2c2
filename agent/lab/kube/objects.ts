/**
 * What the API server does to objects beyond storing them, kind by kind, as Kubernetes'
 * registry strategies do: names (generateName), uid, creationTimestamp, generation; the
 * status subresource split; Service ClusterIP and NodePort allocation; graceful deletion of
 * pods; finalizers; namespace deletion that empties the namespace first; CRDs that make their
 * kinds served; preconditions and resourceVersion conflicts.
 */
import { randomUUID } from 'node:crypto';
import { apiVersionOf, resourceKey, type ResourceRegistry, type ResourceType } from './resources.js';
import { StatusError, errors, qualified } from './status.js';
import type { Store } from './store.js';
import { GATEWAY_API_GROUP, gatewayApiCrds, waypointGatewayClass } from './gateway-api.js';
import { clone, isJsonObject, type JsonObject, type JsonValue, type KubeObject } from './types.js';

/** Service ClusterIPs come from 198.19.128.0/17; .1 is the `kubernetes` Service's. */
export const SERVICE_CIDR = '198.19.128.0/17';
export const KUBERNETES_SERVICE_IP = '198.19.128.1';
const SERVICE_BASE = ((198 << 24) | (19 << 16) | (128 << 8)) >>> 0;
const SERVICE_SIZE = 1 << 15;
const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;
const DEFAULT_GRACE_SECONDS = 30;

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** Kubernetes' size limits: ConfigMap/Secret data, all annotations, and etcd's request limit. */
const MAX_DATA_BYTES = 1024 * 1024;
const MAX_ANNOTATION_BYTES = 256 * 1024;
const MAX_STORED_BYTES = 1.5 * 1024 * 1024;

/** Refuses objects over Kubernetes' limits, with Kubernetes' messages. */
function checkSize(t: ResourceType, obj: KubeObject): void {
  const name = obj.metadata.name ?? '';
  const annotations = obj.metadata.annotations ?? {};
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(annotations)) annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  if (annotationBytes > MAX_ANNOTATION_BYTES) {
    throw errors.invalid(t.group, t.kind, name, [{ field: 'metadata.annotations', message: `Too long: must have at most ${MAX_ANNOTATION_BYTES} bytes` }]);
  }
  if (t.group === '' && (t.kind === 'ConfigMap' || t.kind === 'Secret')) {
    let bytes = 0;
    for (const field of t.kind === 'Secret' ? ['data'] : ['data', 'binaryData']) {
      const data = obj[field];
      if (!isJsonObject(data)) continue;
      for (const [k, v] of Object.entries(data)) bytes += k.length + (t.kind === 'Secret' || field === 'binaryData' ? Math.floor((String(v).length * 3) / 4) : Buffer.byteLength(String(v)));
    }
    if (bytes > MAX_DATA_BYTES) throw errors.invalid(t.group, t.kind, name, [{ field: '[]', message: `Too long: must have at most ${MAX_DATA_BYTES} bytes` }]);
  }
  if (Buffer.byteLength(JSON.stringify(obj)) > MAX_STORED_BYTES) throw new StatusError(500, 'InternalError', 'etcdserver: request is too large');
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function timestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function withoutVolatile(o: KubeObject): string {
  const c = clone(o);
  delete c.metadata.resourceVersion;
  delete c.metadata.managedFields;
  return JSON.stringify(c);
}

export class ObjectService {
  readonly #store: Store;
  readonly #registry: ResourceRegistry;
  readonly #now: () => number;

  constructor(store: Store, registry: ResourceRegistry, now: () => number) {
    this.#store = store;
    this.#registry = registry;
    this.#now = now;
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.#store.peek(resourceKey(t), t.namespaced ? namespace : undefined, name);
    if (o === undefined) throw errors.notFound(t.group, t.plural, name);
    return this.#served(t, o);
  }

  /** The stored object at the version `t` serves (CRD objects of several versions keep theirs). */
  #served(t: ResourceType, o: KubeObject): KubeObject {
    const c = clone(o);
    c.apiVersion = apiVersionOf(t);
    return c;
  }

  #checkNamespace(t: ResourceType, namespace: string | undefined, name: string): void {
    if (!t.namespaced || namespace === undefined) return;
    const ns = this.#store.peek('/namespaces', undefined, namespace);
    if (ns === undefined) throw errors.notFound('', 'namespaces', namespace);
    if (ns.metadata.deletionTimestamp !== undefined) {
      throw new StatusError(403, 'Forbidden', `${qualified(t.group, t.plural)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, { name, kind: t.plural });
    }
  }

  create(t: ResourceType, namespace: string | undefined, body: JsonValue): KubeObject {
    if (!isJsonObject(body) || !isJsonObject(body['metadata'] ?? {})) throw errors.badRequest('the body of the request is not a JSON object');
    const obj = clone(body) as unknown as KubeObject;
    obj.metadata = isJsonObject(obj.metadata) ? obj.metadata : {};
    if (obj.kind !== undefined && obj.kind !== t.kind) throw errors.badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`);
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    const meta = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace ?? 'default';
    } else delete meta.namespace;
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string' && meta.generateName !== '') {
      let suffix = '';
      for (let i = 0; i < 5; i++) suffix += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
      meta.name = meta.generateName + suffix;
    }
    const name = meta.name;
    if (typeof name !== 'string' || name === '') throw errors.invalid(t.group, t.kind, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    this.#checkNamespace(t, meta.namespace, name);
    if (this.#store.peek(resourceKey(t), meta.namespace, name) !== undefined) throw errors.alreadyExists(t.group, t.plural, name);
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp(this.#now());
    meta.generation = 1;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.resourceVersion;
    if (t.subresources.includes('status') && t.kind !== 'Node') delete obj['status'];
    this.#prepareCreate(t, obj);
    checkSize(t, obj);
    const stored = this.#store.put(resourceKey(t), obj);
    this.#afterWrite(t, stored);
    return this.#served(t, stored);
  }

  #prepareCreate(t: ResourceType, obj: KubeObject): void {
    const spec = isJsonObject(obj['spec']) ? obj['spec'] : undefined;
    switch (resourceKey(t)) {
      case '/namespaces':
        obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name ?? '' };
        obj['spec'] = { finalizers: ['kubernetes'] };
        obj['status'] = { phase: 'Active' };
        break;
      case '/pods': {
        const s = spec ?? {};
        s['restartPolicy'] ??= 'Always';
        s['terminationGracePeriodSeconds'] ??= DEFAULT_GRACE_SECONDS;
        s['dnsPolicy'] ??= 'ClusterFirst';
        s['schedulerName'] ??= 'default-scheduler';
        s['serviceAccountName'] ??= typeof s['serviceAccount'] === 'string' ? s['serviceAccount'] : 'default';
        s['serviceAccount'] = s['serviceAccountName'];
        s['enableServiceLinks'] ??= true;
        for (const list of ['containers', 'initContainers']) {
          const cs = s[list];
          if (!Array.isArray(cs)) continue;
          for (const c of cs) {
            if (!isJsonObject(c) || !Array.isArray(c['ports'])) continue;
            for (const p of c['ports']) if (isJsonObject(p)) p['protocol'] ??= 'TCP';
          }
        }
        obj['spec'] = s;
        obj['status'] = { phase: 'Pending', qosClass: 'BestEffort' };
        break;
      }
      case '/services':
        this.#prepareService(obj, undefined);
        obj['status'] = { loadBalancer: {} };
        break;
      case 'apiextensions.k8s.io/customresourcedefinitions': {
        const names = isJsonObject(spec?.['names']) ? spec['names'] : {};
        obj['status'] = {
          acceptedNames: clone(names),
          storedVersions: Array.isArray(spec?.['versions']) ? spec['versions'].filter(isJsonObject).filter((v) => v['storage'] === true).map((v) => v['name'] ?? '') : [],
          conditions: [
            { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: timestamp(this.#now()) },
            { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: timestamp(this.#now()) },
          ],
        };
        break;
      }
      default:
        break;
    }
  }

  /** Defaults and allocations of a Service, keeping what `previous` had allocated. */
  #prepareService(obj: KubeObject, previous: KubeObject | undefined): void {
    const spec: JsonObject = isJsonObject(obj['spec']) ? obj['spec'] : {};
    obj['spec'] = spec;
    const prevSpec = isJsonObject(previous?.['spec']) ? previous['spec'] : {};
    const type = typeof spec['type'] === 'string' ? spec['type'] : 'ClusterIP';
    spec['type'] = type;
    if (type === 'ExternalName') {
      delete spec['clusterIP'];
      delete spec['clusterIPs'];
    } else {
      spec['sessionAffinity'] ??= 'None';
      let ip = typeof spec['clusterIP'] === 'string' && spec['clusterIP'] !== '' ? spec['clusterIP'] : undefined;
      if (ip === undefined && typeof prevSpec['clusterIP'] === 'string') ip = prevSpec['clusterIP'];
      if (ip === undefined) ip = this.#allocateClusterIp();
      else if (ip !== 'None' && ip !== prevSpec['clusterIP']) this.#checkClusterIp(obj, ip);
      spec['clusterIP'] = ip;
      spec['clusterIPs'] = [ip];
      if (ip !== 'None') {
        spec['ipFamilies'] = ['IPv4'];
        spec['ipFamilyPolicy'] = 'SingleStack';
      }
      spec['internalTrafficPolicy'] ??= 'Cluster';
    }
    const ports = Array.isArray(spec['ports']) ? spec['ports'] : undefined;
    const prevPorts = Array.isArray(prevSpec['ports']) ? prevSpec['ports'].filter(isJsonObject) : [];
    for (const p of ports ?? []) {
      if (!isJsonObject(p)) continue;
      p['protocol'] ??= 'TCP';
      if (type !== 'ExternalName' && spec['clusterIP'] !== 'None') p['targetPort'] ??= p['port'] ?? 0;
      else if (type !== 'ExternalName') p['targetPort'] ??= p['port'] ?? 0;
      if (type === 'NodePort' || type === 'LoadBalancer') {
        const prev = prevPorts.find((q) => q['port'] === p['port'] && q['protocol'] === p['protocol']);
        p['nodePort'] ??= prev?.['nodePort'] ?? this.#allocateNodePort();
      } else delete p['nodePort'];
    }
    if (type === 'NodePort' || type === 'LoadBalancer') spec['externalTrafficPolicy'] ??= 'Cluster';
  }

  #usedClusterIps(): Set<string> {
    const used = new Set<string>([KUBERNETES_SERVICE_IP]);
    for (const s of this.#store.items('/services')) {
      const ip = isJsonObject(s['spec']) ? s['spec']['clusterIP'] : undefined;
      if (typeof ip === 'string') used.add(ip);
    }
    return used;
  }

  #checkClusterIp(obj: KubeObject, ip: string): void {
    const n = ipToInt(ip);
    const field = [{ field: 'spec.clusterIPs', message: `Invalid value: ["${ip}"]: failed to allocate IP ${ip}: ` }];
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || n - SERVICE_BASE < 0 || n - SERVICE_BASE >= SERVICE_SIZE) {
      field[0]!.message += `the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${SERVICE_CIDR}`;
      throw errors.invalid('', 'Service', obj.metadata.name ?? '', field);
    }
    if (this.#usedClusterIps().has(ip) && !(obj.metadata.namespace === 'default' && obj.metadata.name === 'kubernetes' && ip === KUBERNETES_SERVICE_IP)) {
      field[0]!.message += 'provided IP is already allocated';
      throw errors.invalid('', 'Service', obj.metadata.name ?? '', field);
    }
  }

  #ipCursor = 2;
  #allocateClusterIp(): string {
    const used = this.#usedClusterIps();
    for (let i = 0; i < SERVICE_SIZE - 2; i++) {
      const off = ((this.#ipCursor + i - 2) % (SERVICE_SIZE - 3)) + 2;
      const ip = intToIp(SERVICE_BASE + off);
      if (!used.has(ip)) {
        this.#ipCursor = off + 1;
        return ip;
      }
    }
    throw new StatusError(500, 'InternalError', `Internal error occurred: failed to allocate a serviceIP: range is full (${SERVICE_CIDR})`);
  }

  #allocateNodePort(): number {
    const used = new Set<number>();
    for (const s of this.#store.items('/services')) {
      const ports = isJsonObject(s['spec']) ? s['spec']['ports'] : undefined;
      if (Array.isArray(ports)) for (const p of ports) if (isJsonObject(p) && typeof p['nodePort'] === 'number') used.add(p['nodePort']);
    }
    for (let p = NODE_PORT_MIN; p <= NODE_PORT_MAX; p++) if (!used.has(p)) return p;
    throw new StatusError(500, 'InternalError', 'Internal error occurred: failed to allocate a nodePort: range is full');
  }

  /**
   * PUT (and the end of every PATCH): `subresource` '' replaces all but status (for kinds with
   * a status subresource), 'status' only status. A resourceVersion in the body must be current.
   */
  update(t: ResourceType, namespace: string | undefined, name: string, body: JsonValue, subresource: string): KubeObject {
    if (!isJsonObject(body) || !isJsonObject(body['metadata'])) throw errors.badRequest('the body of the request is not a JSON object with metadata');
    const ns = t.namespaced ? namespace : undefined;
    const current = this.#store.peek(resourceKey(t), ns, name);
    if (current === undefined) throw errors.notFound(t.group, t.plural, name);
    const next = clone(body) as unknown as KubeObject;
    if (next.metadata.name !== undefined && next.metadata.name !== name) throw errors.badRequest(`the name of the object (${String(next.metadata.name)}) does not match the name on the URL (${name})`);
    const rv = next.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) {
      throw errors.conflict(t.group, t.plural, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    let result: KubeObject;
    if (subresource === 'status') {
      result = clone(current);
      if (next['status'] !== undefined) result['status'] = next['status'];
      else delete result['status'];
    } else {
      result = next;
      result.apiVersion = current.apiVersion;
      result.kind = current.kind;
      const keep = ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace', 'name'] as const;
      for (const k of keep) {
        if (current.metadata[k] !== undefined) result.metadata[k] = current.metadata[k] as never;
        else delete result.metadata[k];
      }
      if (t.subresources.includes('status')) {
        if (current['status'] !== undefined) result['status'] = current['status'];
        else delete result['status'];
      }
      if (resourceKey(t) === '/services') this.#prepareService(result, current);
      if (resourceKey(t) === '/namespaces') result.metadata.labels = { ...(result.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name };
      if (JSON.stringify(result['spec']) !== JSON.stringify(current['spec'])) result.metadata.generation = (current.metadata.generation ?? 1) + 1;
    }
    result.metadata.resourceVersion = current.metadata.resourceVersion;
    if (withoutVolatile(result) === withoutVolatile(current)) return this.#served(t, current);
    if (result.metadata.deletionTimestamp !== undefined && (result.metadata.finalizers ?? []).length === 0 && this.#mayRemove(t, result)) {
      const gone = this.#store.remove(resourceKey(t), ns, name);
      if (gone) this.#afterRemove(t, gone);
      return this.#served(t, gone ?? result);
    }
    checkSize(t, result);
    const stored = this.#store.put(resourceKey(t), result);
    this.#afterWrite(t, stored);
    return this.#served(t, stored);
  }

  /** A terminating object without finalizers goes when its grace is over (pods: when grace is 0). */
  #mayRemove(t: ResourceType, o: KubeObject): boolean {
    if (resourceKey(t) === '/pods') return o.metadata.deletionGracePeriodSeconds === 0;
    if (resourceKey(t) === '/namespaces') return this.#namespaceEmpty(o.metadata.name ?? '');
    return true;
  }

  delete(t: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions): { object: KubeObject; removed: boolean } {
    const ns = t.namespaced ? namespace : undefined;
    const current = this.#store.peek(resourceKey(t), ns, name);
    if (current === undefined) throw errors.notFound(t.group, t.plural, name);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== current.metadata.uid) {
      throw errors.conflict(t.group, t.plural, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid ?? ''}`);
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw errors.conflict(t.group, t.plural, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`);
    }
    const key = resourceKey(t);
    let grace = 0;
    if (key === '/pods') {
      const spec = isJsonObject(current['spec']) ? current['spec'] : {};
      const phase = isJsonObject(current['status']) ? current['status']['phase'] : undefined;
      const specGrace = typeof spec['terminationGracePeriodSeconds'] === 'number' ? spec['terminationGracePeriodSeconds'] : DEFAULT_GRACE_SECONDS;
      grace = opts.gracePeriodSeconds ?? specGrace;
      // Pods never scheduled, or already finished, have nothing to stop: they go at once.
      if (typeof spec['nodeName'] !== 'string' || spec['nodeName'] === '' || phase === 'Succeeded' || phase === 'Failed') grace = 0;
    }
    const finalizers = current.metadata.finalizers ?? [];
    if (key === '/namespaces') return { object: this.#deleteNamespace(current), removed: false };
    if (grace === 0 && finalizers.length === 0) {
      const gone = this.#store.remove(key, ns, name)!;
      this.#afterRemove(t, gone);
      return { object: this.#served(t, gone), removed: true };
    }
    const next = clone(current);
    const prevGrace = current.metadata.deletionGracePeriodSeconds;
    if (current.metadata.deletionTimestamp === undefined || prevGrace === undefined || grace < prevGrace) {
      next.metadata.deletionTimestamp = timestamp(this.#now() + grace * 1000);
      next.metadata.deletionGracePeriodSeconds = grace;
    }
    if (withoutVolatile(next) === withoutVolatile(current)) return { object: this.#served(t, current), removed: false };
    const stored = this.#store.put(key, next);
    return { object: this.#served(t, stored), removed: false };
  }

  #deleteNamespace(ns: KubeObject): KubeObject {
    const name = ns.metadata.name ?? '';
    let current = ns;
    if (ns.metadata.deletionTimestamp === undefined) {
      const next = clone(ns);
      next.metadata.deletionTimestamp = timestamp(this.#now());
      next.metadata.deletionGracePeriodSeconds = 0;
      next['status'] = { phase: 'Terminating' };
      current = this.#store.put('/namespaces', next);
    }
    // The namespace controller's work: delete everything in it, then the namespace once empty.
    for (const t of this.#registry.stored()) {
      if (!t.namespaced) continue;
      for (const o of this.#store.items(resourceKey(t), name)) {
        if (o.metadata.deletionTimestamp !== undefined) continue;
        this.delete(t, name, o.metadata.name ?? '', {});
      }
    }
    this.#finishNamespace(name);
    return this.#served(this.#registry.lookup('v1', 'namespaces')!, this.#store.peek('/namespaces', undefined, name) ?? current);
  }

  #namespaceEmpty(name: string): boolean {
    for (const t of this.#registry.stored()) if (t.namespaced && this.#store.hasAny(resourceKey(t), name)) return false;
    return true;
  }

  #finishNamespace(name: string): void {
    const ns = this.#store.peek('/namespaces', undefined, name);
    if (ns?.metadata.deletionTimestamp === undefined || !this.#namespaceEmpty(name)) return;
    if ((ns.metadata.finalizers ?? []).length > 0) return;
    this.#store.remove('/namespaces', undefined, name);
  }

  #afterWrite(t: ResourceType, o: KubeObject): void {
    if (resourceKey(t) === 'apiextensions.k8s.io/customresourcedefinitions') this.#registry.addCrd(o);
    if (resourceKey(t) === '/namespaces' && o.metadata.deletionTimestamp === undefined && this.#store.peek('/serviceaccounts', o.metadata.name, 'default') === undefined) {
      // The service-account controller's work: every namespace has a `default` account.
      this.create(this.#registry.lookup('v1', 'serviceaccounts')!, o.metadata.name, { metadata: { name: 'default' } });
    }
  }

  /**
   * The garbage collector's work, in the background style: objects whose every owner is gone
   * are deleted (pods gracefully). Owners are in the same namespace or cluster-scoped.
   */
  #collectGarbage(owner: KubeObject): void {
    const uid = owner.metadata.uid;
    if (uid === undefined) return;
    for (const t of this.#registry.stored()) {
      if (!t.namespaced && owner.metadata.namespace !== undefined) continue;
      for (const o of this.#store.items(resourceKey(t), owner.metadata.namespace !== undefined ? owner.metadata.namespace : undefined)) {
        const refs = o.metadata['ownerReferences'];
        if (!Array.isArray(refs) || !refs.some((r) => isJsonObject(r) && r['uid'] === uid)) continue;
        const alive = refs.some((r) => isJsonObject(r) && r['uid'] !== uid && this.#ownerExists(r, o.metadata.namespace));
        if (!alive && o.metadata.deletionTimestamp === undefined) this.delete(t, o.metadata.namespace, o.metadata.name ?? '', {});
      }
    }
  }

  #ownerExists(ref: JsonObject, namespace: string | undefined): boolean {
    const t = this.#registry.byKind(String(ref['apiVersion'] ?? ''), String(ref['kind'] ?? ''));
    if (t === undefined) return false;
    const o = this.#store.peek(resourceKey(t), t.namespaced ? namespace : undefined, String(ref['name'] ?? ''));
    return o !== undefined && o.metadata.uid === ref['uid'];
  }

  #afterRemove(t: ResourceType, o: KubeObject): void {
    this.#collectGarbage(o);
    if (resourceKey(t) === 'apiextensions.k8s.io/customresourcedefinitions') {
      const spec = isJsonObject(o['spec']) ? o['spec'] : {};
      const plural = isJsonObject(spec['names']) ? spec['names']['plural'] : undefined;
      const versions = this.#registry.versionsOf(String(spec['group']), String(plural));
      this.#registry.removeCrd(o.metadata.name ?? '');
      // Deleting a CRD deletes its objects, as the apiextensions server does.
      for (const v of versions.slice(0, 1)) for (const x of this.#store.items(resourceKey(v))) this.#store.remove(resourceKey(v), x.metadata.namespace, x.metadata.name ?? '');
    }
    if (t.namespaced && o.metadata.namespace !== undefined && this.#store.peek('/namespaces', undefined, o.metadata.namespace)?.metadata.deletionTimestamp !== undefined) {
      this.#finishNamespace(o.metadata.namespace);
    }
  }

  /** The Gateway API's standard CRDs and the weft-waypoint GatewayClass, when absent (gateway-api.ts). */
  #installGatewayApi(): void {
    const crdType = this.#registry.lookup('apiextensions.k8s.io/v1', 'customresourcedefinitions')!;
    for (const crd of gatewayApiCrds()) {
      const name = (crd['metadata'] as JsonObject)['name'] as string;
      if (this.#store.peek(resourceKey(crdType), undefined, name) === undefined) this.create(crdType, undefined, crd);
    }
    const classType = this.#registry.lookup(`${GATEWAY_API_GROUP}/v1`, 'gatewayclasses');
    const gc = waypointGatewayClass();
    const gcName = (gc['metadata'] as JsonObject)['name'] as string;
    if (classType !== undefined && this.#store.peek(resourceKey(classType), undefined, gcName) === undefined) this.create(classType, undefined, gc);
  }

  /** Registers the kinds of CRDs found in the store at start. */
  loadCrds(): void {
    for (const crd of this.#store.items('apiextensions.k8s.io/customresourcedefinitions')) this.#registry.addCrd(crd);
  }

  /**
   * Objects a fresh cluster has: the four namespaces, their `default` accounts, the `kubernetes`
   * Service; with `advertise`, that Service's Endpoints and EndpointSlice name this server
   * (a Service without selector and hand-managed endpoints, as on every cluster).
   */
  bootstrap(advertise?: { ip: string; port: number }, gatewayApi = true): void {
    const nsType = this.#registry.lookup('v1', 'namespaces')!;
    if (gatewayApi) this.#installGatewayApi();
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (this.#store.peek('/namespaces', undefined, ns) === undefined) this.create(nsType, undefined, { metadata: { name: ns } });
    }
    const port = advertise?.port ?? 6443;
    if (this.#store.peek('/services', 'default', 'kubernetes') === undefined) {
      this.create(this.#registry.lookup('v1', 'services')!, 'default', {
        metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
        spec: { clusterIP: KUBERNETES_SERVICE_IP, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }] },
      });
    }
    if (advertise === undefined) return;
    const labels = { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'weft-lab-kube-apiserver' };
    const wanted: [ResourceType, JsonObject][] = [
      [this.#registry.lookup('v1', 'endpoints')!, { metadata: { name: 'kubernetes', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }, subsets: [{ addresses: [{ ip: advertise.ip }], ports: [{ name: 'https', port, protocol: 'TCP' }] }] }],
      [this.#registry.lookup('discovery.k8s.io/v1', 'endpointslices')!, {
        metadata: { name: 'kubernetes', labels },
        addressType: 'IPv4',
        endpoints: [{ addresses: [advertise.ip], conditions: { ready: true, serving: true, terminating: false } }],
        ports: [{ name: 'https', port, protocol: 'TCP' }],
      }],
    ];
    for (const [t, body] of wanted) {
      const current = this.#store.peek(resourceKey(t), 'default', 'kubernetes');
      if (current === undefined) this.create(t, 'default', body);
      else this.update(t, 'default', 'kubernetes', { ...clone(current), ...body, metadata: { ...clone(current.metadata), ...(body['metadata'] as JsonObject) } } as unknown as JsonValue, '');
    }
  }
}
