/**
 * The lab's processes (agents, pod containers): started detached inside a network namespace with
 * `ip netns exec` (which also bind-mounts /etc/netns/<netns>/* over /etc, so pods read the lab's
 * hosts file), identified by pid AND start time (a pid alone may be reused by then), stopped with
 * SIGTERM then SIGKILL after a bounded wait.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { WeftError } from '../errors.js';
import { run } from './run.js';

export interface ProcRef {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started. */
  startTime: string;
}

interface ProcStat {
  state: string;
  startTime: string;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
}

/** Exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** The very process the lab started is still running (not a later one with the same pid). */
export function refAlive(ref: ProcRef | undefined): boolean {
  if (ref === undefined) return false;
  const stat = procStat(ref.pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === ref.startTime;
}

export interface StartSpec {
  /** What this is, for messages: "pod default/details-v1", "agent of node-1". */
  what: string;
  netns: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  log: string;
  /**
   * Enter only the network namespace (nsenter --net), keeping the machine's mount namespace:
   * for the Kubernetes-mode kubelet, whose `ip netns add` must be visible to everyone (`ip netns
   * exec` gives each process a private mount namespace, where new netns mounts would stay).
   */
  networkOnly?: boolean;
  /** Open fds the process inherits as fd 3, 4, ... (the dashboard gets the host's netns so). */
  inheritFds?: readonly number[];
}

export interface StartOptions {
  /** How long the command may take to exec and to listen on `tcpPorts`. */
  readyTimeoutMs: number;
  tcpPorts?: readonly number[];
  /** false: return once spawned (the caller checks later whether it still runs). */
  waitExec: boolean;
  /** Told the exit code (128 + signal number for a signal) when the process ends. */
  onExit?: (code: number) => void;
}

const POLL_MS = 10;

/**
 * Starts `argv` in `netns`, detached (its own process group, so stopping it stops its children),
 * stdout and stderr appended to `log`. Resolves once the command runs (and, when `tcpPorts` are
 * given, listens on all of them); rejects with the log's last lines when it exits before that.
 */
export async function startInNetns(spec: StartSpec, options: StartOptions): Promise<ProcRef> {
  const fd = openSync(spec.log, 'a');
  writeSync(fd, `--- weft lab: ${new Date().toISOString()} start ${spec.what}: ${spec.argv.join(' ')}\n`);
  let exitCode: number | undefined;
  let exited: Promise<number> | undefined;
  let pid: number;
  try {
    const [file, prefix] = launcher(spec);
    const child = spawn(file, [...prefix, ...spec.argv], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', fd, fd, ...(spec.inheritFds ?? [])],
    });
    pid = await new Promise<number>((resolvePid, reject) => {
      child.once('spawn', () => resolvePid(child.pid!));
      child.once('error', (err) =>
        reject(new WeftError('WEFT_ERR_LAB', `start ${spec.what}: cannot run ip netns exec: ${err.message}`, { cause: err })),
      );
    });
    exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
        resolveExit(exitCode);
        options.onExit?.(exitCode);
      });
    });
    // The lab's process may exit (CLI) or go on (tests); the pod must not keep it alive.
    child.unref();
  } finally {
    closeSync(fd);
  }
  const stat = procStat(pid);
  const ref: ProcRef = { pid, startTime: stat?.startTime ?? '' };
  if (!options.waitExec) return ref;
  const deadline = Date.now() + options.readyTimeoutMs;
  const failed = async (why: (code: string) => string): Promise<never> => {
    await stopProcesses([ref], [], 1_000);
    // The process is gone; its exit status arrives with the next turn of the event loop.
    if (exitCode === undefined && exited !== undefined) await Promise.race([exited, delay(1_000)]);
    const lines = await logTail(spec.log, 15);
    throw new WeftError('WEFT_ERR_LAB', `start ${spec.what}: ${why(String(exitCode ?? '?'))}; last lines of ${spec.log}:\n${lines}`);
  };
  // `ip netns exec` becomes the command with execvp: wait until it has.
  while (isStillLauncher(pid, spec)) {
    if (exitCode !== undefined || !refAlive(ref)) return failed((code) => `the command exited at once (code ${code})`);
    if (Date.now() > deadline) return failed(() => `ip netns exec did not start the command within ${options.readyTimeoutMs} ms`);
    await delay(POLL_MS);
  }
  const ports = options.tcpPorts ?? [];
  if (ports.length > 0) {
    for (;;) {
      if (exitCode !== undefined || !refAlive(ref)) return failed((code) => `the command exited before listening (code ${code})`);
      const listening = await listeningTcpPorts(pid);
      if (ports.every((p) => listening.has(p))) break;
      if (Date.now() > deadline) {
        const missing = ports.filter((p) => !listening.has(p)).join(', ');
        return failed(() => `not listening on port ${missing} after ${options.readyTimeoutMs} ms`);
      }
      await delay(POLL_MS);
    }
  } else if (exitCode !== undefined || !refAlive(ref)) {
    return failed((code) => `the command exited at once (code ${code})`);
  }
  return ref;
}

function launcher(spec: StartSpec): [string, string[]] {
  return spec.networkOnly === true ? ['nsenter', [`--net=/run/netns/${spec.netns}`, '--']] : ['ip', ['netns', 'exec', spec.netns]];
}

function isStillLauncher(pid: number, spec: StartSpec): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const [file, prefix] = launcher(spec);
  return cmdline.startsWith([file, ...prefix, ''].join('\0'));
}

/** TCP ports in LISTEN state in the network namespace of `pid`. */
export async function listeningTcpPorts(pid: number): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    parseListeningPorts(text, ports);
  }
  return ports;
}

/** Adds the LISTEN ports of a /proc/<pid>/net/tcp{,6} text to `into`. Pure. */
export function parseListeningPorts(procNetTcp: string, into: Set<number> = new Set()): Set<number> {
  const lines = procNetTcp.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const cols = lines[i]!.trim().split(/\s+/);
    // cols[1] local "ADDR:PORT" (hex), cols[3] state; 0A is LISTEN.
    if (cols.length < 4 || cols[3] !== '0A') continue;
    // The port is 4 hex digits after the last ':'; anything else is not a row (a torn read
    // added NaN to the set before: found by the fuzz target proc-net-tcp).
    const port = /:([0-9A-Fa-f]{4})$/.exec(cols[1]!);
    if (port !== null) into.add(Number.parseInt(port[1]!, 16));
  }
  return into;
}

/** Pids of every process whose network namespace is `netns` (`ip netns pids`). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns], { allowFailure: true, step: `list processes in ${netns}` });
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number.parseInt(s, 10))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

/**
 * SIGTERM to each started process's group and to each extra pid, then SIGKILL to whatever still
 * runs after `graceMs`; resolves when all are gone (bounded) or throws naming the survivors.
 */
export async function stopProcesses(refs: readonly ProcRef[], pids: readonly number[], graceMs: number): Promise<void> {
  const live = refs.filter(refAlive);
  const extra = pids.filter((p) => processAlive(p) && p !== process.pid);
  if (live.length === 0 && extra.length === 0) return;
  const signalAll = (signal: NodeJS.Signals): void => {
    for (const r of live) if (refAlive(r)) signalGroup(r.pid, signal);
    for (const p of extra) signalPid(p, signal);
  };
  const allGone = (): boolean => live.every((r) => !refAlive(r)) && extra.every((p) => !processAlive(p));
  signalAll('SIGTERM');
  if (await waitFor(allGone, graceMs)) return;
  signalAll('SIGKILL');
  if (await waitFor(allGone, 5_000)) return;
  const left = [...live.filter(refAlive).map((r) => r.pid), ...extra.filter(processAlive)];
  throw new WeftError('WEFT_ERR_LAB', `processes ${left.join(', ')} survived SIGKILL (stuck in the kernel?); try again`);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Not a group leader (or gone): the process itself.
    signalPid(pid, signal);
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: it went away on its own.
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() > deadline) return false;
    await delay(20);
  }
}

export async function logTail(file: string, lines: number): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
