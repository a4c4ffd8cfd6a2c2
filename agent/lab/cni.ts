/**
 * Invokes Weft's CNI plugin (daemonset/cni/weft-cni) exactly as a container runtime does (CNI
 * spec: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS with K8S_POD_NAMESPACE
 * and K8S_POD_NAME, CNI_PATH; the network configuration with prevResult on stdin; the result or
 * an error object on stdout). The Kubernetes-mode lab's kubelet calls cniAdd for every pod after
 * wiring its network (the main plugin's work) and before starting its containers, and cniDel
 * when the pod goes.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { WeftError, type ErrorCode } from '../errors.js';
import { nodeRunDir, REPO_DIR } from './paths.js';

export const CNI_PLUGIN = join(REPO_DIR, 'daemonset', 'cni', 'weft-cni');

export interface CniPodCall {
  /** The lab and node whose agent serves the pod (the run dir is the node's), or `runDir` itself. */
  lab?: string;
  node?: string;
  runDir?: string;
  /** CNI_CONTAINERID: the sandbox id ([A-Za-z0-9_.-]). */
  containerId: string;
  /** CNI_NETNS: a path that opens the pod's network namespace, e.g. /run/netns/<name>. */
  netnsPath: string;
  podNamespace: string;
  podName: string;
  /** CNI_IFNAME, default eth0. */
  ifName?: string;
  /** What the main plugin returned; ADD needs it with the pod's address (ips[].address "a.b.c.d/32"). */
  prevResult?: Record<string, unknown>;
  /** Default 1.0.0. */
  cniVersion?: string;
  /** The plugin's bounded wait for the agent (default: the plugin's, 10 s). */
  timeoutSeconds?: number;
  pluginPath?: string;
}

export interface CniCallResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed (the result, or the CNI error object); undefined when empty. */
  output: Record<string, unknown> | undefined;
}

/** A pod's prevResult as a main plugin (bridge, ptp, Calico) gives it. */
export function prevResultFor(ip: string, ifName = 'eth0', netnsPath = '', cniVersion = '1.0.0'): Record<string, unknown> {
  return {
    cniVersion,
    interfaces: [{ name: ifName, sandbox: netnsPath }],
    ips: [{ address: `${ip}/32`, interface: 0 }],
    routes: [{ dst: '0.0.0.0/0' }],
  };
}

function runDirOf(call: CniPodCall): string {
  if (call.runDir !== undefined) return call.runDir;
  if (call.lab === undefined || call.node === undefined) throw new WeftError('WEFT_ERR_CONFIG', 'cni call: give lab and node, or runDir');
  return nodeRunDir(call.lab, call.node);
}

/** One plugin execution as a container runtime makes it (CNI spec: environment and stdin). */
export interface CniExec {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
  containerId: string;
  netnsPath: string;
  ifName?: string;
  podNamespace: string;
  podName: string;
  podUid?: string;
  /** CNI_PATH: where the plugins are. */
  cniPath: string;
  /** The network configuration (with prevResult) the plugin reads on stdin. */
  stdin: string;
  extraEnv?: Record<string, string>;
  /** Kill the plugin after this long (default: no limit; weft-cni bounds its own wait). */
  timeoutMs?: number;
  /** Run `binary` through /bin/sh, as exec of a #!/bin/sh script does (no execute bit needed). */
  viaShell?: boolean;
}

/** Runs a CNI plugin; resolves with what it printed, whatever its exit code. The one place the lab spawns plugins. */
export function execCniPlugin(binary: string, exec: CniExec): Promise<CniCallResult & { signal: NodeJS.Signals | null }> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: exec.command,
    CNI_CONTAINERID: exec.containerId,
    CNI_NETNS: exec.netnsPath,
    CNI_IFNAME: exec.ifName ?? 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${exec.podNamespace};K8S_POD_NAME=${exec.podName};K8S_POD_INFRA_CONTAINER_ID=${exec.containerId}${exec.podUid !== undefined ? `;K8S_POD_UID=${exec.podUid}` : ''}`,
    CNI_PATH: exec.cniPath,
    ...exec.extraEnv,
  };
  return new Promise((resolve, reject) => {
    const [file, args] = exec.viaShell === true ? ['/bin/sh', [binary]] : [binary, []];
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'], ...(exec.timeoutMs !== undefined ? { timeout: exec.timeoutMs } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new WeftError('WEFT_ERR_LAB', `cannot run the CNI plugin ${binary} (${exec.command}) for pod ${exec.podNamespace}/${exec.podName}: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      let output: Record<string, unknown> | undefined;
      try {
        output = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        output = undefined;
      }
      resolve({ exitCode: code ?? 1, signal, stdout, stderr: Buffer.concat(err).toString('utf8'), output });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(exec.stdin);
  });
}

/** Runs Weft's plugin with one CNI_COMMAND; resolves with what it printed, whatever its exit code. */
export function cniInvoke(command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION', call: CniPodCall): Promise<CniCallResult> {
  const plugin = call.pluginPath ?? CNI_PLUGIN;
  const cniVersion = call.cniVersion ?? '1.0.0';
  const config: Record<string, unknown> = { cniVersion, name: 'k8s-pod-network', type: 'weft-cni', runDir: command === 'VERSION' ? undefined : runDirOf(call) };
  if (call.prevResult !== undefined) config.prevResult = call.prevResult;
  return execCniPlugin(plugin, {
    command,
    containerId: call.containerId,
    netnsPath: call.netnsPath,
    podNamespace: call.podNamespace,
    podName: call.podName,
    cniPath: dirname(plugin),
    stdin: JSON.stringify(config),
    viaShell: true,
    ...(call.ifName !== undefined ? { ifName: call.ifName } : {}),
    ...(call.timeoutSeconds !== undefined ? { extraEnv: { WEFT_CNI_TIMEOUT_SECONDS: String(call.timeoutSeconds) } } : {}),
  });
}

function failure(command: string, call: CniPodCall, r: CniCallResult): WeftError {
  const msg = typeof r.output?.msg === 'string' ? r.output.msg : r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`;
  const code = /^(WEFT_ERR_[A-Z_]+):/.exec(msg)?.[1];
  const known: ErrorCode = code === 'WEFT_ERR_CNI_TIMEOUT' || code === 'WEFT_ERR_CNI_NO_AGENT' || code === 'WEFT_ERR_CNI_REQUEST' ? code : 'WEFT_ERR_LAB';
  return new WeftError(known, `CNI ${command} for pod ${call.podNamespace}/${call.podName} failed: ${msg}`);
}

/**
 * CNI ADD: resolves with the plugin's result (the prevResult, passed through) once the agent has
 * captured the pod (or found it out of the mesh); rejects with WEFT_ERR_CNI_TIMEOUT /
 * WEFT_ERR_CNI_NO_AGENT when the pod must not start.
 */
export async function cniAdd(call: CniPodCall): Promise<Record<string, unknown>> {
  const r = await cniInvoke('ADD', call);
  if (r.exitCode !== 0 || r.output === undefined) throw failure('ADD', call, r);
  return r.output;
}

/** CNI DEL: never fails for a missing pod or agent (spec). */
export async function cniDel(call: CniPodCall): Promise<void> {
  const r = await cniInvoke('DEL', call);
  if (r.exitCode !== 0) throw failure('DEL', call, r);
}

/** CNI CHECK: rejects when the pod is in the mesh and not captured. */
export async function cniCheck(call: CniPodCall): Promise<void> {
  const r = await cniInvoke('CHECK', call);
  if (r.exitCode !== 0) throw failure('CHECK', call, r);
}

export async function cniVersion(pluginPath?: string): Promise<Record<string, unknown>> {
  const r = await cniInvoke('VERSION', { containerId: 'version', netnsPath: '', podNamespace: '', podName: '', ...(pluginPath ? { pluginPath } : {}) });
  if (r.exitCode !== 0 || r.output === undefined) throw new WeftError('WEFT_ERR_LAB', `CNI VERSION failed: ${r.stdout}${r.stderr}`);
  return r.output;
}
