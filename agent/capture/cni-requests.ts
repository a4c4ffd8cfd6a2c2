/**
 * The agent's side of the chained CNI plugin (daemonset/cni/weft-cni, POSIX sh): the plugin
 * writes one request file per call into `<runDir>/cni/requests/` (temp file + rename, so a
 * reader never sees half of one) and waits, bounded, for `<runDir>/cni/results/<id>.ok` (what
 * it prints: the prevResult, passed through) or `<id>.err` (a CNI error object). A shell has no
 * socket client that every node is sure to have; files and `mv` it has. Each running agent
 * announces itself in `<runDir>/cni/agents/<pid>`, so the plugin fails at once, with a clear
 * message, when no agent runs.
 *
 * ADD: the agent captures the pod by the namespace path the plugin gives (no scan), with the IP
 * of the CNI result when the model has none yet, and answers once captured (or at once when the
 * pod is not in the mesh). DEL forgets the path. CHECK answers whether the pod is captured.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { CNI_TIMEOUT_SECONDS } from '../config.js';
import type { MeshModel } from '../discovery/types.js';
import type { CaptureManager } from './manager.js';
import { isWeftError, WeftError, type ErrorCode } from '../errors.js';

export function cniRequestDir(runDir: string): string {
  return join(runDir, 'cni');
}

/** What the plugin writes (field names are the plugin's; see weft-cni). */
export interface CniRequest {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  /** How long the plugin waits, so the agent answers before it gives up. */
  timeoutMs: number;
  /** The plugin's stdin: the network configuration with prevResult. */
  config: { cniVersion?: string; prevResult?: { ips?: { address?: string }[] } & Record<string, unknown> } & Record<string, unknown>;
}

/** CNI error codes 100+ are the plugin's own (1-99 are the spec's). */
const CNI_CODES: Partial<Record<ErrorCode, number>> = { WEFT_ERR_CNI_TIMEOUT: 100, WEFT_ERR_CNI_NO_AGENT: 101, WEFT_ERR_CNI_REQUEST: 102 };
const POLL_MS = 200;

/** `K8S_POD_NAMESPACE=a;K8S_POD_NAME=b` -> map (CNI_ARGS). */
export function parseCniArgs(args: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of args.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1));
  }
  return out;
}

export class CniRequests {
  readonly #dir: string;
  readonly #capture: CaptureManager;
  readonly #model: () => MeshModel;
  readonly #log: Logger;
  readonly #busy = new Set<string>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: { dir: string; capture: CaptureManager; model: () => MeshModel; nodeName: string; logger: Logger }) {
    this.#dir = opts.dir;
    this.#capture = opts.capture;
    this.#model = opts.model;
    this.#log = opts.logger;
  }

  async start(): Promise<void> {
    for (const sub of ['requests', 'results', 'agents']) await mkdir(join(this.#dir, sub), { recursive: true });
    await writeFile(join(this.#dir, 'agents', String(process.pid)), '');
    this.#watcher = watch(join(this.#dir, 'requests'), () => void this.#scan());
    this.#watcher.on('error', (err) => this.#log.warn({ err }, 'watching CNI requests failed; polling only'));
    // fs.watch may miss events (overlay file systems, bursts): a slow poll catches up.
    this.#timer = setInterval(() => void this.#scan(), POLL_MS);
    this.#timer.unref();
    await this.#scan();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
    await rm(join(this.#dir, 'agents', String(process.pid)), { force: true });
  }

  async #scan(): Promise<void> {
    if (this.#stopped) return;
    let names: string[];
    try {
      names = await readdir(join(this.#dir, 'requests'));
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.') || this.#busy.has(name)) continue;
      this.#busy.add(name);
      void this.#handle(name).finally(() => this.#busy.delete(name));
    }
  }

  async #handle(name: string): Promise<void> {
    const file = join(this.#dir, 'requests', name);
    let request: CniRequest;
    try {
      request = JSON.parse(await readFile(file, 'utf8')) as CniRequest;
    } catch {
      return; // another agent took it (handover), or it is not complete yet: next scan
    }
    const id = name.slice(0, -'.json'.length);
    let answer: { ok: true; output: string } | { ok: false; error: WeftError };
    try {
      answer = { ok: true, output: await this.#answer(request) };
    } catch (err) {
      const error = isWeftError(err) ? err : new WeftError('WEFT_ERR_CNI_REQUEST', (err as Error).message, { cause: err });
      answer = { ok: false, error };
    }
    if (this.#stopped) return; // draining: the new agent answers
    if (request.command === 'DEL') {
      await rm(file, { force: true }); // the plugin does not wait for a DEL
      return;
    }
    const cniVersion = request.config?.cniVersion ?? '1.0.0';
    const [suffix, body] = answer.ok
      ? ['ok', answer.output]
      : ['err', JSON.stringify({ cniVersion, code: CNI_CODES[answer.error.code] ?? 999, msg: `${answer.error.code}: ${answer.error.message}`, details: 'weft agent' })];
    const tmp = join(this.#dir, 'results', `.${id}.${process.pid}.tmp`);
    await writeFile(tmp, body + '\n');
    await rename(tmp, join(this.#dir, 'results', `${id}.${suffix}`));
    await rm(file, { force: true });
    if (answer.ok) this.#log.info({ command: request.command, containerId: request.containerId, netns: request.netns }, 'CNI request answered');
    else this.#log.warn({ command: request.command, containerId: request.containerId, err: { code: answer.error.code, message: answer.error.message } }, 'CNI request refused');
  }

  /** The plugin's stdout for this request; throws a WeftError to make the plugin fail. */
  async #answer(r: CniRequest): Promise<string> {
    const args = parseCniArgs(r.args ?? '');
    const namespace = args.get('K8S_POD_NAMESPACE');
    const pod = args.get('K8S_POD_NAME');
    const cniVersion = r.config?.cniVersion ?? '1.0.0';
    if (r.command === 'DEL') {
      if (namespace && pod) this.#capture.forgetNetns(`${namespace}/${pod}`);
      return '';
    }
    if (!namespace || !pod) throw new WeftError('WEFT_ERR_CNI_REQUEST', 'CNI_ARGS lacks K8S_POD_NAMESPACE or K8S_POD_NAME');
    const key = `${namespace}/${pod}`;
    const prev = r.config?.prevResult;
    if (r.command === 'CHECK') {
      const w = this.#model().workloads.get(key) ?? this.#model().pendingWorkload?.(key);
      if (w?.inMesh === true && !this.#capture.captured.has(key)) throw new WeftError('WEFT_ERR_CNI_TIMEOUT', `pod ${key} is in the mesh and not captured`);
      return '';
    }
    if (r.command !== 'ADD') throw new WeftError('WEFT_ERR_CNI_REQUEST', `unknown CNI_COMMAND ${JSON.stringify(r.command)}`);
    if (!r.netns) throw new WeftError('WEFT_ERR_CNI_REQUEST', 'CNI_NETNS is empty');
    if (prev === undefined) throw new WeftError('WEFT_ERR_CNI_REQUEST', 'no prevResult: weft-cni must be chained after the plugin that gives the pod its address');
    const address = prev.ips?.find((i) => typeof i.address === 'string' && !i.address.includes(':'))?.address;
    const ip = address?.split('/')[0] ?? '';
    // Leave the plugin time to print our answer before its own deadline.
    const timeoutMs = Math.max(500, (r.timeoutMs ?? CNI_TIMEOUT_SECONDS * 1000) - 1_000);
    await this.#capture.captureNetns(key, { netnsPath: r.netns, ip }, timeoutMs);
    return JSON.stringify({ ...prev, cniVersion });
  }
}
