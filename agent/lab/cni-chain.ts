/**
 * Kubernetes mode: the lab's kubelet calls the node's CNI chain as a container runtime does
 * (CNI spec 1.0, https://github.com/containernetworking/cni/blob/main/SPEC.md): the first
 * *.conflist of the conf dir (lexical order, as libcni picks it), each plugin found by its
 * `type` in the bin dir, run with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS
 * (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID, ...), CNI_PATH and its config on stdin with
 * `name`, `cniVersion` and `prevResult`. The lab's own wiring (network.ts) plays the main
 * plugin (Calico's part): the chain holds only the plugins chained after it, such as Weft's,
 * and receives the lab's wiring as the first prevResult. ADD runs the plugins in order, DEL in
 * reverse with the ADD result; a failing ADD fails the pod's sandbox (the kubelet retries), as
 * on a node.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import { POD_GATEWAY } from './addressing.js';
import { execCniPlugin } from './cni.js';

export interface CniConfig {
  confDir: string;
  binDir: string;
}

export interface CniPod {
  namespace: string;
  name: string;
  uid: string;
  /** The sandbox id: the lab uses the pod's UID. */
  containerId: string;
  /** /run/netns/<name> */
  netnsPath: string;
  ip: string;
  ifName?: string;
}

interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

const CNI_TIMEOUT_MS = 30_000;

/** The first conflist of `confDir`, or undefined when there is none (no chained plugin). */
export async function loadConfList(confDir: string): Promise<{ file: string; conf: ConfList } | undefined> {
  const files = (await readdir(confDir).catch(() => [] as string[])).filter((f) => f.endsWith('.conflist')).sort();
  const first = files[0];
  if (first === undefined) return undefined;
  const file = join(confDir, first);
  let conf: ConfList;
  try {
    conf = JSON.parse(await readFile(file, 'utf8')) as ConfList;
  } catch (err) {
    throw new WeftError('WEFT_ERR_CONFIG', `CNI config ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof conf.name !== 'string' || !Array.isArray(conf.plugins)) {
    throw new WeftError('WEFT_ERR_CONFIG', `CNI config ${file}: needs "name" and a "plugins" list`);
  }
  return { file, conf };
}

/** The result the lab's own wiring would return as the main plugin. */
export function labWiringResult(pod: CniPod, cniVersion: string): Record<string, unknown> {
  return {
    cniVersion,
    interfaces: [{ name: pod.ifName ?? 'eth0', sandbox: pod.netnsPath }],
    ips: [{ address: `${pod.ip}/32`, gateway: POD_GATEWAY, interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: POD_GATEWAY }],
  };
}

/**
 * Runs the chain for ADD (returns the last result, to be passed back to DEL) or DEL. Resolves
 * at once when no conflist is configured.
 */
export async function runCniChain(config: CniConfig, command: 'ADD' | 'DEL', pod: CniPod, addResult?: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
  const loaded = await loadConfList(config.confDir);
  if (loaded === undefined) return undefined;
  const { conf, file } = loaded;
  let prev: Record<string, unknown> = command === 'DEL' && addResult !== undefined ? addResult : labWiringResult(pod, conf.cniVersion);
  const plugins = command === 'ADD' ? conf.plugins : [...conf.plugins].reverse();
  for (const plugin of plugins) {
    const type = plugin['type'];
    if (typeof type !== 'string' || !/^[A-Za-z0-9._-]+$/.test(type)) throw new WeftError('WEFT_ERR_CONFIG', `CNI config ${file}: a plugin has no valid "type"`);
    const stdin = JSON.stringify({ ...plugin, name: conf.name, cniVersion: conf.cniVersion, prevResult: prev });
    const out = await execPlugin(join(config.binDir, type), command, pod, config.binDir, stdin);
    if (command === 'ADD') {
      try {
        prev = out.trim() === '' ? prev : (JSON.parse(out) as Record<string, unknown>);
      } catch {
        throw new WeftError('WEFT_ERR_LAB', `CNI plugin ${type} (ADD) for pod ${pod.namespace}/${pod.name} printed no JSON result: ${out.slice(0, 200)}`);
      }
    }
  }
  return prev;
}

async function execPlugin(binary: string, command: 'ADD' | 'DEL', pod: CniPod, cniPath: string, stdin: string): Promise<string> {
  const r = await execCniPlugin(binary, {
    command,
    containerId: pod.containerId,
    netnsPath: pod.netnsPath,
    podNamespace: pod.namespace,
    podName: pod.name,
    podUid: pod.uid,
    cniPath,
    stdin,
    timeoutMs: CNI_TIMEOUT_MS,
    ...(pod.ifName !== undefined ? { ifName: pod.ifName } : {}),
  });
  if (r.exitCode === 0 && r.signal === null) return r.stdout;
  // The spec's error result ({code, msg, details}) is on stdout; stderr is the plugin's log.
  const fromStdout = [r.output?.['msg'], r.output?.['details']].filter((x): x is string => typeof x === 'string' && x !== '').join(': ');
  const said = fromStdout || r.stderr.trim() || r.stdout.trim();
  throw new WeftError('WEFT_ERR_LAB', `CNI plugin ${binary} (${command}) for pod ${pod.namespace}/${pod.name} failed (${r.signal ?? `exit ${r.exitCode}`}): ${said.slice(0, 500)}`);
}
