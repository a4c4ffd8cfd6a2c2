/**
 * The discovery half of an agent, alone in its own process, for the scale-k8s bench: a
 * KubernetesSource (or a LocalSource) and nothing else, so its memory and its event loop are
 * its own. Forked by bench/scenarios/scale-k8s.ts with `--expose-gc`; talks over IPC:
 *
 *   argv[2]: JSON { mode: 'kube', kubeconfig, node } | { mode: 'local', dir }
 *   -> { type: 'synced', syncMs, eldMaxMs, busyMaxMs, heapMiB, rssMiB, baseHeapMiB, baseRssMiB, workloads, services }
 *   <- { cmd: 'await', key, version }       -> { type: 'seen', key, at }  (when the model shows it)
 *   <- { cmd: 'mark' }                      -> { type: 'marked' }         (event-loop histogram reset)
 *   <- { cmd: 'report' }                    -> { type: 'report', eldMaxMs, eldP99Ms, busyMaxMs, stats, refusals, ... }
 *   (memory is measured after a forced GC, at sync only: a GC in a report would be in the delays)
 *   <- { cmd: 'refresh' }                   -> { type: 'refreshed' }      (local: scan now)
 *
 * The event-loop delay is perf_hooks' monitorEventLoopDelay at 1 ms resolution: the longest
 * time any discovery work kept this loop (the one that carries the data path in an agent) busy.
 * On a machine shared with other work that also counts the time the kernel gave the core to
 * others, so the probe reports a second figure, `busyMaxMs`: the longest delay of a 1 ms timer
 * during which this thread was on a CPU the whole time (the part of each delay the main thread
 * spent running, from /proc/thread-self/schedstat), which is the work that held the loop.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger } from '../agent/log.js';
import { KubernetesSource, loadKubeConfig } from '../agent/discovery/kubernetes.js';
import { LocalSource } from '../agent/discovery/local.js';
import type { MeshModel } from '../agent/discovery/types.js';

type Config = { mode: 'kube'; kubeconfig: string; node: string } | { mode: 'local'; dir: string };
type Command = { cmd: 'await'; key: string; version: string } | { cmd: 'mark' } | { cmd: 'report' } | { cmd: 'refresh' } | { cmd: 'stop' };

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (m: object): void => {
  process.send?.(m);
};
const mib = (b: number): number => Math.round((b / (1024 * 1024)) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc;

function memory(): { heapMiB: number; rssMiB: number } {
  gc?.();
  const m = process.memoryUsage();
  return { heapMiB: mib(m.heapUsed), rssMiB: mib(m.rss) };
}

/**
 * The longest stretch the main thread held the event loop while running on a CPU: each turn of
 * a 1 ms timer, min(the wall time since the last turn, the main thread's run time over it).
 * A delay the kernel caused (the core given to another process) counts only its running part.
 */
class LoopBusyMonitor {
  readonly #fd = openSync('/proc/thread-self/schedstat', 'r');
  readonly #buf = Buffer.alloc(128);
  #timer: NodeJS.Timeout | undefined;
  #lastWall = 0n;
  #lastRun = 0;
  #maxNs = 0;
  start(): void {
    this.reset();
    this.#timer = setInterval(() => this.#tick(), 1);
    this.#timer.unref();
  }
  reset(): void {
    this.#lastWall = process.hrtime.bigint();
    this.#lastRun = this.#runNs();
    this.#maxNs = 0;
  }
  get maxMs(): number {
    return this.#maxNs / 1e6;
  }
  stop(): void {
    clearInterval(this.#timer);
    closeSync(this.#fd);
  }
  #tick(): void {
    const wall = process.hrtime.bigint();
    const run = this.#runNs();
    const busy = Math.min(Number(wall - this.#lastWall), run - this.#lastRun);
    if (busy > this.#maxNs) this.#maxNs = busy;
    this.#lastWall = wall;
    this.#lastRun = run;
  }
  /** The first field of schedstat: nanoseconds this thread has run on a CPU. */
  #runNs(): number {
    const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
    return Number(this.#buf.toString('latin1', 0, n).split(' ')[0]);
  }
}

async function main(): Promise<void> {
  const base = memory();
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const busy = new LoopBusyMonitor();
  busy.start();
  const source =
    config.mode === 'kube'
      ? new KubernetesSource({ kubeConfig: loadKubeConfig(config.kubeconfig), logger: silentLogger, nodeName: config.node })
      : new LocalSource({ dir: config.dir, logger: silentLogger });
  const waiting = new Map<string, string>();
  const check = (model: MeshModel): void => {
    for (const [key, version] of waiting) {
      if (model.workloads.get(key)?.version === version) {
        waiting.delete(key);
        send({ type: 'seen', key, at: Date.now() });
      }
    }
  };
  source.on('update', check);
  const started = performance.now();
  const model = await source.start();
  const syncMs = Math.round(performance.now() - started);
  const eldMaxMs = eld.max / 1e6;
  const busyMaxMs = busy.maxMs;
  const after = memory();
  send({ type: 'synced', syncMs, eldMaxMs, busyMaxMs, ...after, baseHeapMiB: base.heapMiB, baseRssMiB: base.rssMiB, workloads: model.workloads.size, services: model.services.size });
  eld.reset();
  busy.reset();

  process.on('message', (m: Command) => {
    switch (m.cmd) {
      case 'await':
        waiting.set(m.key, m.version);
        check(source.current());
        return;
      case 'mark':
        eld.reset();
        busy.reset();
        send({ type: 'marked' });
        return;
      case 'refresh':
        if (source instanceof LocalSource) void source.refresh().then(() => send({ type: 'refreshed' }));
        else send({ type: 'refreshed' });
        return;
      case 'report':
        send({
          type: 'report',
          eldMaxMs: eld.max / 1e6,
          eldP99Ms: eld.percentile(99) / 1e6,
          busyMaxMs: busy.maxMs,
          stats: source instanceof KubernetesSource ? source.stats() : undefined,
          refusals: source.refusals(),
          generation: source.current().generation,
        });
        return;
      case 'stop':
        busy.stop();
        void source.stop().then(() => process.exit(0));
        return;
    }
  });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
});
