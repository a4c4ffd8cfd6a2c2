/**
 * state.json: what the lab built (node indexes, pod IPs, ClusterIPs, process ids) and the objects
 * it was asked for. Written atomically; read by every `weft lab` command. Also the per-lab lock
 * that keeps two commands from changing one lab at the same time.
 */
import { link, readFile, rename, unlink, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WeftError } from '../errors.js';
import type { ManifestObject } from '../discovery/types.js';
import { labPaths, STATE_ROOT } from './paths.js';
import { processAlive, type ProcRef } from './procs.js';
import type { LabDashboardState } from '../dashboard/lab.js';
import type { LabForwardState } from './forwards.js';

export const STATE_VERSION = 1;

export interface NodeState {
  name: string;
  index: number;
  netns: string;
  fabricIP: string;
  podCIDR: string;
  /** Last pod host number handed out (allocation goes round-robin from here). */
  lastHost: number;
  agent: ProcRef | undefined;
  agentLog: string;
}

export interface ContainerProc extends ProcRef {
  container: string;
}

export interface PodState {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  netns: string;
  /** Node-side end of the pod's veth (unique inside the node namespace). */
  hostVeth: string;
  specHash: string;
  procs: ContainerProc[];
  log: string;
}

export interface ServiceState {
  name: string;
  namespace: string;
  /** Allocated or from the manifest; undefined for a headless service. */
  clusterIP: string | undefined;
  /** A LoadBalancer Service's external address (internet.ts), kept for the life of the Service. */
  externalIP?: string;
}

export interface LabState {
  version: number;
  name: string;
  /** The manifest directory of `up`: pods run with it as their working directory. */
  dir: string;
  createdAt: string;
  /** Whether this lab runs a weft agent per node (`up --no-agents` says no). */
  agents: boolean;
  fabricNetns: string;
  /** The lab CA process (in the fabric namespace); absent for `up --no-agents`. */
  ca?: ProcRef | undefined;
  /** `weft lab stop-ca` took the CA away (until `start-ca` or `up`). */
  caStopped?: boolean;
  /** Whether the lab runs Prometheus (`up --no-prometheus` says no); absent in older states means yes. */
  prometheusEnabled?: boolean;
  /** The lab's Prometheus (prometheus.ts; fabric namespace); absent for `up --no-agents`. */
  prometheus?: ProcRef | undefined;
  /** The lab's dashboard (agent/dashboard/lab.ts; fabric namespace, listening on the host's loopback). */
  dashboard?: LabDashboardState | undefined;
  /** Port-forwards the lab keeps running (forwards.ts; fabric namespace, listening on the host's loopback). */
  forwards?: LabForwardState[];
  nodes: NodeState[];
  pods: PodState[];
  services: ServiceState[];
  /** The objects as applied (namespaces defaulted), in apply order. */
  objects: ManifestObject[];
  /** Kubernetes mode (kube-mode.ts): the objects live in the lab's API server, not here. */
  kubernetes?: KubeLabState;
}

export interface KubeLabState {
  /** Port of the API server on 127.0.0.1 (for kubectl). */
  apiPort: number;
  apiserver?: ProcRef | undefined;
  controllers?: ProcRef | undefined;
  /** node name -> its lab kubelet. */
  kubelets: Record<string, ProcRef>;
}

export async function readState(lab: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(labPaths(lab).stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WeftError('WEFT_ERR_LAB', `cannot read the state of lab ${lab}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const state = JSON.parse(text) as LabState;
    // A state written by another version or cut short by a crash counts as no state: the
    // namespaces it would describe are found by name and removed.
    if (state.version !== STATE_VERSION || state.name !== lab || !Array.isArray(state.pods) || typeof state.agents !== 'boolean') return undefined;
    return state;
  } catch {
    return undefined;
  }
}

export async function writeState(state: LabState): Promise<void> {
  await writeFileAtomic(labPaths(state.name).stateFile, JSON.stringify(state, null, 2) + '\n');
}

/** Temp file + rename: a reader (the agents' watcher, another command) never sees half a file. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // The temporary name does not end in .yaml, so manifest watchers skip it.
  const tmp = `${dirname(file)}/.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, content);
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Lock

const inProcess = new Map<string, Promise<void>>();
const LOCK_WAIT_MS = 120_000;
const LOCK_POLL_MS = 50;

/**
 * Runs `fn` holding the lab's lock: an in-process queue (tests call the API concurrently) and a
 * lock file with the holder's pid (other `weft lab` processes). A lock file whose pid is gone is
 * taken over; a live holder is waited for, bounded.
 */
export async function withLabLock<T>(lab: string, fn: () => Promise<T>): Promise<T> {
  const previous = inProcess.get(lab) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = previous.then(() => mine);
  inProcess.set(lab, chained);
  await previous;
  try {
    await acquireFileLock(lab);
    try {
      return await fn();
    } finally {
      await unlink(labPaths(lab).lockFile).catch(() => undefined);
    }
  } finally {
    release();
    if (inProcess.get(lab) === chained) inProcess.delete(lab);
  }
}

async function acquireFileLock(lab: string): Promise<void> {
  const file = labPaths(lab).lockFile;
  await mkdir(STATE_ROOT, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    // link(2) publishes the file with its content at once: nobody reads an empty lock.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${process.pid}\n`);
    try {
      await link(tmp, file);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new WeftError('WEFT_ERR_LAB', `cannot create the lock file ${file}: ${(err as Error).message}`, { cause: err });
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(holder) || holder === process.pid || !processAlive(holder)) {
      // Left by a command that died (or by this process before a crash it survived): take over.
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new WeftError('WEFT_ERR_LAB', `lab ${lab} is locked by process ${holder} (another weft lab command); wait for it or stop it`);
    }
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}
