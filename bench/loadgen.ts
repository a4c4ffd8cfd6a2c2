/**
 * The load generator, run inside the client pod (`weft lab exec`). One mode per run, given as a
 * JSON argument; prints one JSON line with the result. Every mode is bounded in requests or
 * connections AND in time, and exits on its own.
 *
 *   latency  open loop at a fixed rate over N connections (schedule.ts); latency from each
 *            request's intended send time into an HdrHistogram
 *   closed   N connections, one request in flight each: the rate the path sustains
 *   connect  a new TCP connection per small request, `concurrency` at a time
 *   idle     open N connections, one small request each, then hold them idle until a release
 *            file appears (or a deadline), so the harness can measure the proxies meanwhile
 *   soak     mixed traffic for a long time: persistent connections at a fixed request rate and
 *            new connections (one request each) at a fixed rate, side by side
 *   http     HTTP/1.1 keep-alive (or HTTPS, or a new connection per request) and gRPC-like HTTP/2
 *            requests, open or closed loop (http-load.ts)
 *
 * Every socket keeps an 'error' listener from creation to destruction, and every error is counted
 * by its code: a reset (ECONNRESET) is a figure of the run, never an unhandled 'error' that kills
 * the generator (the idle scenario died that way when the agent reset held connections).
 */
import net from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { buildRequest } from './protocol.js';
import { newLatencyHistogram, summarize, type LatencySummary } from './histogram.js';
import { OpenLoopSchedule } from './schedule.js';
import { runHttp, type HttpLoadSpec, type HttpResult } from './http-load.js';

export interface Target {
  host: string;
  port: number;
}

export type LoadSpec =
  | { mode: 'latency'; target: Target; rate: number; connections: number; durationMs: number; warmupMs: number; requestBytes: number; responseBytes: number }
  | { mode: 'closed'; target: Target; connections: number; durationMs: number; warmupMs: number; requestBytes: number; responseBytes: number }
  | { mode: 'connect'; target: Target; concurrency: number; durationMs: number; maxConnections: number; requestBytes: number; responseBytes: number }
  | { mode: 'idle'; target: Target; connections: number; concurrency: number; readyFile: string; releaseFile: string; maxHoldMs: number }
  | { mode: 'soak'; target: Target; durationMs: number; persistentConnections: number; persistentRate: number; newConnectionRate: number; requestBytes: number; responseBytes: number }
  | HttpLoadSpec;

export interface LatencyResult {
  mode: 'latency';
  rate: number;
  sent: number;
  answered: number;
  /** Requests without an answer when the drain deadline passed. */
  unanswered: number;
  errors: number;
  /** From each request's intended send time (the figure the targets use). */
  latency: LatencySummary;
  /** From the moment each request was written: the path alone, without the sender's timer lag. */
  serviceLatency: LatencySummary;
  achievedRps: number;
}
export interface ClosedResult {
  mode: 'closed';
  connections: number;
  /** Completed in the measured window (after warm-up). */
  completed: number;
  answered: number;
  rps: number;
  errors: number;
  latency: LatencySummary;
}
export interface ConnectResult {
  mode: 'connect';
  completed: number;
  errors: number;
  connectionsPerSecond: number;
  latency: LatencySummary;
}
export interface IdleResult {
  mode: 'idle';
  requested: number;
  opened: number;
  errors: number;
  /** ECONNRESET on any socket of the run (opening, exchanging or held). */
  resets: number;
  /** Held connections the other side closed (FIN or reset) before the release. */
  closedWhileHeld: number;
  errorsByCode: Record<string, number>;
  heldMs: number;
}
export interface SoakResult {
  mode: 'soak';
  durationMs: number;
  persistentSent: number;
  persistentAnswered: number;
  connectionsStarted: number;
  connectionsCompleted: number;
  /** New connections not started because too many were still in flight (the path fell behind). */
  connectionsSkipped: number;
  /** New connections that failed, and persistent ones lost before the end. */
  errors: number;
  resets: number;
  errorsByCode: Record<string, number>;
  achievedRps: number;
}
export type { HttpLoadSpec, HttpResult };
export type LoadResult = LatencyResult | ClosedResult | ConnectResult | IdleResult | SoakResult | HttpResult;

/**
 * The load generator's own CPU over its run (process.cpuUsage), so that a saturated generator is
 * seen: at 100 % of a core it no longer offers the load it was asked for, and every system's
 * figure is then the generator's.
 */
export interface GeneratorCpu {
  userSeconds: number;
  systemSeconds: number;
  wallSeconds: number;
  /** (user + system) / wall: 100 is one core busy. */
  percentOfCore: number;
}

export function generatorCpu(start: NodeJS.CpuUsage, startMs: number, end: NodeJS.CpuUsage = process.cpuUsage(), endMs = performance.now()): GeneratorCpu {
  const user = (end.user - start.user) / 1e6;
  const system = (end.system - start.system) / 1e6;
  const wall = (endMs - startMs) / 1e3;
  return { userSeconds: user, systemSeconds: system, wallSeconds: wall, percentOfCore: wall > 0 ? Math.round(((user + system) / wall) * 1000) / 10 : 0 };
}

const CONNECT_TIMEOUT_MS = 10_000;
const DRAIN_MS = 5_000;
/** Give up a run after this many socket errors: the path is broken, the figure would be noise. */
const MAX_ERRORS = 1_000;

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Socket errors of the run by code (ECONNRESET, EADDRNOTAVAIL, ETIMEDOUT, ...). */
export class ErrorTally {
  readonly byCode: Record<string, number> = {};

  note(err: unknown): void {
    const code = (err as { code?: unknown } | undefined)?.code;
    const key = typeof code === 'string' ? code : 'other';
    this.byCode[key] = (this.byCode[key] ?? 0) + 1;
  }

  get resets(): number {
    return this.byCode['ECONNRESET'] ?? 0;
  }

  get total(): number {
    return Object.values(this.byCode).reduce((a, b) => a + b, 0);
  }
}

/**
 * Opens a connection. The socket's 'error' listener stays for its whole life (it counts into
 * `tally`); callers add their own listeners and remove only those.
 */
function connect(target: Target, tally: ErrorTally = new ErrorTally()): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: target.host, port: target.port, noDelay: true });
    let connected = false;
    const timer = setTimeout(() => {
      s.destroy();
      tally.note({ code: 'ETIMEDOUT' });
      reject(new Error(`connect to ${target.host}:${target.port} timed out`));
    }, CONNECT_TIMEOUT_MS);
    s.on('error', (err) => {
      tally.note(err);
      if (connected) return;
      clearTimeout(timer);
      reject(err);
    });
    s.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      resolve(s);
    });
  });
}

async function connectAll(target: Target, count: number, concurrency: number, tally?: ErrorTally): Promise<{ sockets: net.Socket[]; errors: number }> {
  const sockets: net.Socket[] = [];
  let errors = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && errors < MAX_ERRORS) {
      next++;
      try {
        sockets.push(await connect(target, tally));
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sockets, errors };
}

/** Per-connection response accounting: FIFO of intended send times, bytes of the current answer. */
class Lane {
  readonly socket: net.Socket;
  readonly #intended: number[] = [];
  readonly #sentAt: number[] = [];
  #head = 0;
  #bytes = 0;
  readonly #responseBytes: number;

  constructor(socket: net.Socket, responseBytes: number) {
    this.socket = socket;
    this.#responseBytes = responseBytes;
  }

  push(intended: number, sentAt: number): void {
    this.#intended.push(intended);
    this.#sentAt.push(sentAt);
  }

  /** Bytes arrived: returns the intended times of the requests they completed (in order) via `done`. */
  receive(n: number, done: (intended: number, sentAt: number) => void): void {
    this.#bytes += n;
    while (this.#bytes >= this.#responseBytes && this.#head < this.#intended.length) {
      this.#bytes -= this.#responseBytes;
      const i = this.#head++;
      done(this.#intended[i]!, this.#sentAt[i]!);
    }
    // Compact now and then so the FIFO does not grow with the run.
    if (this.#head > 4096 && this.#head * 2 > this.#intended.length) {
      this.#intended.splice(0, this.#head);
      this.#sentAt.splice(0, this.#head);
      this.#head = 0;
    }
  }

  get outstanding(): number {
    return this.#intended.length - this.#head;
  }
}

export async function runLatency(spec: Extract<LoadSpec, { mode: 'latency' }>): Promise<LatencyResult> {
  const { sockets, errors: connectErrors } = await connectAll(spec.target, spec.connections, spec.connections);
  if (sockets.length === 0) throw new Error(`no connection to ${spec.target.host}:${spec.target.port} could be opened`);
  const request = buildRequest(spec.requestBytes, spec.responseBytes);
  const hist = newLatencyHistogram();
  let errors = connectErrors;
  let answered = 0;
  const warmRate = spec.rate;
  const total = Math.round((warmRate * (spec.durationMs + spec.warmupMs)) / 1000);
  const schedule = new OpenLoopSchedule(spec.rate, total, performance.now() + 5);
  const recordFrom = schedule.start + spec.warmupMs;
  const lanes = sockets.map((s) => new Lane(s, spec.responseBytes));
  const service = newLatencyHistogram();
  const onAnswer = (intended: number, sentAt: number): void => {
    answered++;
    if (intended < recordFrom) return;
    const now = performance.now();
    hist.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
    service.recordValue(Math.max(1, Math.round((now - sentAt) * 1000)));
  };
  let sent = 0;
  // Sends whatever is due by now. Called from the 1 ms timer AND after every arriving answer:
  // Node's timers have 1 ms granularity, and at a few thousand requests per second the answers
  // arrive more often than that, so sends leave closer to their intended time without spinning.
  const pump = (now: number): void => {
    const due = schedule.dueBy(now);
    while (sent < due) {
      const lane = lanes[OpenLoopSchedule.connectionOf(sent, lanes.length)]!;
      lane.push(schedule.intended(sent), now);
      if (!lane.socket.destroyed) lane.socket.write(request);
      sent++;
    }
  };
  for (const lane of lanes) {
    lane.socket.on('data', (chunk: Buffer) => {
      lane.receive(chunk.length, onAnswer);
      if (sent < total) pump(performance.now());
    });
    lane.socket.on('error', () => errors++);
  }
  const hardDeadline = schedule.end() + DRAIN_MS;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      pump(now);
      if ((sent === total && answered === total) || now > hardDeadline || errors > MAX_ERRORS) return resolve();
      // Sending is done: poll the drain less often.
      setTimeout(tick, sent === total ? 5 : 1);
    };
    tick();
  });
  for (const s of sockets) s.destroy();
  const measuredSeconds = spec.durationMs / 1000;
  return {
    mode: 'latency',
    rate: spec.rate,
    sent,
    answered,
    unanswered: sent - answered,
    errors,
    latency: summarize(hist),
    serviceLatency: summarize(service),
    achievedRps: Math.round(hist.totalCount / measuredSeconds),
  };
}

export async function runClosed(spec: Extract<LoadSpec, { mode: 'closed' }>): Promise<ClosedResult> {
  const { sockets, errors: connectErrors } = await connectAll(spec.target, spec.connections, spec.connections);
  if (sockets.length === 0) throw new Error(`no connection to ${spec.target.host}:${spec.target.port} could be opened`);
  const request = buildRequest(spec.requestBytes, spec.responseBytes);
  const hist = newLatencyHistogram();
  let errors = connectErrors;
  let answered = 0;
  let completed = 0;
  const start = performance.now();
  const windowStart = start + spec.warmupMs;
  const windowEnd = windowStart + spec.durationMs;
  let stopping = false;
  const lanes = sockets.map((s) => new Lane(s, spec.responseBytes));
  for (const lane of lanes) {
    const onAnswer = (intended: number, _sentAt: number): void => {
      answered++;
      const now = performance.now();
      if (intended >= windowStart && now <= windowEnd) {
        completed++;
        hist.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
      }
      if (!stopping && now < windowEnd) {
        const t = performance.now();
        lane.push(t, t);
        lane.socket.write(request);
      }
    };
    lane.socket.on('data', (chunk: Buffer) => lane.receive(chunk.length, onAnswer));
    lane.socket.on('error', () => errors++);
    const t = performance.now();
    lane.push(t, t);
    lane.socket.write(request);
  }
  await delay(spec.warmupMs + spec.durationMs);
  stopping = true;
  for (const s of sockets) s.destroy();
  return {
    mode: 'closed',
    connections: sockets.length,
    completed,
    answered,
    rps: Math.round(completed / (spec.durationMs / 1000)),
    errors,
    latency: summarize(hist),
  };
}

/**
 * One request on a new TCP connection: connect, write `request`, read `responseBytes`, then the
 * client closes first (as an HTTP/1.0 client would; TIME_WAIT stays in the client pod). Resolves
 * whether the answer was complete; every error and the time-out are counted into `tally`. The
 * connect and soak modes both open their connections with it.
 */
function oneShot(target: Target, request: Buffer, responseBytes: number, tally: ErrorTally): Promise<boolean> {
  return new Promise((resolve) => {
    let got = 0;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const s = net.connect({ host: target.host, port: target.port, noDelay: true });
    const timer = setTimeout(() => {
      tally.note({ code: 'ETIMEDOUT' });
      s.destroy();
      finish(false);
    }, CONNECT_TIMEOUT_MS);
    s.on('connect', () => s.write(request));
    s.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= responseBytes) {
        s.end();
        finish(true);
      }
    });
    s.on('error', (err) => {
      tally.note(err);
      s.destroy();
      finish(false);
    });
    s.on('close', () => finish(got >= responseBytes));
  });
}

export async function runConnect(spec: Extract<LoadSpec, { mode: 'connect' }>): Promise<ConnectResult> {
  const request = buildRequest(spec.requestBytes, spec.responseBytes);
  const hist = newLatencyHistogram();
  const tally = new ErrorTally();
  const start = performance.now();
  const deadline = start + spec.durationMs;
  let started = 0;
  let completed = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (started < spec.maxConnections && performance.now() < deadline && errors < MAX_ERRORS) {
      started++;
      const t0 = performance.now();
      if (await oneShot(spec.target, request, spec.responseBytes, tally)) {
        completed++;
        hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      } else {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  return { mode: 'connect', completed, errors, connectionsPerSecond: Math.round(completed / elapsed), latency: summarize(hist) };
}

export async function runIdle(spec: Extract<LoadSpec, { mode: 'idle' }>): Promise<IdleResult> {
  const tally = new ErrorTally();
  const { sockets, errors: connectErrors } = await connectAll(spec.target, spec.connections, spec.concurrency, tally);
  let errors = connectErrors;
  // One small exchange per connection, so each one is known to be proxied end to end.
  const request = buildRequest(64, 64);
  let next = 0;
  const open: net.Socket[] = [];
  const exchange = (s: net.Socket): Promise<boolean> =>
    new Promise((resolve) => {
      // Reset or closed while it waited for its turn ('close' has fired already).
      if (s.destroyed) return resolve(false);
      let got = 0;
      // Generous: a TLS proxy pair does one handshake per connection while dozens queue.
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, 3 * CONNECT_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        got += chunk.length;
        if (got >= 64) {
          cleanup();
          resolve(true);
        }
      };
      const onEnd = (): void => {
        cleanup();
        resolve(false);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onEnd);
      };
      s.on('data', onData);
      // An error closes the socket too (the tally, connect()'s listener, counts the error).
      s.on('close', onEnd);
      s.write(request);
    });
  let held = false;
  let closedWhileHeld = 0;
  const worker = async (): Promise<void> => {
    while (next < sockets.length) {
      const s = sockets[next++]!;
      if (await exchange(s)) {
        open.push(s);
        s.once('close', () => {
          if (held) closedWhileHeld++;
          else errors++;
        });
      } else {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, sockets.length) }, worker));
  writeFileSync(spec.readyFile, JSON.stringify({ opened: open.length, errors, resets: tally.resets }) + '\n');
  held = true;
  const heldAt = performance.now();
  const deadline = heldAt + spec.maxHoldMs;
  while (!existsSync(spec.releaseFile) && performance.now() < deadline) await delay(50);
  const heldMs = Math.round(performance.now() - heldAt);
  held = false;
  for (const s of sockets) {
    s.removeAllListeners('close');
    s.destroy();
  }
  return { mode: 'idle', requested: spec.connections, opened: open.length, errors, resets: tally.resets, closedWhileHeld, errorsByCode: tally.byCode, heldMs };
}

/** Cap on new connections in flight in the soak mode: beyond it the path has fallen behind. */
const SOAK_MAX_NEW_IN_FLIGHT = 256;

export async function runSoak(spec: Extract<LoadSpec, { mode: 'soak' }>): Promise<SoakResult> {
  const tally = new ErrorTally();
  const request = buildRequest(spec.requestBytes, spec.responseBytes);
  const { sockets } = await connectAll(spec.target, spec.persistentConnections, spec.persistentConnections, tally);
  if (sockets.length === 0) throw new Error(`no connection to ${spec.target.host}:${spec.target.port} could be opened`);
  const lanes = sockets.map((s) => new Lane(s, spec.responseBytes));
  let persistentAnswered = 0;
  let persistentLost = 0;
  let ending = false;
  for (const lane of lanes) {
    lane.socket.on('data', (chunk: Buffer) => lane.receive(chunk.length, () => persistentAnswered++));
    // connect()'s listener counts the error; a persistent connection closed before the end is lost.
    lane.socket.on('close', () => {
      if (!ending) persistentLost++;
    });
  }
  let persistentSent = 0;
  let started = 0;
  let completed = 0;
  let skipped = 0;
  let inFlight = 0;
  let failed = 0;
  const once = (): void => {
    inFlight++;
    started++;
    void oneShot(spec.target, request, spec.responseBytes, tally).then((ok) => {
      inFlight--;
      if (ok) completed++;
      else failed++;
    });
  };
  const start = performance.now();
  const end = start + spec.durationMs;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const elapsed = Math.min(now, end) - start;
      const duePersistent = Math.floor((elapsed * spec.persistentRate) / 1000);
      while (persistentSent < duePersistent) {
        const lane = lanes[persistentSent % lanes.length]!;
        lane.push(now, now);
        if (!lane.socket.destroyed) lane.socket.write(request);
        persistentSent++;
      }
      const dueNew = Math.floor((elapsed * spec.newConnectionRate) / 1000);
      while (started + skipped < dueNew) {
        if (inFlight >= SOAK_MAX_NEW_IN_FLIGHT) skipped++;
        else once();
      }
      if (now >= end) return resolve();
      setTimeout(tick, 5);
    };
    tick();
  });
  // Let what is in flight finish (bounded), then close.
  const drainUntil = performance.now() + DRAIN_MS;
  while ((inFlight > 0 || persistentAnswered < persistentSent) && performance.now() < drainUntil) await delay(20);
  ending = true;
  for (const s of sockets) s.destroy();
  const seconds = spec.durationMs / 1000;
  return {
    mode: 'soak',
    durationMs: spec.durationMs,
    persistentSent,
    persistentAnswered,
    connectionsStarted: started,
    connectionsCompleted: completed,
    connectionsSkipped: skipped,
    errors: failed + persistentLost,
    resets: tally.resets,
    errorsByCode: tally.byCode,
    achievedRps: Math.round((persistentAnswered + completed) / seconds),
  };
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  switch (spec.mode) {
    case 'latency':
      return runLatency(spec);
    case 'closed':
      return runClosed(spec);
    case 'connect':
      return runConnect(spec);
    case 'idle':
      return runIdle(spec);
    case 'soak':
      return runSoak(spec);
    case 'http':
      return runHttp(spec);
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const arg = process.argv[2];
  if (arg === undefined) {
    process.stderr.write('usage: loadgen.js <json spec>\n');
    process.exit(2);
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  runLoad(JSON.parse(arg) as LoadSpec).then(
    (result) => {
      process.stdout.write(JSON.stringify({ ...result, generatorCpu: generatorCpu(cpu0, t0) }) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stdout.write(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }) + '\n');
      process.exit(1);
    },
  );
}
