/**
 * A long-running process of the harness inside a lab namespace (an HAProxy, the scale agent):
 * started with `ip netns exec` (which execs, so the pid is the program's own), output to a log
 * file, ready when it listens on its ports (read from /proc/<pid>/net/tcp, bounded), stopped with
 * SIGTERM then SIGKILL (bounded).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** The last lines of a log, for a failure message (the log itself is removed with the run's files). */
function tail(file: string, lines = 6): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => l.slice(0, 300)).join(' | ');
  } catch {
    return '(no log)';
  }
}
import { BenchError } from './errors.js';
import { parseListeningPorts, processAlive } from '../agent/lab/procs.js';

export interface NetnsProcessSpec {
  what: string;
  netns: string;
  argv: string[];
  log: string;
  cwd: string;
  env?: Record<string, string>;
  /** Ready when listening on all of these TCP ports (none: ready once it runs). */
  ports: readonly number[];
  readyTimeoutMs: number;
}

/** LISTEN ports in /proc/<pid>/net/tcp text. Pure (the lab's parser). */
export function listeningPorts(procNetTcp: string): Set<number> {
  return parseListeningPorts(procNetTcp);
}


const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NetnsProcess {
  readonly pid: number;
  readonly #what: string;
  #exited = false;

  private constructor(pid: number, what: string) {
    this.pid = pid;
    this.#what = what;
  }

  static async start(spec: NetnsProcessSpec): Promise<NetnsProcess> {
    const fd = openSync(spec.log, 'a');
    let proc: NetnsProcess;
    try {
      const child = spawn('ip', ['netns', 'exec', spec.netns, ...spec.argv], {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid!));
        child.once('error', (err) => reject(new BenchError(`start ${spec.what}: ${err.message}`, { cause: err })));
      });
      proc = new NetnsProcess(pid, spec.what);
      child.once('exit', () => {
        proc.#exited = true;
      });
      child.unref();
    } finally {
      closeSync(fd);
    }
    const deadline = Date.now() + spec.readyTimeoutMs;
    for (;;) {
      if (proc.#exited || !processAlive(proc.pid)) {
        throw new BenchError(`${spec.what} exited before it was ready: ${tail(spec.log)}`);
      }
      let listening = new Set<number>();
      try {
        listening = listeningPorts(readFileSync(`/proc/${proc.pid}/net/tcp`, 'utf8'));
      } catch {
        // Not there yet (still `ip`): try again.
      }
      const isIp = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').startsWith('ip\0netns\0');
      if (!isIp && spec.ports.every((p) => listening.has(p))) return proc;
      if (Date.now() > deadline) {
        await proc.stop();
        throw new BenchError(`${spec.what} was not listening on ${spec.ports.join(', ')} after ${spec.readyTimeoutMs} ms: ${tail(spec.log)}`);
      }
      await delay(20);
    }
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it is gone (bounded). */
  async stop(graceMs = 3_000): Promise<void> {
    const signal = (s: NodeJS.Signals): void => {
      try {
        process.kill(-this.pid, s);
      } catch {
        try {
          process.kill(this.pid, s);
        } catch {
          // Already gone.
        }
      }
    };
    if (!processAlive(this.pid)) return;
    signal('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (processAlive(this.pid) && Date.now() < deadline) await delay(20);
    if (!processAlive(this.pid)) return;
    signal('SIGKILL');
    const hard = Date.now() + 5_000;
    while (processAlive(this.pid) && Date.now() < hard) await delay(20);
    if (processAlive(this.pid)) throw new BenchError(`${this.#what} (pid ${this.pid}) survived SIGKILL`);
  }
}
