/**
 * Kubernetes mode: the lab's kubelet, one process per node (`weft lab kubelet`), running in the
 * node's network namespace, an ordinary client of the lab's API server. It
 * - watches the Pods bound to its node (fieldSelector spec.nodeName=<node>, as the kubelet does);
 * - for a new pod: allocates its IP from the node's podCIDR, creates its network namespace and
 *   wiring (network.ts, as the local lab does), writes its hosts file, runs the CNI chain
 *   (cni.ts: where Weft's chained plugin hands the pod to the agent before its app starts),
 *   writes its projected service-account tokens (TokenRequest, refreshed before expiry), and
 *   starts its containers' commands; hostNetwork pods (the agents) run in the node's namespace;
 * - writes status through pods/status: podIP(s), hostIP(s), phase, conditions PodScheduled,
 *   Initialized, ContainersReady, Ready, containerStatuses with restart counts;
 * - runs readiness and liveness probes (kubelet-probes.ts) from the node's namespace; restarts a
 *   container whose liveness fails or that exits (restartPolicy Always/OnFailure, with backoff);
 * - honours graceful deletion: deletionTimestamp -> SIGTERM, up to the grace period, SIGKILL,
 *   CNI DEL, namespace removed, then the Pod deleted with grace 0;
 * - plays kube-proxy and DNS for its node (kube-proxy.ts): DNAT rules from Services and
 *   EndpointSlices, each pod's /etc/hosts from the Services.
 * What it runs is checkpointed (kube/kubelet-<node>.json), so a restarted kubelet adopts its pods.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AuthenticationV1TokenRequest,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type V1Container,
  type V1ConfigMap,
  type V1EndpointSlice,
  type V1Pod,
  type V1PodCondition,
  type V1PodStatus,
  type V1Service,
} from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { allocatePodHost, podIp } from './addressing.js';
import { runCniChain, type CniConfig } from './cni-chain.js';
import { LabInformer, serialized } from './kube-informer.js';
import { serviceViewsFromApi } from './kube-proxy.js';
import { ProbeTracker, probeSupported, runProbe } from './kubelet-probes.js';
import { addNetns, deleteNetns, hostVethName, listNetns, restoreIptables, saveIptables, unwirePod, wirePods } from './network.js';
import { etcNetnsDir, podLogFile, podNetns } from './paths.js';
import { listeningTcpPorts, netnsPids, refAlive, startInNetns, stopProcesses, type ProcRef } from './procs.js';
import { hostsFile, RESOLV_CONF, serviceRules, type ServiceView } from './services.js';
import { writeFileAtomic, type NodeState, type PodState } from './state.js';
import { resolveArgv } from './converge.js';
import { expand } from './expand.js';

export { expand };
import { stableJson } from './spec.js';

export interface KubeletOptions {
  lab: string;
  node: NodeState;
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Working directory of pod processes (the manifest dir of `up`: `node app/x.mjs` works). */
  workDir: string;
  /** Where pods' projected volumes go: <podsDir>/<ns>_<name>/<volume>/<path>. */
  podsDir: string;
  checkpointFile: string;
  cni: CniConfig | undefined;
  /** Extra environment for every container (the lab's WEFT_* settings). */
  env?: Record<string, string>;
}

interface RuntimeContainer {
  spec: V1Container;
  proc: ProcRef | undefined;
  restartCount: number;
  startedAt: string | undefined;
  lastExit: { code: number; finishedAt: string; reason: string } | undefined;
  /** Exit observed and not yet handled (restart pending). */
  exited: boolean;
  restartAt: number;
  readiness: ProbeTracker | undefined;
  liveness: ProbeTracker | undefined;
  /** No readiness probe: ready once it listens on its declared TCP ports (see docs). */
  listening: boolean;
  probeTimers: NodeJS.Timeout[];
}

interface RuntimePod {
  uid: string;
  namespace: string;
  name: string;
  hostNetwork: boolean;
  ip: string;
  netns: string;
  host: number | undefined;
  hostVeth: string | undefined;
  containers: RuntimeContainer[];
  startTime: string;
  /** Serializes start/terminate of this pod. */
  busy: Promise<void> | undefined;
  started: boolean;
  terminating: boolean;
  cniResult: Record<string, unknown> | undefined;
  lastStatus: string;
  tokenTimers: NodeJS.Timeout[];
  failure: string | undefined;
}

/** What survives a kubelet restart: a pod's sandbox as RuntimePod holds it, and its processes. */
interface Checkpoint {
  pods: (Pick<RuntimePod, 'uid' | 'namespace' | 'name' | 'hostNetwork' | 'ip' | 'netns' | 'host' | 'hostVeth' | 'startTime' | 'cniResult'> & {
    containers: { name: string; pid: number; startTime: string; restartCount: number; startedAt: string | undefined }[];
  })[];
}

const TICK_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** The kubelet renews a projected token once 80 % of its life has passed. */
const TOKEN_REFRESH_FRACTION = 0.8;

export function tokenRefreshDelayMs(expiresAtMs: number, nowMs: number): number {
  return Math.max(1_000, (expiresAtMs - nowMs) * TOKEN_REFRESH_FRACTION);
}

/** TokenRequest for a service account, bound to a pod (what a projected serviceAccountToken volume holds). */
export async function requestBoundToken(
  core: CoreV1Api,
  o: { namespace: string; serviceAccount: string; pod: { name: string; uid: string }; audience: string | undefined; expirationSeconds: number },
): Promise<{ token: string; expiresAtMs: number }> {
  const body = new AuthenticationV1TokenRequest();
  body.spec = { audiences: o.audience ? [o.audience] : [], expirationSeconds: o.expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: o.pod.name, uid: o.pod.uid } };
  const res = await core.createNamespacedServiceAccountToken({ name: o.serviceAccount, namespace: o.namespace, body });
  const token = res.status?.token;
  if (!token) throw new Error(`TokenRequest for ${o.namespace}/${o.serviceAccount} returned no token`);
  const expiresAtMs = res.status?.expirationTimestamp ? new Date(res.status.expirationTimestamp).getTime() : Date.now() + o.expirationSeconds * 1000;
  return { token, expiresAtMs };
}

function keyOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? 'default'}/${pod.metadata?.name ?? ''}`;
}

export class Kubelet {
  readonly #o: KubeletOptions;
  readonly #log: Logger;
  readonly #core: CoreV1Api;
  readonly #pods: LabInformer<V1Pod>;
  readonly #services: LabInformer<V1Service>;
  readonly #slices: LabInformer<V1EndpointSlice>;
  readonly #configMaps: LabInformer<V1ConfigMap>;
  readonly #running = new Map<string, RuntimePod>();
  readonly #reconcile: () => void;
  readonly #proxy: () => void;
  #views: ServiceView[] = [];
  #tick: NodeJS.Timeout | undefined;
  #lastHost = 1;
  #stopped = false;

  constructor(options: KubeletOptions) {
    this.#o = options;
    this.#log = options.logger;
    const kc = options.kubeConfig;
    this.#core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    this.#reconcile = serialized(() => this.#sync(), 10, this.#log, 'kubelet sync');
    this.#proxy = serialized(() => this.#syncProxy(), 20, this.#log, 'service rules sync');
    const fieldSelector = `spec.nodeName=${options.node.name}`;
    this.#pods = new LabInformer<V1Pod>({
      kubeConfig: kc,
      logger: this.#log,
      path: '/api/v1/pods',
      fieldSelector,
      list: () => this.#core.listPodForAllNamespaces({ fieldSelector }),
      onChange: () => this.#reconcile(),
    });
    const proxyChanged = (): void => this.#proxy();
    this.#services = new LabInformer<V1Service>({ kubeConfig: kc, logger: this.#log, path: '/api/v1/services', list: () => this.#core.listServiceForAllNamespaces(), onChange: proxyChanged });
    this.#slices = new LabInformer<V1EndpointSlice>({ kubeConfig: kc, logger: this.#log, path: '/apis/discovery.k8s.io/v1/endpointslices', list: () => discovery.listEndpointSliceForAllNamespaces(), onChange: proxyChanged });
    this.#configMaps = new LabInformer<V1ConfigMap>({ kubeConfig: kc, logger: this.#log, path: '/api/v1/configmaps', list: () => this.#core.listConfigMapForAllNamespaces(), onChange: () => this.#refreshConfigMaps() });
  }

  async start(): Promise<void> {
    await this.#restoreCheckpoint();
    await Promise.all([this.#services.start(), this.#slices.start(), this.#configMaps.start()]);
    await this.#pods.start();
    await this.#markNodeReady();
    this.#tick = setInterval(() => this.#onTick(), TICK_MS);
    this.#reconcile();
    this.#proxy();
  }

  /** Stops watching; pods keep running (as when a kubelet restarts). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#tick) clearInterval(this.#tick);
    for (const p of this.#running.values()) this.#clearTimers(p);
    await Promise.all([this.#pods.stop(), this.#services.stop(), this.#slices.stop(), this.#configMaps.stop()]);
  }

  // ------------------------------------------------------------------------------------------
  // Pods

  async #sync(): Promise<void> {
    if (this.#stopped || !this.#pods.synced) return;
    const inApi = new Map(this.#pods.list().map((p) => [p.metadata?.uid ?? '', p]));
    for (const pod of inApi.values()) {
      const uid = pod.metadata?.uid ?? '';
      const rp = this.#running.get(uid);
      if (pod.metadata?.deletionTimestamp !== undefined) {
        if (rp === undefined) this.#finalDelete(pod);
        else if (!rp.terminating) this.#whenIdle(rp, () => this.#terminate(rp, pod, true));
        continue;
      }
      if (rp !== undefined) {
        this.#writeStatusSoon(rp);
        continue;
      }
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      this.#admit(pod);
    }
    // Pods gone from the API without graceful deletion (force delete, or lost while we were down).
    for (const rp of this.#running.values()) {
      if (!inApi.has(rp.uid) && !rp.terminating) this.#whenIdle(rp, () => this.#terminate(rp, undefined, false));
    }
  }

  #whenIdle(rp: RuntimePod, fn: () => Promise<void>): void {
    const previous = rp.busy ?? Promise.resolve();
    const next = previous.then(fn).catch((err: unknown) => this.#log.error({ err, pod: `${rp.namespace}/${rp.name}` }, 'pod operation failed'));
    rp.busy = next;
    void next.finally(() => {
      if (rp.busy === next) rp.busy = undefined;
    });
  }

  #admit(pod: V1Pod): void {
    const hostNetwork = pod.spec?.hostNetwork === true;
    const namespace = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    let ip = this.#o.node.fabricIP;
    let host: number | undefined;
    if (!hostNetwork) {
      const used = new Set([...this.#running.values()].flatMap((p) => (p.host === undefined ? [] : [p.host])));
      host = allocatePodHost(used, this.#lastHost);
      if (host === undefined) {
        this.#log.error({ pod: `${namespace}/${name}` }, `node ${this.#o.node.name} has no pod address left in ${this.#o.node.podCIDR}`);
        return;
      }
      this.#lastHost = host;
      ip = podIp(this.#o.node.index, host);
    }
    const rp: RuntimePod = {
      uid: pod.metadata?.uid ?? '',
      namespace,
      name,
      hostNetwork,
      ip,
      netns: hostNetwork ? this.#o.node.netns : podNetns(this.#o.lab, namespace, name),
      host,
      hostVeth: host === undefined ? undefined : hostVethName(host),
      containers: (pod.spec?.containers ?? []).map((c) => this.#newContainer(c)),
      startTime: new Date().toISOString(),
      busy: undefined,
      started: false,
      terminating: false,
      cniResult: undefined,
      lastStatus: '',
      tokenTimers: [],
      failure: undefined,
    };
    this.#running.set(rp.uid, rp);
    this.#whenIdle(rp, () => this.#startPod(rp, pod));
  }

  #newContainer(spec: V1Container): RuntimeContainer {
    return {
      spec,
      proc: undefined,
      restartCount: 0,
      startedAt: undefined,
      lastExit: undefined,
      exited: false,
      restartAt: 0,
      readiness: spec.readinessProbe && probeSupported(spec.readinessProbe) ? new ProbeTracker(spec.readinessProbe, false) : undefined,
      liveness: spec.livenessProbe && probeSupported(spec.livenessProbe) ? new ProbeTracker(spec.livenessProbe, true) : undefined,
      listening: false,
      probeTimers: [],
    };
  }

  async #startPod(rp: RuntimePod, pod: V1Pod): Promise<void> {
    const what = `${rp.namespace}/${rp.name}`;
    try {
      // ConfigMap volumes first: a missing ConfigMap keeps the pod in ContainerCreating, cheaply.
      await this.#writeConfigMapVolumes(rp, pod);
      if (!rp.hostNetwork) await this.#buildSandbox(rp);
      await this.#writeTokens(rp, pod);
      await this.#checkpoint();
      for (const c of rp.containers) await this.#startContainer(rp, pod, c);
      rp.started = true;
      rp.failure = undefined;
      this.#log.info({ pod: what, ip: rp.ip }, 'pod running');
    } catch (err) {
      rp.failure = (err as Error).message;
      this.#log.error({ pod: what, err: { message: rp.failure } }, 'pod sandbox or container start failed; retrying');
      // Undo and let the next sync admit it again, after a pause (the kubelet's sandbox backoff).
      await this.#teardown(rp, 1_000).catch(() => undefined);
      await this.#writeStatus(rp).catch(() => undefined);
      this.#running.delete(rp.uid);
      await this.#checkpoint();
      setTimeout(() => this.#reconcile(), 2_000).unref();
      return;
    }
    await this.#writeStatus(rp);
  }

  async #buildSandbox(rp: RuntimePod): Promise<void> {
    const present = new Set(await listNetns());
    if (present.has(rp.netns)) {
      // Left by a kubelet that died half-way: its processes and links go first.
      await stopProcesses([], await netnsPids(rp.netns), 1_000);
      await deleteNetns([rp.netns]);
    }
    await addNetns([rp.netns]);
    await wirePods([this.#podState(rp)], new Map([[this.#o.node.name, this.#o.node]]));
    await this.#writeEtc(rp);
    if (this.#o.cni !== undefined) {
      rp.cniResult = await runCniChain(this.#o.cni, 'ADD', { namespace: rp.namespace, name: rp.name, uid: rp.uid, containerId: rp.uid, netnsPath: `/run/netns/${rp.netns}`, ip: rp.ip });
    }
  }

  #podState(rp: RuntimePod): PodState {
    return { name: rp.name, namespace: rp.namespace, node: this.#o.node.name, ip: rp.ip, netns: rp.netns, hostVeth: rp.hostVeth ?? '', specHash: '', procs: [], log: podLogFile(this.#o.lab, rp.namespace, rp.name) };
  }

  #podDir(rp: { namespace: string; name: string }): string {
    return join(this.#o.podsDir, `${rp.namespace}_${rp.name}`);
  }

  /**
   * configMap volumes: each key (or the volume's items) as a file in <pod dir>/<volume>/, written
   * before the containers start and rewritten in place when the ConfigMap changes (as the
   * kubelet's sync does; the trust bundle the agents read comes this way). A ConfigMap that does
   * not exist fails the start unless the volume is optional; the kubelet retries.
   */
  async #writeConfigMapVolumes(rp: RuntimePod, pod: V1Pod): Promise<void> {
    for (const vol of pod.spec?.volumes ?? []) {
      const ref = vol.configMap;
      if (ref?.name === undefined) continue;
      const cm = this.#configMaps.list().find((c) => c.metadata?.namespace === rp.namespace && c.metadata.name === ref.name);
      if (cm === undefined) {
        if (ref.optional === true) continue;
        throw new Error(`configmap "${ref.name}" not found (volume ${vol.name})`);
      }
      const dir = join(this.#podDir(rp), vol.name);
      await mkdir(dir, { recursive: true });
      const data = cm.data ?? {};
      const files = ref.items !== undefined ? ref.items.map((i) => [i.path, data[i.key]] as const) : Object.entries(data);
      for (const [path, content] of files) {
        if (content === undefined || path.includes('..')) continue;
        const file = join(dir, path);
        if ((await readFile(file, 'utf8').catch(() => undefined)) !== content) await writeFileAtomic(file, content);
      }
    }
  }

  #refreshConfigMaps(): void {
    for (const rp of this.#running.values()) {
      const pod = this.#pods.list().find((p) => p.metadata?.uid === rp.uid);
      if (pod === undefined || rp.terminating || !(pod.spec?.volumes ?? []).some((v) => v.configMap !== undefined)) continue;
      void this.#writeConfigMapVolumes(rp, pod).catch((err: unknown) => this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, err: { message: (err as Error).message } }, 'configmap volume update failed'));
    }
  }

  /** Projected serviceAccountToken volumes: TokenRequest bound to the pod, refreshed at 80% of its life. */
  async #writeTokens(rp: RuntimePod, pod: V1Pod): Promise<void> {
    const sa = pod.spec?.serviceAccountName ?? 'default';
    for (const vol of pod.spec?.volumes ?? []) {
      for (const src of vol.projected?.sources ?? []) {
        const t = src.serviceAccountToken;
        if (t === undefined) continue;
        const file = join(this.#podDir(rp), vol.name, t.path);
        const schedule = (inMs: number): void => {
          const timer = setTimeout(() => {
            rp.tokenTimers = rp.tokenTimers.filter((x) => x !== timer);
            refresh().catch((err: unknown) => {
              // The old token stays valid a while (20 % of its life): retry until it works.
              this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, err: { message: (err as Error).message } }, 'token refresh failed; retrying in 5 s');
              schedule(5_000);
            });
          }, inMs);
          rp.tokenTimers.push(timer);
        };
        const refresh = async (): Promise<void> => {
          const { token, expiresAtMs } = await requestBoundToken(this.#core, { namespace: rp.namespace, serviceAccount: sa, pod: { name: rp.name, uid: rp.uid }, audience: t.audience, expirationSeconds: t.expirationSeconds ?? 3600 });
          await mkdir(join(this.#podDir(rp), vol.name), { recursive: true });
          await writeFileAtomic(file, token);
          if (!rp.terminating && !this.#stopped) schedule(tokenRefreshDelayMs(expiresAtMs, Date.now()));
        };
        await refresh();
      }
    }
  }

  #env(rp: RuntimePod, pod: V1Pod, c: V1Container): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: process.env.HOME ?? '/root',
      HOSTNAME: rp.hostNetwork ? this.#o.node.name : rp.name,
      POD_NAME: rp.name,
      POD_NAMESPACE: rp.namespace,
      POD_IP: rp.ip,
      NODE_NAME: this.#o.node.name,
      ...this.#o.env,
    };
    const api = this.#services.list().find((s) => s.metadata?.namespace === 'default' && s.metadata?.name === 'kubernetes');
    if (api?.spec?.clusterIP) {
      env.KUBERNETES_SERVICE_HOST = api.spec.clusterIP;
      env.KUBERNETES_SERVICE_PORT = String(api.spec.ports?.[0]?.port ?? 443);
    }
    const field = (path: string): string => {
      switch (path) {
        case 'metadata.name': return rp.name;
        case 'metadata.namespace': return rp.namespace;
        case 'metadata.uid': return rp.uid;
        case 'spec.nodeName': return this.#o.node.name;
        case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
        case 'status.podIP': return rp.ip;
        case 'status.hostIP': return this.#o.node.fabricIP;
        default: return '';
      }
    };
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = expand(e.value, env);
      else if (e.valueFrom?.fieldRef) env[e.name] = field(e.valueFrom.fieldRef.fieldPath);
      else env[e.name] = '';
    }
    return env;
  }

  async #startContainer(rp: RuntimePod, pod: V1Pod, c: RuntimeContainer): Promise<void> {
    const env = this.#env(rp, pod, c.spec);
    const argv = [...(c.spec.command ?? []), ...(c.spec.args ?? [])].map((a) => expand(a, env));
    if (argv.length === 0 || argv[0] === '') throw new Error(`container ${c.spec.name}: the lab needs a command (there is no image entrypoint)`);
    c.exited = false;
    c.listening = false;
    c.proc = await startInNetns(
      { what: `pod ${rp.namespace}/${rp.name} container ${c.spec.name}`, netns: rp.netns, argv: resolveArgv(argv), env, cwd: this.#o.workDir, log: podLogFile(this.#o.lab, rp.namespace, rp.name) },
      {
        readyTimeoutMs: 10_000,
        waitExec: true,
        onExit: (code) => {
          if (rp.terminating) return;
          c.lastExit = { code, finishedAt: new Date().toISOString(), reason: code === 0 ? 'Completed' : 'Error' };
        },
      },
    );
    c.startedAt = new Date().toISOString();
    this.#startProbes(rp, c);
  }

  #startProbes(rp: RuntimePod, c: RuntimeContainer): void {
    for (const t of c.probeTimers) clearTimeout(t);
    c.probeTimers = [];
    if (c.readiness) c.readiness = new ProbeTracker(c.readiness.probe, false);
    if (c.liveness) c.liveness = new ProbeTracker(c.liveness.probe, true);
    const schedule = (tracker: ProbeTracker, kind: 'readiness' | 'liveness'): void => {
      const proc = c.proc;
      const periodMs = Math.max(1, tracker.probe.periodSeconds ?? 10) * 1000;
      const loop = (delay: number): void => {
        const timer = setTimeout(() => {
          c.probeTimers = c.probeTimers.filter((x) => x !== timer);
          if (this.#stopped || rp.terminating || c.proc !== proc || !refAlive(proc)) return;
          void runProbe(tracker.probe, c.spec, rp.ip).then((result) => {
            if (c.proc !== proc || rp.terminating) return;
            const changed = tracker.record(result);
            if (!result.ok) this.#log.info({ pod: `${rp.namespace}/${rp.name}`, container: c.spec.name, probe: kind, reason: result.reason }, `${kind} probe failed`);
            if (kind === 'liveness' && changed && !tracker.state) {
              this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, container: c.spec.name, reason: tracker.lastReason }, 'liveness probe failed; restarting the container');
              this.#whenIdle(rp, () => this.#killForRestart(rp, c));
              return;
            }
            if (changed) this.#writeStatusSoon(rp);
            loop(periodMs);
          });
        }, delay);
        c.probeTimers.push(timer);
      };
      loop(Math.max(0, tracker.probe.initialDelaySeconds ?? 0) * 1000);
    };
    if (c.readiness) schedule(c.readiness, 'readiness');
    if (c.liveness) schedule(c.liveness, 'liveness');
  }

  async #killForRestart(rp: RuntimePod, c: RuntimeContainer): Promise<void> {
    const proc = c.proc;
    if (proc === undefined) return;
    c.proc = undefined;
    const pod = this.#pods.list().find((p) => p.metadata?.uid === rp.uid);
    // As the kubelet: the pod's termination grace period, not a deletion's.
    await stopProcesses([proc], [], Math.max(0, pod?.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
    c.lastExit = { code: 137, finishedAt: new Date().toISOString(), reason: 'Error' };
    c.exited = true;
    c.restartAt = Date.now();
    this.#writeStatusSoon(rp);
  }

  #graceMs(pod: V1Pod | undefined): number {
    const seconds = pod?.metadata?.deletionGracePeriodSeconds ?? pod?.spec?.terminationGracePeriodSeconds ?? 30;
    return Math.max(0, seconds) * 1000;
  }

  /** Exits, restarts with backoff, implicit readiness (declared ports listening). */
  #onTick(): void {
    if (this.#stopped) return;
    for (const rp of this.#running.values()) {
      if (!rp.started || rp.terminating || rp.busy !== undefined) continue;
      const pod = this.#pods.list().find((p) => p.metadata?.uid === rp.uid);
      const policy = pod?.spec?.restartPolicy ?? 'Always';
      for (const c of rp.containers) {
        if (c.proc !== undefined && !refAlive(c.proc)) {
          c.proc = undefined;
          c.exited = true;
          c.lastExit ??= { code: 1, finishedAt: new Date().toISOString(), reason: 'Error' };
          const backoff = Math.min(1_000 * 2 ** Math.min(c.restartCount, 10), MAX_BACKOFF_MS);
          c.restartAt = Date.now() + backoff;
          this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, container: c.spec.name, code: c.lastExit.code, restartInMs: backoff }, 'container exited');
          this.#writeStatusSoon(rp);
        }
        if (c.exited && pod !== undefined && Date.now() >= c.restartAt) {
          const restart = policy === 'Always' || (policy === 'OnFailure' && (c.lastExit?.code ?? 1) !== 0);
          if (!restart) continue;
          c.exited = false;
          c.restartCount++;
          this.#whenIdle(rp, async () => {
            await this.#startContainer(rp, pod, c);
            await this.#checkpoint();
            this.#writeStatusSoon(rp);
          });
        }
        if (c.proc !== undefined && !c.listening && c.readiness === undefined) {
          const ports = (c.spec.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => p.containerPort);
          const proc = c.proc;
          void listeningTcpPorts(proc.pid).then((listening) => {
            if (c.proc === proc && ports.every((p) => listening.has(p)) && !c.listening) {
              c.listening = true;
              this.#writeStatusSoon(rp);
            }
          });
        }
      }
    }
  }

  async #terminate(rp: RuntimePod, pod: V1Pod | undefined, graceful: boolean): Promise<void> {
    rp.terminating = true;
    this.#clearTimers(rp);
    const graceMs = graceful ? this.#graceMs(pod) : 2_000;
    this.#log.info({ pod: `${rp.namespace}/${rp.name}`, graceMs }, 'stopping pod');
    await this.#teardown(rp, graceMs);
    this.#running.delete(rp.uid);
    await this.#checkpoint();
    if (pod !== undefined) this.#finalDelete(pod);
  }

  #clearTimers(rp: RuntimePod): void {
    for (const t of rp.tokenTimers) clearTimeout(t);
    rp.tokenTimers = [];
    for (const c of rp.containers) {
      for (const t of c.probeTimers) clearTimeout(t);
      c.probeTimers = [];
    }
  }

  async #teardown(rp: RuntimePod, graceMs: number): Promise<void> {
    const refs = rp.containers.flatMap((c) => (c.proc === undefined ? [] : [c.proc]));
    // A hostNetwork pod shares the node's namespace with the kubelet: only its own processes go.
    const extra = rp.hostNetwork ? [] : await netnsPids(rp.netns);
    await stopProcesses(refs, extra, graceMs);
    for (const c of rp.containers) c.proc = undefined;
    if (!rp.hostNetwork) {
      if (this.#o.cni !== undefined) {
        await runCniChain(this.#o.cni, 'DEL', { namespace: rp.namespace, name: rp.name, uid: rp.uid, containerId: rp.uid, netnsPath: `/run/netns/${rp.netns}`, ip: rp.ip }, rp.cniResult).catch((err: unknown) =>
          this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, err: { message: (err as Error).message } }, 'CNI DEL failed'),
        );
      }
      await unwirePod(this.#podState(rp), this.#o.node);
      await rm(etcNetnsDir(rp.netns), { recursive: true, force: true });
    }
    await rm(this.#podDir(rp), { recursive: true, force: true });
    this.#log.info({ pod: `${rp.namespace}/${rp.name}` }, 'pod removed');
  }

  #finalDelete(pod: V1Pod): void {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    this.#core
      .deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid ?? '' } } })
      .catch((err: unknown) => {
        const code = (err as { code?: number }).code;
        if (code !== 404 && code !== 409) this.#log.warn({ pod: keyOf(pod), err: { message: (err as Error).message } }, 'final pod delete failed');
      });
  }

  // ------------------------------------------------------------------------------------------
  // Status

  #statusOf(rp: RuntimePod, pod: V1Pod | undefined): V1PodStatus {
    const now = new Date();
    const old = new Map((pod?.status?.conditions ?? []).map((c) => [c.type, c]));
    const cond = (type: string, ok: boolean): V1PodCondition => {
      const status = ok ? 'True' : 'False';
      const prev = old.get(type);
      return { type, status, lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now, lastProbeTime: undefined as unknown as Date };
    };
    const containerReady = (c: RuntimeContainer): boolean =>
      c.proc !== undefined && refAlive(c.proc) && (c.readiness ? c.readiness.state : c.listening || (c.spec.ports ?? []).length === 0);
    const allReady = rp.started && rp.containers.every(containerReady);
    const running = rp.started && rp.containers.some((c) => c.proc !== undefined);
    const statuses = rp.containers.map((c) => {
      const live = c.proc !== undefined && refAlive(c.proc);
      const state = live
        ? { running: { startedAt: new Date(c.startedAt ?? now.toISOString()) } }
        : c.lastExit !== undefined
          ? { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting container ${c.spec.name}` } }
          : { waiting: { reason: 'ContainerCreating', ...(rp.failure ? { message: rp.failure } : {}) } };
      return {
        name: c.spec.name,
        image: c.spec.image ?? 'weft-lab/process',
        imageID: '',
        containerID: c.proc ? `weftlab://${c.proc.pid}` : undefined,
        ready: containerReady(c),
        started: live,
        restartCount: c.restartCount,
        state,
        lastState: c.lastExit ? { terminated: { exitCode: c.lastExit.code, reason: c.lastExit.reason, finishedAt: new Date(c.lastExit.finishedAt) } } : {},
      };
    });
    return {
      phase: running ? 'Running' : 'Pending',
      hostIP: this.#o.node.fabricIP,
      hostIPs: [{ ip: this.#o.node.fabricIP }],
      ...(rp.started || rp.hostNetwork ? { podIP: rp.ip, podIPs: [{ ip: rp.ip }] } : {}),
      startTime: new Date(rp.startTime),
      qosClass: 'BestEffort',
      conditions: [cond('PodScheduled', true), cond('Initialized', true), cond('ContainersReady', allReady), cond('Ready', allReady)],
      containerStatuses: statuses as V1PodStatus['containerStatuses'],
    };
  }

  #writeStatusSoon(rp: RuntimePod): void {
    void this.#writeStatus(rp).catch((err: unknown) => this.#log.warn({ pod: `${rp.namespace}/${rp.name}`, err: { message: (err as Error).message } }, 'status write failed'));
  }

  async #writeStatus(rp: RuntimePod): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (rp.terminating || this.#stopped) return;
      let pod: V1Pod;
      try {
        pod = await this.#core.readNamespacedPod({ name: rp.name, namespace: rp.namespace });
      } catch (err) {
        if ((err as { code?: number }).code === 404) return;
        throw err;
      }
      if (pod.metadata?.uid !== rp.uid) return;
      const status = this.#statusOf(rp, pod);
      const fingerprint = stableJson(JSON.parse(JSON.stringify({ ...status, conditions: status.conditions?.map((c) => ({ type: c.type, status: c.status })) })));
      if (fingerprint === rp.lastStatus && pod.status?.phase === status.phase) return;
      try {
        await this.#core.replaceNamespacedPodStatus({ name: rp.name, namespace: rp.namespace, body: { ...pod, status } });
        rp.lastStatus = fingerprint;
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return;
        if (code !== 409) throw err;
      }
    }
  }

  async #markNodeReady(): Promise<void> {
    try {
      const node = await this.#core.readNode({ name: this.#o.node.name });
      const now = new Date();
      node.status = {
        ...node.status,
        addresses: [{ type: 'InternalIP', address: this.#o.node.fabricIP }, { type: 'Hostname', address: this.#o.node.name }],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'weft lab kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
        nodeInfo: { architecture: process.arch, bootID: '', containerRuntimeVersion: 'weft-lab://processes', kernelVersion: '', kubeProxyVersion: '', kubeletVersion: 'v1.32.0-weft-lab', machineID: '', operatingSystem: 'linux', osImage: 'weft lab', systemUUID: '' },
      };
      await this.#core.replaceNodeStatus({ name: this.#o.node.name, body: node });
    } catch (err) {
      this.#log.warn({ err: { message: (err as Error).message } }, 'could not write the node status');
    }
  }

  // ------------------------------------------------------------------------------------------
  // kube-proxy and DNS

  async #syncProxy(): Promise<void> {
    if (this.#stopped || !this.#services.synced || !this.#slices.synced) return;
    const views = serviceViewsFromApi(this.#services.list(), this.#slices.list());
    await restoreIptables(this.#o.node.netns, serviceRules(views, await saveIptables(this.#o.node.netns)));
    this.#views = views;
    await Promise.all([...this.#running.values()].filter((p) => !p.hostNetwork && !p.terminating).map((p) => this.#writeEtc(p)));
  }

  async #writeEtc(rp: RuntimePod): Promise<void> {
    const dir = etcNetnsDir(rp.netns);
    await mkdir(dir, { recursive: true });
    const hosts = hostsFile(this.#o.lab, { name: rp.name, namespace: rp.namespace, ip: rp.ip }, this.#views);
    const hostsPath = join(dir, 'hosts');
    // In place (same inode): running processes see the new services through their bind mount.
    if ((await readFile(hostsPath, 'utf8').catch(() => undefined)) !== hosts) await writeFile(hostsPath, hosts);
    const resolvPath = join(dir, 'resolv.conf');
    if ((await readFile(resolvPath, 'utf8').catch(() => undefined)) !== RESOLV_CONF) await writeFile(resolvPath, RESOLV_CONF);
  }

  // ------------------------------------------------------------------------------------------
  // Checkpoint

  async #checkpoint(): Promise<void> {
    const cp: Checkpoint = {
      pods: [...this.#running.values()].map((p) => ({
        uid: p.uid,
        namespace: p.namespace,
        name: p.name,
        hostNetwork: p.hostNetwork,
        ip: p.ip,
        netns: p.netns,
        host: p.host,
        hostVeth: p.hostVeth,
        startTime: p.startTime,
        cniResult: p.cniResult,
        containers: p.containers.flatMap((c) => (c.proc === undefined ? [] : [{ name: c.spec.name, pid: c.proc.pid, startTime: c.proc.startTime, restartCount: c.restartCount, startedAt: c.startedAt }])),
      })),
    };
    await writeFileAtomic(this.#o.checkpointFile, JSON.stringify(cp, null, 1));
  }

  /** Pods of a previous kubelet of this node: adopted, matched to their API objects at the first sync. */
  async #restoreCheckpoint(): Promise<void> {
    let cp: Checkpoint;
    try {
      cp = JSON.parse(await readFile(this.#o.checkpointFile, 'utf8')) as Checkpoint;
    } catch {
      return;
    }
    const pods = new Map<string, V1Pod>();
    try {
      for (const p of (await this.#core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.#o.node.name}` })).items) pods.set(p.metadata?.uid ?? '', p);
    } catch {
      // The API server is not there yet: pods are matched at the first sync instead.
    }
    for (const e of cp.pods) {
      const pod = pods.get(e.uid);
      const specs = pod?.spec?.containers ?? e.containers.map((c) => ({ name: c.name }) as V1Container);
      const rp: RuntimePod = {
        uid: e.uid, namespace: e.namespace, name: e.name, hostNetwork: e.hostNetwork, ip: e.ip, netns: e.netns, host: e.host, hostVeth: e.hostVeth,
        containers: specs.map((s) => this.#newContainer(s)), startTime: e.startTime, busy: undefined, started: true, terminating: false,
        cniResult: e.cniResult, lastStatus: '', tokenTimers: [], failure: undefined,
      };
      for (const c of rp.containers) {
        const saved = e.containers.find((x) => x.name === c.spec.name);
        if (saved !== undefined) {
          c.proc = { pid: saved.pid, startTime: saved.startTime };
          c.restartCount = saved.restartCount;
          c.startedAt = saved.startedAt;
          if (refAlive(c.proc)) this.#startProbes(rp, c);
        }
      }
      if (e.host !== undefined) this.#lastHost = Math.max(this.#lastHost, e.host);
      this.#running.set(rp.uid, rp);
      if (pod !== undefined) await this.#writeTokens(rp, pod).catch(() => undefined);
    }
  }
}

