/**
 * The discovery half of an agent, alone in its own process, for the scale-k8s bench: a
 * KubernetesSource (or a LocalSource) and nothing else, so its memory and its event loop are
 * its own. Forked by bench/scenarios/scale-k8s.ts with `--expose-gc`; talks over IPC:
 *
 *   argv[2]: JSON { mode: 'kube', kubeconfig, node } | { mode: 'local', dir }
 *   -> { type: 'synced', syncMs, eldMaxMs, heapMiB, rssMiB, baseHeapMiB, baseRssMiB, workloads, services }
 *   <- { cmd: 'await', key, version }       -> { type: 'seen', key, at }  (when the model shows it)
 *   <- { cmd: 'mark' }                      -> { type: 'marked' }         (event-loop histogram reset)
 *   <- { cmd: 'report' }                    -> { type: 'report', eldMaxMs, eldP99Ms, stats, refusals, ... }
 *   (memory is measured after a forced GC, at sync only: a GC in a report would be in the delays)
 *   <- { cmd: 'refresh' }                   -> { type: 'refreshed' }      (local: scan now)
 *
 * The event-loop delay is perf_hooks' monitorEventLoopDelay at 1 ms resolution: the longest
 * time any discovery work kept this loop (the one that carries the data path in an agent) busy.
 */
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

async function main(): Promise<void> {
  const base = memory();
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
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
  const after = memory();
  send({ type: 'synced', syncMs, eldMaxMs, ...after, baseHeapMiB: base.heapMiB, baseRssMiB: base.rssMiB, workloads: model.workloads.size, services: model.services.size });
  eld.reset();

  process.on('message', (m: Command) => {
    switch (m.cmd) {
      case 'await':
        waiting.set(m.key, m.version);
        check(source.current());
        return;
      case 'mark':
        eld.reset();
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
          stats: source instanceof KubernetesSource ? source.stats() : undefined,
          refusals: source.refusals(),
          generation: source.current().generation,
        });
        return;
      case 'stop':
        void source.stop().then(() => process.exit(0));
        return;
    }
  });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
});
