/**
 * latency: 1 KiB request / 1 KiB response, open loop at 1000 and 5000 requests/s over 16
 * connections; percentiles from each request's intended send time; added over direct; proxy
 * CPU per 1000 requests.
 */
import { addedOver, PERCENTILES, type LatencySummary } from '../histogram.js';
import { CpuMeter } from '../proc-stats.js';
import type { LatencyResult } from '../loadgen.js';
import { GENERATOR_BUSY_PERCENT, generatorPercent, requireSystem, runLoadInClient, type Measurement, type MetricDef, type Scenario, type ScenarioContext } from './scenario.js';
import type { System, SystemName } from '../systems/system.js';

export const RATES = [1000, 5000] as const;
const CONNECTIONS = 16;
const LABEL: Record<string, string> = { p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p99.9' };

const metrics: MetricDef[] = [];
for (const rate of RATES) {
  for (const [key] of PERCENTILES) metrics.push({ metric: `${LABEL[key]} @ ${rate} rps`, unit: 'ms', better: 'lower' });
  for (const [key] of PERCENTILES) metrics.push({ metric: `added ${LABEL[key]} @ ${rate} rps`, unit: 'ms', better: 'lower' });
  metrics.push({ metric: `proxy CPU per 1000 req @ ${rate} rps`, unit: 'CPU ms', better: 'lower' });
  metrics.push({ metric: `load generator CPU @ ${rate} rps`, unit: '% of a core', better: 'lower' });
}

/** The summaries of the last run, for the chart (rate -> system -> summary). */
export const latencySummaries = new Map<number, Partial<Record<SystemName, LatencySummary>>>();

export const latency: Scenario = {
  name: 'latency',
  systems: ['direct', 'weft', 'haproxy-mtls'],
  usesSystem: true,
  metrics,
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const durationMs = ctx.quick ? 2_000 : 10_000;
    const warmupMs = ctx.quick ? 500 : 2_000;
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    for (const rate of RATES) {
      const cpu = new CpuMeter(sys.proxyPids());
      cpu.start();
      const r = await runLoadInClient<LatencyResult>(
        { mode: 'latency', target: sys.target('rr'), rate, connections: CONNECTIONS, durationMs, warmupMs, requestBytes: 1024, responseBytes: 1024 },
        durationMs + warmupMs + 30_000,
      );
      const cpuSeconds = cpu.stop();
      for (const [key] of PERCENTILES) values[`${LABEL[key]} @ ${rate} rps`] = r.latency[key];
      if (sys.proxyPids().length > 0 && r.answered > 0) values[`proxy CPU per 1000 req @ ${rate} rps`] = Math.round((cpuSeconds * 1e7) / r.answered) / 10;
      const gen = generatorPercent(r);
      if (gen !== undefined) values[`load generator CPU @ ${rate} rps`] = gen;
      const bySystem = latencySummaries.get(rate) ?? {};
      bySystem[sys.name] = r.latency;
      latencySummaries.set(rate, bySystem);
      details[String(rate)] = { ...r, cpuSeconds, cpuSplit: cpu.split };
      ctx.log(`  ${rate} rps: proxy CPU user ${cpu.split.user} s, system ${cpu.split.system} s; p50 ${r.latency.p50} p90 ${r.latency.p90} p99 ${r.latency.p99} p99.9 ${r.latency.p999} ms; unanswered ${r.unanswered}; load generator ${gen ?? '?'} % of a core${(gen ?? 0) > GENERATOR_BUSY_PERCENT ? ' (busy: the figure may be the generator\'s)' : ''}`);
    }
    return { values, details };
  },
  derive(values) {
    const base = values.direct;
    if (base === undefined) return;
    for (const name of ['weft', 'haproxy-mtls'] as const) {
      const v = values[name];
      if (v === undefined) continue;
      for (const rate of RATES) {
        const summary = (x: Record<string, number>): LatencySummary | undefined => {
          const p50 = x[`p50 @ ${rate} rps`];
          if (p50 === undefined) return undefined;
          return { count: 0, max: 0, mean: 0, p50, p90: x[`p90 @ ${rate} rps`]!, p99: x[`p99 @ ${rate} rps`]!, p999: x[`p99.9 @ ${rate} rps`]! };
        };
        const b = summary(base);
        const s = summary(v);
        if (b === undefined || s === undefined) continue;
        const added = addedOver(b, s);
        for (const [key] of PERCENTILES) v[`added ${LABEL[key]} @ ${rate} rps`] = added[key];
      }
    }
  },
};
