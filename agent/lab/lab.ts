/**
 * The lab's programmatic API (the CLI, the tests and `npm run demo` use it):
 *   labUp, labDown, labStatus, labApply, labDelete, labExec.
 * Every changing operation holds the lab's lock; nothing changes when the input is invalid.
 */
import { collectRefusals, refusalNames } from './refusals.js';
import { spawn } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { objectKey } from '../discovery/manifest.js';
import type { ManifestObject } from '../discovery/types.js';
import { isWeftError, WeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { converge, nameOf, podEnv, resolveArgv, type ChangeSummary } from './converge.js';
import { loadManifests, refused } from './load.js';
import { deleteNetns, listNetns } from './network.js';
import {
  checkLabName,
  DEFAULT_LAB_DIR,
  DEFAULT_LAB_NAME,
  ETC_NETNS_DIR,
  fabricNetns,
  internetNetns,
  labOfNetns,
  labPaths,
  labPrefix,
  STATE_ROOT,
} from './paths.js';
import { netnsPids, refAlive, stopProcesses, type ProcRef } from './procs.js';
import { clusterSpec, type ClusterSpec } from './spec.js';
import { labSpecOptions } from './waypoints.js';
import { kubeLabApply, kubeLabDelete, kubeLabHealthy, kubeLabPod, kubeLabProcs, kubeLabStatus, kubeLabUp, type KubeLabOptions } from './kube-mode.js';
import { readState, STATE_VERSION, withLabLock, type LabState } from './state.js';
import { statusOf, type LabStatus } from './status.js';

export type { LabStatus, NodeStatus, PodStatus, ServiceStatus, ContainerStatus } from './status.js';
export type { ChangeSummary } from './converge.js';

export interface LabUpOptions {
  /** Directory of manifests; default: the repository's examples/bookinfo. */
  dir?: string;
  /** Lab name (letters and digits); default `lab`. */
  name?: string;
  logger?: Logger;
  /** How long each pod may take to run and listen on its declared TCP ports (default 20 s). */
  readyTimeoutMs?: number;
  /** Start one `weft agent` per node (default true). */
  startAgents?: boolean;
  /** Run Prometheus scraping the agents (default true; benchmarks turn it off to keep its CPU out of the figures). */
  prometheus?: boolean;
  /** Kubernetes mode (kube-mode.ts): the lab serves a Kubernetes API and runs everything through it. */
  kubernetes?: boolean;
}

export interface LabUpResult extends LabStatus {
  /** `fresh`: built from nothing; `reconciled`: a healthy lab was changed to match the dir. */
  mode: 'fresh' | 'reconciled';
  /** Leftovers of an earlier lab of this name that were removed first. */
  cleanedLeftovers: boolean;
  changes: ChangeSummary;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** Pods get their grace period (30 s unless they say otherwise) and a namespace waits for its pods. */
const KUBE_DELETE_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 3_000;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new WeftError('WEFT_ERR_LAB', 'the lab builds network namespaces and must run as root (try sudo)');
  }
}

/**
 * Builds the lab from `dir`, or, when a healthy lab of that name built from the same dir is up,
 * changes it to match (`kubectl apply --prune`). Leftovers of a crashed lab are removed first.
 * Resolves when every pod's namespace exists and its processes run (and listen on their ports).
 */
export async function labUp(options: LabUpOptions = {}): Promise<LabUpResult> {
  requireRoot();
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  const dir = resolve(options.dir ?? DEFAULT_LAB_DIR);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
    throw new WeftError('WEFT_ERR_CONFIG', `${dir} is not a directory of manifests`);
  }
  const loaded = await loadManifests(dir);
  const built = clusterSpec(loaded.objects, (k) => loaded.fileOf.get(k) ?? dir, options.kubernetes === true ? {} : labSpecOptions(name));
  if (built.spec === undefined) throw refused(built.errors);
  const spec = built.spec;
  const logger = options.logger ?? silentLogger;
  const convergeOptions = {
    logger,
    readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    startAgents: options.startAgents ?? true,
    prometheus: options.prometheus ?? true,
    restartAgents: true,
    specOptions: labSpecOptions(name),
  };
  if (options.kubernetes === true) return kubeUp(name, dir, loaded, spec, { ...convergeOptions, logger });
  return withLabLock(name, async () => {
    const previous = await readState(name);
    if (previous !== undefined && previous.kubernetes === undefined && previous.dir === dir && previous.agents === convergeOptions.startAgents && (previous.prometheusEnabled ?? true) === convergeOptions.prometheus && (await isHealthy(previous))) {
      const changes = await converge(previous, spec, convergeOptions);
      return { ...statusOf(previous), mode: 'reconciled', cleanedLeftovers: false, changes };
    }
    const cleanedLeftovers = await teardownLab(name, logger);
    if (cleanedLeftovers) logger.warn({ lab: name }, 'removed leftovers of an earlier lab of this name');
    const state: LabState = {
      version: STATE_VERSION,
      name,
      dir,
      createdAt: new Date().toISOString(),
      agents: convergeOptions.startAgents,
      prometheusEnabled: convergeOptions.prometheus,
      fabricNetns: fabricNetns(name),
      nodes: [],
      pods: [],
      services: [],
      objects: [],
    };
    try {
      const changes = await converge(state, spec, { ...convergeOptions, restartAgents: false });
      return { ...statusOf(state), mode: 'fresh', cleanedLeftovers, changes };
    } catch (err) {
      // A half-built lab is worth nothing: leave the machine as it was.
      await teardownLab(name, logger).catch((e: unknown) => logger.error({ err: e }, 'cleanup after a failed up failed'));
      if (!isWeftError(err)) throw err;
      throw new WeftError(err.code, `lab ${name} was not built (nothing of it is left): ${err.message}`, { cause: err });
    }
  });
}

/**
 * `up --kubernetes`: a healthy Kubernetes-mode lab of the same dir gets the dir applied through
 * its API; anything else is removed and built afresh.
 */
async function kubeUp(name: string, dir: string, loaded: Awaited<ReturnType<typeof loadManifests>>, spec: ClusterSpec, options: KubeLabOptions): Promise<LabUpResult> {
  return withLabLock(name, async () => {
    const previous = await readState(name);
    if (previous?.kubernetes !== undefined && previous.dir === dir && previous.agents === options.startAgents && kubeLabHealthy(previous) && (await namespacesPresent(previous))) {
      const changes = await kubeLabApply(previous, loaded, options.readyTimeoutMs);
      return { ...(await kubeLabStatus(previous, statusOf(previous))), mode: 'reconciled', cleanedLeftovers: false, changes };
    }
    const cleanedLeftovers = await teardownLab(name, options.logger);
    const state: LabState = {
      version: STATE_VERSION,
      name,
      dir,
      createdAt: new Date().toISOString(),
      agents: options.startAgents,
      prometheusEnabled: options.prometheus,
      fabricNetns: fabricNetns(name),
      nodes: [],
      pods: [],
      services: [],
      objects: [],
      kubernetes: { apiPort: 0, kubelets: {} },
    };
    try {
      const changes = await kubeLabUp(state, spec, options);
      return { ...(await kubeLabStatus(state, statusOf(state))), mode: 'fresh', cleanedLeftovers, changes };
    } catch (err) {
      await teardownLab(name, options.logger).catch((e: unknown) => options.logger.error({ err: e }, 'cleanup after a failed up failed'));
      if (!isWeftError(err)) throw err;
      throw new WeftError(err.code, `lab ${name} was not built (nothing of it is left): ${err.message}`, { cause: err });
    }
  });
}

async function namespacesPresent(state: LabState): Promise<boolean> {
  const present = new Set(await listNetns());
  return present.has(state.fabricNetns) && state.nodes.every((n) => present.has(n.netns));
}

/** Every namespace and every pod process of the state is there. (Agents are restarted, not judged.) */
async function isHealthy(state: LabState): Promise<boolean> {
  const present = new Set(await listNetns());
  if (!present.has(state.fabricNetns)) return false;
  if (!state.nodes.every((n) => present.has(n.netns))) return false;
  return state.pods.every((p) => present.has(p.netns) && p.procs.length > 0 && p.procs.every(refAlive));
}

export interface LabDownOptions {
  name?: string;
  /** Every lab on this machine, including leftovers of crashed runs. */
  all?: boolean;
  logger?: Logger;
}

export interface LabDownResult {
  /** Labs that had something to remove. */
  removed: string[];
}

/** Stops every process of the lab(s), deletes their namespaces, /etc/netns entries and state. */
export async function labDown(options: LabDownOptions = {}): Promise<LabDownResult> {
  requireRoot();
  const logger = options.logger ?? silentLogger;
  const names = options.all === true ? await allLabNames() : [checkLabName(options.name ?? DEFAULT_LAB_NAME)];
  const removed: string[] = [];
  for (const name of names) {
    if (await withLabLock(name, () => teardownLab(name, logger))) removed.push(name);
  }
  return { removed };
}

async function allLabNames(): Promise<string[]> {
  const names = new Set<string>();
  for (const ns of await listNetns()) {
    const lab = labOfNetns(ns);
    if (lab !== undefined) names.add(lab);
  }
  for (const entry of await readdir(STATE_ROOT).catch(() => [] as string[])) {
    if (/^[a-z0-9]{1,20}$/.test(entry)) names.add(entry);
  }
  for (const entry of await readdir(ETC_NETNS_DIR).catch(() => [] as string[])) {
    const lab = labOfNetns(entry);
    if (lab !== undefined) names.add(lab);
  }
  return [...names].sort();
}

/**
 * Removes everything of lab `name` that exists, whatever state it is in (state.json may be
 * missing or stale: namespaces are found by prefix, processes by namespace). Returns whether
 * there was anything. Throws if something could not be removed.
 */
async function teardownLab(name: string, logger: Logger): Promise<boolean> {
  const prefix = labPrefix(name);
  const paths = labPaths(name);
  const state = await readState(name);
  const namespaces = (await listNetns()).filter((n) => n.startsWith(prefix));
  const etc = (await readdir(ETC_NETNS_DIR).catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  const hasStateDir = await stat(paths.stateDir).then(() => true, () => false);
  if (namespaces.length === 0 && etc.length === 0 && !hasStateDir) return false;

  // Kubernetes mode: the API server, kubelets and controllers go first, so nothing restarts a pod.
  await stopProcesses(kubeLabProcs(state), [], STOP_GRACE_MS);
  const refs: ProcRef[] = [];
  if (state?.ca !== undefined) refs.push(state.ca);
  for (const n of state?.nodes ?? []) if (n.agent !== undefined) refs.push(n.agent);
  for (const p of state?.pods ?? []) refs.push(...p.procs);
  // Processes a pod forked while we waited are found by the second sweep.
  for (let sweep = 0; sweep < 3; sweep++) {
    const pids = (await Promise.all(namespaces.map(netnsPids))).flat();
    if (pids.length === 0 && refs.every((r) => !refAlive(r))) break;
    await stopProcesses(sweep === 0 ? refs : [], pids, STOP_GRACE_MS);
  }
  await deleteNetns(namespaces);
  await Promise.all(etc.map((n) => rm(`${ETC_NETNS_DIR}/${n}`, { recursive: true, force: true })));
  await rm(paths.stateDir, { recursive: true, force: true });
  const left = (await listNetns()).filter((n) => n.startsWith(prefix));
  if (left.length > 0) {
    throw new WeftError('WEFT_ERR_LAB', `lab ${name}: network namespaces ${left.join(', ')} could not be deleted; run weft lab down --name ${name} again`);
  }
  logger.info({ lab: name, namespaces: namespaces.length }, 'lab removed');
  return true;
}

async function requireState(name: string): Promise<LabState> {
  const state = await readState(name);
  if (state !== undefined) return state;
  const leftovers = (await listNetns()).some((n) => n.startsWith(labPrefix(name)));
  const hint = leftovers
    ? `; leftovers of a crashed lab of that name exist: run weft lab down --name ${name} (or weft lab up --name ${name})`
    : `: run weft lab up --name ${name}`;
  throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${name} is not up${hint}`);
}

export async function labStatus(name: string = DEFAULT_LAB_NAME): Promise<LabStatus> {
  const state = await requireState(checkLabName(name));
  return state.kubernetes === undefined ? statusOf(state) : kubeLabStatus(state, statusOf(state));
}

export interface LabChangeOptions {
  /** A manifest file, a directory of them, or `-` for stdin. */
  file: string;
  name?: string;
  logger?: Logger;
  readyTimeoutMs?: number;
}

/** `kubectl apply -f`: objects are created or replaced; pods start, stop or restart as needed. */
export async function labApply(options: LabChangeOptions): Promise<ChangeSummary> {
  requireRoot();
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  const loaded = await loadManifests(options.file);
  return withLabLock(name, async () => {
    const state = await requireState(name);
    if (state.kubernetes !== undefined) return kubeLabApply(state, loaded, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    const merged = new Map<string, ManifestObject>(state.objects.map((o) => [objectKey(o), o]));
    for (const o of loaded.objects) merged.set(objectKey(o), o);
    const all = await changeTo(state, [...merged.values()], loaded.fileOf, options);
    // Like kubectl: report the objects of the file, not the whole lab.
    const mine = new Set(loaded.objects.map(nameOf));
    // What the agents refuse of this file's objects (a policy that does not validate).
    const names = new Set(loaded.objects.flatMap(refusalNames));
    const refused = state.agents && all.publishedAt !== undefined
      ? (await collectRefusals(state, all.publishedAt, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS)).filter((r) => names.has(r.object))
      : [];
    return {
      created: all.created.filter((n) => mine.has(n)),
      configured: all.configured.filter((n) => mine.has(n)),
      unchanged: all.unchanged.filter((n) => mine.has(n)),
      deleted: all.deleted,
      refused,
    };
  });
}

export interface LabDeleteResult extends ChangeSummary {
  /** Objects of the file the lab does not have. */
  notFound: string[];
}

/** `kubectl delete -f`: the objects go; deleting a Namespace deletes what is in it. */
export async function labDelete(options: LabChangeOptions): Promise<LabDeleteResult> {
  requireRoot();
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  const loaded = await loadManifests(options.file);
  return withLabLock(name, async () => {
    const state = await requireState(name);
    if (state.kubernetes !== undefined) {
      const r = await kubeLabDelete(state, loaded, KUBE_DELETE_TIMEOUT_MS);
      return { created: [], configured: [], unchanged: [], deleted: r.deleted, notFound: r.notFound };
    }
    const present = new Set(state.objects.map(objectKey));
    const gone = new Set(loaded.objects.map(objectKey));
    const goneNamespaces = new Set(loaded.objects.filter((o) => o.kind === 'Namespace' && o.apiVersion === 'v1').map((o) => o.metadata.name));
    const notFound = loaded.objects.filter((o) => !present.has(objectKey(o))).map(nameOf);
    const remaining = state.objects.filter(
      (o) => !gone.has(objectKey(o)) && !(o.metadata.namespace !== undefined && goneNamespaces.has(o.metadata.namespace)),
    );
    const summary = await changeTo(state, remaining, loaded.fileOf, options);
    return { created: [], configured: [], unchanged: [], deleted: summary.deleted, notFound };
  });
}

async function changeTo(
  state: LabState,
  objects: ManifestObject[],
  fileOf: ReadonlyMap<string, string>,
  options: LabChangeOptions,
): Promise<ChangeSummary> {
  const built = clusterSpec(objects, (k) => fileOf.get(k) ?? `(applied earlier to lab ${state.name})`, labSpecOptions(state.name));
  if (built.spec === undefined) throw refused(built.errors);
  try {
    return await converge(state, built.spec, {
      logger: options.logger ?? silentLogger,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      startAgents: state.agents,
      prometheus: state.prometheusEnabled ?? true,
      restartAgents: false,
      specOptions: labSpecOptions(state.name),
    });
  } catch (err) {
    if (!isWeftError(err)) throw err;
    throw new WeftError(err.code, `${err.message}\nThe other changes were applied (weft lab status --name ${state.name} shows the lab).`, { cause: err });
  }
}

function localPod(state: LabState, namespace: string, name: string): { netns: string; env: Record<string, string> } {
  const pod = state.pods.find((p) => p.name === name && p.namespace === namespace);
  if (pod === undefined) {
    const known = state.pods.map((p) => `${p.namespace}/${p.name}`).join(', ') || 'none';
    throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${state.name} has no pod ${namespace}/${name} (pods: ${known}); use -n for another namespace`);
  }
  const built = clusterSpec(state.objects, () => 'state.json', labSpecOptions(state.name));
  const container = built.spec?.pods.get(`${namespace}/${pod.name}`)?.containers[0];
  return { netns: pod.netns, env: podEnv(pod, container) };
}

/** `deploy/NAME` (or `deployment/NAME`): a running pod of that Deployment, as kubectl exec picks one; else the pod name itself. */
async function podOfTarget(state: LabState, namespace: string, target: string): Promise<string> {
  const m = /^(?:deploy|deployment|deployments)\/(.+)$/.exec(target);
  if (m === null) return target;
  const status = state.kubernetes === undefined ? statusOf(state) : await kubeLabStatus(state, statusOf(state));
  const d = status.deployments.find((x) => x.namespace === namespace && x.name === m[1]);
  const running = new Set(status.pods.filter((p) => p.running).map((p) => p.name));
  const pod = d?.pods.find((p) => running.has(p));
  if (pod === undefined) {
    throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', d === undefined ? `lab ${state.name} has no deployment ${namespace}/${m[1]}` : `deployment ${namespace}/${m[1]} has no running pod`);
  }
  return pod;
}

async function podTarget(state: LabState, namespace: string, asked: string): Promise<{ netns: string; env: Record<string, string> }> {
  const pod = await podOfTarget(state, namespace, asked);
  return state.kubernetes !== undefined ? kubeLabPod(state, namespace, pod) : localPod(state, namespace, pod);
}

/** The client host outside the cluster (internet.ts): its namespace and a plain environment. */
async function internetHost(state: LabState): Promise<{ netns: string; env: Record<string, string> }> {
  const netns = internetNetns(state.name);
  if (!(await listNetns()).includes(netns)) {
    throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${state.name} has no internet namespace ${netns} (built by an older weft? run weft lab up --name ${state.name} again)`);
  }
  return {
    netns,
    env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root', HOSTNAME: 'internet' },
  };
}

export interface LabExecOptions {
  /** Pod name or deploy/NAME; ignored with `internet`. */
  pod: string;
  /** Run on the client host of the lab's internet namespace instead (outside the cluster). */
  internet?: boolean;
  namespace?: string;
  name?: string;
  /** argv; `node` is the lab's own Node binary. */
  command: string[];
  /** `pipe` (default): collect output; `inherit`: the caller's terminal. */
  stdio?: 'pipe' | 'inherit';
  /** Kill the command (SIGKILL) after this long; default: no limit. */
  timeoutMs?: number;
}

export interface ExecResult {
  /** The command's exit code; 128 + signal number when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command inside a pod's network namespace, with the pod's environment and hosts file. */
export async function labExec(options: LabExecOptions): Promise<ExecResult> {
  requireRoot();
  const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
  const namespace = options.namespace ?? 'default';
  if (options.command.length === 0) throw new WeftError('WEFT_ERR_CONFIG', 'no command given: weft lab exec POD -- CMD...');
  const state = await requireState(name);
  const target = options.internet === true ? await internetHost(state) : await podTarget(state, namespace, options.pod);
  const env = target.env;
  if (process.env.TERM !== undefined) env.TERM = process.env.TERM;
  const inherit = options.stdio === 'inherit';
  return new Promise((resolveExec, reject) => {
    const child = spawn('ip', ['netns', 'exec', target.netns, ...resolveArgv(options.command)], {
      cwd: state.dir,
      env,
      stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs).unref();
    child.on('error', (e) => {
      if (timer !== undefined) clearTimeout(timer);
      reject(new WeftError('WEFT_ERR_LAB', `exec ${options.internet === true ? 'on the internet client' : `in pod ${namespace}/${options.pod}`}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      const signalCode = signal === null ? 0 : 128 + (constants.signals[signal] ?? 0);
      resolveExec({
        code: code ?? signalCode,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}
