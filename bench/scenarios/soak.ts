/**
 * soak: mixed traffic through the bench lab for a long time (default 10 minutes after a 1 minute
 * warm-up; `--soak-duration`): 16 persistent connections at 900 requests/s and 100 new
 * connections/s with one request each, 1000 requests/s in all, 1 KiB each way. Every 10 s the
 * harness samples each agent's RSS (/proc/<pid>/status) and open descriptors (/proc/<pid>/fd).
 * Growth is judged after the warm-up: the lowest sample of the window's last third against the
 * lowest of its first third (see soakGrowth), per agent, the larger of the two agents reported. Target (issue 10): below 1 MiB and 10 descriptors over the window.
 */
import { readdirSync } from 'node:fs';
import { rssKiB } from '../proc-stats.js';
import type { SoakResult } from '../loadgen.js';
import { requireSystem, runLoadInClient, type Measurement, type Scenario, type ScenarioContext } from './scenario.js';
import type { System } from '../systems/system.js';

export const SOAK_DEFAULT_MS = 10 * 60_000;
const SAMPLE_MS = 10_000;
const PERSISTENT = 16;
const PERSISTENT_RATE = 900;
const NEW_RATE = 100;

export interface SoakSample {
  /** ms since the load started. */
  at: number;
  rssKiB: number[];
  fds: number[];
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Growth per process over the window: the lowest sample of its last third minus the lowest of
 * its first third (samples at or after `warmupMs`). The floors, not means: at 1000 requests/s an
 * agent's RSS saws by ~100 MB between major GCs, so a mean of a few samples says where in the
 * saw they fell; the floor after a collection is what the agent keeps. Pure (exported for its test).
 */
export function soakGrowth(samples: readonly SoakSample[], warmupMs: number, pick: (s: SoakSample) => number[]): number[] | undefined {
  const window = samples.filter((s) => s.at >= warmupMs);
  if (window.length < 6) return undefined;
  const third = Math.floor(window.length / 3);
  const first = window.slice(0, third);
  const last = window.slice(-third);
  const n = pick(first[0]!).length;
  const floor = (part: readonly SoakSample[], i: number): number => Math.min(...part.map((s) => pick(s)[i]!));
  return Array.from({ length: n }, (_, i) => floor(last, i) - floor(first, i));
}

export const soak: Scenario = {
  name: 'soak',
  systems: ['weft'],
  usesSystem: true,
  // Not in a default run (10+ minutes): `--scenario soak`.
  onlyWhenNamed: true,
  metrics: [
    { metric: 'agent RSS growth after warm-up', unit: 'KiB', better: 'lower' },
    { metric: 'agent descriptor growth after warm-up', unit: 'fds', better: 'lower' },
    { metric: 'soak requests per second', unit: 'req/s', better: 'higher' },
    { metric: 'soak errors', unit: 'count', better: 'lower' },
  ],
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const windowMs = ctx.soakDurationMs ?? (ctx.quick ? 60_000 : SOAK_DEFAULT_MS);
    const warmupMs = Math.min(60_000, Math.max(20_000, windowMs / 10));
    const durationMs = warmupMs + windowMs;
    const pids = sys.proxyPids();
    ctx.log(`  ${durationMs / 1000} s (${warmupMs / 1000} s warm-up): ${PERSISTENT} persistent connections at ${PERSISTENT_RATE} req/s + ${NEW_RATE} new connections/s; agents ${pids.join(', ')}`);
    const samples: SoakSample[] = [];
    const started = Date.now();
    const sample = (): void => {
      samples.push({ at: Date.now() - started, rssKiB: pids.map((p) => rssKiB(p)), fds: pids.map(openFds) });
      const s = samples[samples.length - 1]!;
      ctx.log(`  t=${Math.round(s.at / 1000)} s rss ${s.rssKiB.join('/')} KiB fds ${s.fds.join('/')}`);
    };
    sample();
    const timer = setInterval(sample, SAMPLE_MS);
    let r: SoakResult;
    try {
      r = await runLoadInClient<SoakResult>(
        { mode: 'soak', target: sys.target('rr'), durationMs, persistentConnections: PERSISTENT, persistentRate: PERSISTENT_RATE, newConnectionRate: NEW_RATE, requestBytes: 1024, responseBytes: 1024 },
        durationMs + 60_000,
      );
    } finally {
      clearInterval(timer);
    }
    // No sample after the load: its connections are closing, which would read as a shrink.
    const rss = soakGrowth(samples, warmupMs, (s) => s.rssKiB);
    const fds = soakGrowth(samples, warmupMs, (s) => s.fds);
    const values: Record<string, number> = { 'soak requests per second': r.achievedRps, 'soak errors': r.errors };
    if (rss !== undefined) values['agent RSS growth after warm-up'] = Math.round(Math.max(...rss));
    if (fds !== undefined) values['agent descriptor growth after warm-up'] = Math.round(Math.max(...fds) * 10) / 10;
    ctx.log(`  ${r.achievedRps} req/s, errors ${r.errors} (${JSON.stringify(r.errorsByCode)}), skipped ${r.connectionsSkipped}; growth after warm-up: RSS ${rss?.map((x) => x.toFixed(0)).join('/')} KiB, fds ${fds?.map((x) => x.toFixed(1)).join('/')}`);
    return { values, details: { warmupMs, windowMs, sampleMs: SAMPLE_MS, pids, samples, rssGrowthKiB: rss, fdGrowth: fds, loadgen: r } };
  },
};
