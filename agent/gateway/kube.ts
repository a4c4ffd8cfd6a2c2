/**
 * The ingress gateway in Kubernetes mode: what it reads beyond the node agent's discovery, and the
 * status it writes.
 *
 * Read (GatewayObjectWatch): `kubernetes.io/tls` Secrets (a list + watch with the field selector
 * `type=kubernetes.io/tls`, so no other Secret ever reaches the process), Ingresses and
 * IngressClasses (networking.k8s.io/v1) and Istio's Gateways (networking.istio.io/v1, when the
 * CRD is installed): the agent's discovery source does not watch them (node agents do not need
 * them). Each is one discovery Reflector (list, watch, resume, backoff); a change asks the
 * gateway to apply the model again, so a Secret that is fixed is served from its next event.
 *
 * Written (GatewayStatusWriter), only when it changed: the Gateway's status (addresses,
 * conditions, listeners with attachedRoutes and Accepted/Programmed/ResolvedRefs), the HTTPRoute
 * parent status of the routes with a parentRef to it (Weft's entries replaced, other controllers'
 * kept: agent/l7 kubernetesRouteStatus), and each Ingress's status.loadBalancer with the
 * gateway's address. JSON merge patches on the status subresources carrying the resourceVersion
 * read (a 409 is read and written again); a failed write is logged and tried again with backoff.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { Reflector, type Converted } from '../discovery/reflector.js';
import { kubernetesRouteStatus, type RouteStatus } from '../l7/index.js';
import type { Logger } from '../log.js';
import type { SecretLookup, SecretObject } from './config.js';
import type { GatewayStatus } from './gateway.js';
import { INGRESS_CONTROLLER } from './ingress.js';

interface Meta {
  name: string;
  namespace?: string;
}

function metaOf(raw: unknown): Meta | undefined {
  const m = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  return typeof m?.name === 'string' ? { name: m.name, ...(typeof m.namespace === 'string' ? { namespace: m.namespace } : {}) } : undefined;
}

const WATCHED: readonly { kind: string; apiVersion: string; path: string }[] = [
  { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/ingresses' },
  { kind: 'IngressClass', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/ingressclasses' },
  { kind: 'Gateway', apiVersion: 'networking.istio.io/v1', path: '/apis/networking.istio.io/v1/gateways' },
];

/** Secrets, Ingresses, IngressClasses and Istio Gateways from the API server; 'change' after each list or event. */
export class GatewayObjectWatch extends EventEmitter {
  readonly #reflectors: Reflector<unknown>[] = [];
  readonly #objects = new Map<string, unknown>();
  readonly #secrets = new Map<string, SecretObject>();
  #list: unknown[] = [];

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    super();
    const flush = (): void => {
      this.#list = [...this.#objects.values()];
      this.emit('change');
    };
    const refused = (kind: string) => (key: string, reason: string | undefined) => {
      if (reason !== undefined) logger.warn({ kind, key, reason }, 'object refused');
    };
    this.#reflectors.push(
      new Reflector<SecretObject>({
        kubeConfig,
        kind: 'Secret',
        path: '/api/v1/secrets',
        fieldSelector: 'type=kubernetes.io/tls',
        logger,
        // Only what a certificate needs is kept: type and the two fields.
        convert: (raw): Converted<SecretObject> | undefined => {
          const m = metaOf(raw);
          const s = raw as SecretObject;
          if (m === undefined) return undefined;
          const data = s.data ?? {};
          return { key: `${m.namespace ?? 'default'}/${m.name}`, value: { type: s.type, data: { ...(data['tls.crt'] !== undefined ? { 'tls.crt': data['tls.crt'] } : {}), ...(data['tls.key'] !== undefined ? { 'tls.key': data['tls.key'] } : {}) } } };
        },
        handler: { upsert: (k, v) => this.#secrets.set(k, v), remove: (k) => this.#secrets.delete(k), flush, refused: refused('Secret') },
      }) as Reflector<unknown>,
    );
    for (const w of WATCHED) {
      this.#reflectors.push(
        new Reflector<unknown>({
          kubeConfig,
          kind: w.kind,
          path: w.path,
          logger,
          optional: true,
          convert: (raw) => {
            const m = metaOf(raw);
            return m === undefined ? undefined : { key: `${w.apiVersion}/${w.kind}/${m.namespace ?? ''}/${m.name}`, value: { ...(raw as object), apiVersion: w.apiVersion, kind: w.kind } };
          },
          handler: { upsert: (k, v) => this.#objects.set(k, v), remove: (k) => this.#objects.delete(k), flush, refused: refused(w.kind) },
        }),
      );
    }
  }

  /** Starts the watches; resolves once each has listed (or, for a kind not served, settled). */
  async start(): Promise<void> {
    for (const r of this.#reflectors) r.start();
    await Promise.all(this.#reflectors.map((r) => r.whenSettled()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#reflectors.map((r) => r.stop()));
  }

  /** Ingresses, IngressClasses and Istio Gateways, as MeshModel.others has objects. */
  others(): readonly unknown[] {
    return this.#list;
  }

  readonly secrets: SecretLookup = (namespace, name) => this.#secrets.get(`${namespace}/${name}`);
}

/** One request to the API server: method, path, JSON body; the answer's status and parsed body. */
export type KubeRequest = (method: 'GET' | 'PATCH', path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;

/** A KubeRequest over node:http(s) with the kubeconfig's credentials. */
export function kubeRequest(kubeConfig: KubeConfig): KubeRequest {
  return async (method, path, body) => {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(`${cluster.server.replace(/\/$/, '')}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json', ...(payload !== undefined ? { 'content-type': 'application/merge-patch+json', 'content-length': Buffer.byteLength(payload) } : {}) } };
    await kubeConfig.applyToHTTPSOptions(opts);
    const lib = url.protocol === 'https:' ? https : http;
    if (lib === http) delete opts.agent;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: kept as text for the error message
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  };
}

/** What the writer is given on every change. */
export interface StatusSnapshot {
  readonly gateway: { readonly namespace: string; readonly name: string; readonly generation: number | undefined; readonly found: boolean };
  readonly status: GatewayStatus;
  readonly routes: readonly RouteStatus[];
  /** `<namespace>/<name>` of the Ingresses served. */
  readonly ingresses: readonly string[];
  /** The gateway's external addresses (IPs, or hostnames). */
  readonly addresses: readonly string[];
}

const IP = /^[0-9.]+$|:/;
const RETRY_INITIAL_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** Times a write is made again at once after a 409 Conflict (the object changed between GET and PATCH). */
const CONFLICT_RETRIES = 3;

function conditionsWithTime(cs: readonly { type: string; status: string; reason: string; message: string }[], before: readonly { type?: string; status?: string; lastTransitionTime?: string }[] | undefined, now: string, generation: number | undefined): object[] {
  return cs.map((c) => {
    const old = before?.find((b) => b.type === c.type);
    return { ...c, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime: old !== undefined && old.status === c.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now };
  });
}

/** Writes the gateway's status objects to the API server, each only when it changed. */
export class GatewayStatusWriter {
  readonly #request: KubeRequest;
  readonly #log: Logger;
  readonly #now: () => Date;
  /** Path -> the last status body written (without times), so that an unchanged one is not written again. */
  readonly #written = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
  #latest: StatusSnapshot | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = RETRY_INITIAL_MS;
  #stopped = false;

  constructor(request: KubeRequest, logger: Logger, now: () => Date = () => new Date()) {
    this.#request = request;
    this.#log = logger;
    this.#now = now;
  }

  /**
   * Queues a write of `s` (writes run one at a time, in order); resolves when it is done. A
   * failed write is tried again after a backoff (1 s doubling to 60 s) unless a newer snapshot
   * came meanwhile: what was written already is skipped then.
   */
  write(s: StatusSnapshot): Promise<void> {
    this.#latest = s;
    clearTimeout(this.#retry);
    this.#queue = this.#queue
      .then(() => this.#write(s))
      .then(
        () => {
          this.#backoffMs = RETRY_INITIAL_MS;
        },
        (err: Error) => {
          this.#log.warn({ code: 'WEFT_ERR_GATEWAY_STATUS', err: err.message, retryMs: this.#backoffMs }, 'cannot write status');
          this.#retry = setTimeout(() => {
            if (this.#latest === s && !this.#stopped) void this.write(s);
          }, this.#backoffMs);
          this.#retry.unref();
          this.#backoffMs = Math.min(this.#backoffMs * 2, RETRY_MAX_MS);
        },
      );
    return this.#queue;
  }

  /** No more retries (the process stops). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }

  async #write(s: StatusSnapshot): Promise<void> {
    const now = this.#now().toISOString().replace(/\.\d+Z$/, 'Z');
    const { namespace, name, generation } = s.gateway;
    const addresses = s.addresses.map((a) => ({ type: IP.test(a) ? 'IPAddress' : 'Hostname', value: a }));
    if (s.gateway.found) {
      await this.#patch(`/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/gateways/${name}/status`, { status: s.status, addresses, generation }, (prev) => {
        const before = prev as { conditions?: []; listeners?: { name?: string; conditions?: [] }[] } | undefined;
        return {
          addresses,
          conditions: conditionsWithTime(s.status.conditions, before?.conditions, now, generation),
          listeners: s.status.listeners.map((l) => ({
            name: l.name,
            supportedKinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }],
            attachedRoutes: l.attachedRoutes,
            conditions: conditionsWithTime(l.conditions, before?.listeners?.find((x) => x.name === l.name)?.conditions, now, generation),
          })),
        };
      });
    }
    for (const r of s.routes) {
      if (r.kind !== 'HTTPRoute' || r.namespace === undefined || r.name === undefined) continue;
      await this.#patch(`/apis/gateway.networking.k8s.io/v1/namespaces/${r.namespace}/httproutes/${r.name}/status`, r.parents, (prev) => kubernetesRouteStatus(r, prev as { parents?: unknown[] } | undefined, now, INGRESS_CONTROLLER));
    }
    const lb = { ingress: s.addresses.map((a) => (IP.test(a) ? { ip: a } : { hostname: a })) };
    for (const key of s.ingresses) {
      const [ns, n] = key.split('/') as [string, string];
      await this.#patch(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses/${n}/status`, lb, () => ({ loadBalancer: lb }));
    }
  }

  /** GET the object's status (for times and other controllers' entries), then PATCH the new one, unless `what` is as last written. */
  async #patch(path: string, what: unknown, make: (previous: unknown) => object): Promise<void> {
    const fingerprint = JSON.stringify(what);
    if (this.#written.get(path) === fingerprint) return;
    for (let attempt = 0; ; attempt++) {
      const got = await this.#request('GET', path);
      if (got.status === 404) return; // deleted meanwhile: nothing to write
      if (got.status !== 200) throw new Error(`GET ${path}: HTTP ${got.status}`);
      const { status: previous, metadata } = got.body as { status?: unknown; metadata?: { resourceVersion?: unknown } };
      // The resourceVersion read: a status changed by another writer since is a 409, read again.
      const rv = typeof metadata?.resourceVersion === 'string' ? { metadata: { resourceVersion: metadata.resourceVersion } } : {};
      const res = await this.#request('PATCH', path, { ...rv, status: make(previous) });
      if (res.status === 409 && attempt < CONFLICT_RETRIES) continue;
      if (res.status < 200 || res.status > 299) throw new Error(`PATCH ${path}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      this.#written.set(path, fingerprint);
      return;
    }
  }
}
