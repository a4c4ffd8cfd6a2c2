/**
 * CPU time and memory of processes, from the kernel's own accounting: /proc/<pid>/stat fields
 * 14 and 15 (utime, stime, in clock ticks) and /proc/<pid>/status VmRSS. Parsing is pure.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcCpu {
  /** Clock ticks in user mode. */
  utime: number;
  /** Clock ticks in kernel mode. */
  stime: number;
}

/**
 * Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
 * itself hold spaces and ')', so fields are counted from the LAST ')'.
 */
export function parseProcStat(text: string): ProcCpu {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/<pid>/stat line (no ")")');
  // After ") " come field 3 (state), 4, ...: utime is field 14, stime field 15.
  const fields = text.slice(close + 2).trim().split(' ');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) throw new Error('not a /proc/<pid>/stat line (utime/stime are not numbers)');
  return { utime, stime };
}

/** VmRSS of /proc/<pid>/status, in KiB; undefined when absent (a kernel thread, a zombie). */
export function parseVmRssKiB(statusText: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return m === null ? undefined : Number(m[1]);
}

let clockTicks: number | undefined;

/** USER_HZ (sysconf _SC_CLK_TCK): 100 on every Linux this runs on, asked once anyway. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds split by mode: where a proxy's time goes (its own code, or syscalls and the kernel's network path they run). */
export interface CpuSplit {
  user: number;
  system: number;
}

/** utime and stime ticks of every pid, summed. Throws when a pid is gone (the figure would lie). */
function sumTicks(pids: readonly number[], read: (path: string) => string): ProcCpu {
  const sum: ProcCpu = { utime: 0, stime: 0 };
  for (const pid of pids) {
    const cpu = parseProcStat(read(`/proc/${pid}/stat`));
    sum.utime += cpu.utime;
    sum.stime += cpu.stime;
  }
  return sum;
}

/** utime and stime of every pid, summed, in seconds. */
export function cpuTimes(pids: readonly number[], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): CpuSplit {
  const t = sumTicks(pids, read);
  const hz = clockTicksPerSecond();
  return { user: t.utime / hz, system: t.stime / hz };
}

/** utime+stime of every pid, summed, in seconds. */
export function cpuSeconds(pids: readonly number[], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number {
  const t = sumTicks(pids, read);
  return (t.utime + t.stime) / clockTicksPerSecond();
}

/** VmRSS of one pid in KiB. */
export function rssKiB(pid: number, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number {
  const kib = parseVmRssKiB(read(`/proc/${pid}/status`));
  if (kib === undefined) throw new Error(`process ${pid} has no VmRSS (gone?)`);
  return kib;
}

/** A CPU meter over a set of processes: start(), then stop() gives the seconds they used between. */
export class CpuMeter {
  readonly #pids: readonly number[];
  #start: CpuSplit = { user: 0, system: 0 };
  /** The user / system seconds of the last start()..stop(), rounded to ms. */
  split: CpuSplit = { user: 0, system: 0 };

  constructor(pids: readonly number[]) {
    this.#pids = pids;
  }

  start(): void {
    this.#start = cpuTimes(this.#pids);
  }

  stop(): number {
    const end = cpuTimes(this.#pids);
    const ms = (s: number): number => Math.round(s * 1000) / 1000;
    this.split = { user: ms(end.user - this.#start.user), system: ms(end.system - this.#start.system) };
    return ms(end.user - this.#start.user + end.system - this.#start.system);
  }
}

/** The hard "Max open files" limit from /proc/<pid>/limits text. Pure. */
export function parseNofileHardLimit(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (m === null) return undefined;
  return m[2] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
}

/**
 * RLIMIT_NOFILE (hard) of this process, which the lab's agents and pods and the HAProxies
 * inherit (Node and HAProxy raise their soft limit to it). scripts/bench.sh raises it when it
 * may (CAP_SYS_RESOURCE); in a container without that capability it stays what it is.
 */
export function nofileLimit(): number {
  try {
    return parseNofileHardLimit(readFileSync('/proc/self/limits', 'utf8')) ?? 1024;
  } catch {
    return 1024;
  }
}

/**
 * How many connections a two-socket-per-connection proxy (accepted + upstream) can hold under
 * `limit` file descriptors, keeping `reserve` for listeners, logs and the runtime.
 */
export function connectionsWithin(limit: number, reserve = 200): number {
  return Math.max(0, Math.floor((limit - reserve) / 2));
}
