/**
 * l7 (issue 11 point 7, issue 12 point 4): 1 KiB HTTP/1.1 keep-alive requests and gRPC-like
 * HTTP/2 calls (h2c, application/grpc, one 1 KiB length-prefixed message each way, trailers),
 * open loop at 1000 and 5000 requests/s over 16 connections, through
 *   direct        client pod -> server pod;
 *   weft          client pod -> agent -> waypoint pod (`weft waypoint`) -> agent -> server pod;
 *   haproxy-mtls  client pod -> HAProxy (HTTP mode) -> mutual TLS -> HAProxy (HTTP mode) -> pod.
 * Per system: achieved rate, p50/p99 and added over direct, proxy CPU per 1000 requests (all
 * proxies; weft's waypoint also on its own), the waypoint's RSS. Weft runs its route in three
 * variants, interleaved per protocol and rate (plain VirtualService, with retries, with a
 * DestinationRule's outlier detection): the cost of each policy when nothing fails.
 */
import { CpuMeter, rssKiB } from '../proc-stats.js';
import { addedOver, type LatencySummary } from '../histogram.js';
import type { HttpResult } from '../loadgen.js';
import { BenchError } from '../errors.js';
import { DirectSystem } from '../systems/direct.js';
import { HaproxySystem } from '../systems/haproxy.js';
import { WaypointSystem, type RouteVariant } from '../systems/waypoint.js';
import type { System, SystemName } from '../systems/system.js';
import { GENERATOR_BUSY_PERCENT, generatorPercent, requireSystem, runLoadInClient, type Measurement, type MetricDef, type Scenario, type ScenarioContext } from './scenario.js';

export const L7_RATES = [1000, 5000] as const;
export const L7_PROTOCOLS = [
  { key: 'h1', label: 'HTTP/1.1', service: 'http' },
  { key: 'h2', label: 'gRPC h2c', service: 'h2' },
] as const;
const CONNECTIONS = 16;
const VARIANT_LABEL: Record<RouteVariant, string> = { plain: '', retry: ', retry policy', outlier: ', outlier detection' };

type Proto = (typeof L7_PROTOCOLS)[number];
const at = (p: Proto, rate: number, variant: RouteVariant = 'plain'): string => `${p.label} @ ${rate} rps${VARIANT_LABEL[variant]}`;

export const l7Metric = {
  rate: (p: Proto, r: number, v?: RouteVariant) => `achieved rate, ${at(p, r, v)}`,
  p50: (p: Proto, r: number, v?: RouteVariant) => `p50, ${at(p, r, v)}`,
  p99: (p: Proto, r: number, v?: RouteVariant) => `p99, ${at(p, r, v)}`,
  addedP50: (p: Proto, r: number) => `added p50, ${at(p, r)}`,
  addedP99: (p: Proto, r: number) => `added p99, ${at(p, r)}`,
  proxyCpu: (p: Proto, r: number, v?: RouteVariant) => `proxy CPU per 1000 req, ${at(p, r, v)}`,
  waypointCpu: (p: Proto, r: number, v?: RouteVariant) => `waypoint CPU per 1000 req, ${at(p, r, v)}`,
  cost: (p: Proto, r: number, v: RouteVariant) => `waypoint CPU cost${VARIANT_LABEL[v]} vs plain route, ${p.label} @ ${r} rps`,
  generator: (p: Proto, r: number) => `load generator CPU, ${at(p, r)}`,
  waypointRss: 'waypoint RSS (max after a run)',
  waypointRssFirst: 'waypoint RSS after the first run (HTTP/1.1 @ 1000 rps, plain route)',
};

const metrics: MetricDef[] = [];
for (const p of L7_PROTOCOLS) {
  for (const r of L7_RATES) {
    metrics.push(
      { metric: l7Metric.rate(p, r), unit: 'req/s', better: 'higher' },
      { metric: l7Metric.p50(p, r), unit: 'ms', better: 'lower' },
      { metric: l7Metric.p99(p, r), unit: 'ms', better: 'lower' },
      { metric: l7Metric.addedP50(p, r), unit: 'ms', better: 'lower' },
      { metric: l7Metric.addedP99(p, r), unit: 'ms', better: 'lower' },
      { metric: l7Metric.proxyCpu(p, r), unit: 'CPU ms', better: 'lower' },
      { metric: l7Metric.waypointCpu(p, r), unit: 'CPU ms', better: 'lower' },
    );
    for (const v of ['retry', 'outlier'] as const) {
      metrics.push(
        { metric: l7Metric.waypointCpu(p, r, v), unit: 'CPU ms', better: 'lower' },
        { metric: l7Metric.cost(p, r, v), unit: '%', better: 'lower' },
        { metric: l7Metric.p50(p, r, v), unit: 'ms', better: 'lower' },
        { metric: l7Metric.p99(p, r, v), unit: 'ms', better: 'lower' },
      );
    }
    metrics.push({ metric: l7Metric.generator(p, r), unit: '% of a core', better: 'lower' });
  }
}
metrics.push({ metric: l7Metric.waypointRssFirst, unit: 'MB', better: 'lower' }, { metric: l7Metric.waypointRss, unit: 'MB', better: 'lower' });

interface RunFigures {
  result: HttpResult;
  proxyCpuMs: number | undefined;
  waypointCpuMs: number | undefined;
}

async function measureOne(sys: System, p: Proto, rate: number, ctx: ScenarioContext, waypoint: number | undefined): Promise<RunFigures> {
  const durationMs = ctx.quick ? 2_000 : 10_000;
  const warmupMs = ctx.quick ? 500 : 2_000;
  const all = new CpuMeter(sys.proxyPids());
  const wp = waypoint === undefined ? undefined : new CpuMeter([waypoint]);
  all.start();
  wp?.start();
  const result = await runLoadInClient<HttpResult>(
    { mode: 'http', target: sys.target(p.service), protocol: p.key, rate, connections: CONNECTIONS, durationMs, warmupMs, maxRequests: Math.ceil((rate * (durationMs + warmupMs)) / 1000) },
    durationMs + warmupMs + 30_000,
  );
  const allSeconds = all.stop();
  const wpSeconds = wp?.stop();
  const per1000 = (seconds: number): number => Math.round((seconds * 1e7) / result.answered) / 10;
  const ok = result.answered > 0;
  if (result.failed + result.errors > 0) ctx.log(`  ${at(p, rate)}: ${result.failed} answers not 200 / grpc-status 0 ${JSON.stringify(result.failedByStatus)}, ${result.errors} errors ${JSON.stringify(result.errorsByCode)}`);
  return {
    result,
    proxyCpuMs: sys.proxyPids().length > 0 && ok ? per1000(allSeconds) : undefined,
    waypointCpuMs: wpSeconds !== undefined && ok ? per1000(wpSeconds) : undefined,
  };
}

function logRun(ctx: ScenarioContext, label: string, f: RunFigures): void {
  const r = f.result;
  const gen = generatorPercent(r);
  ctx.log(
    `  ${label}: ${r.achievedRps} req/s, p50 ${r.latency.p50} p99 ${r.latency.p99} ms, proxy CPU ${f.proxyCpuMs ?? '–'} ms / 1000 req` +
      `${f.waypointCpuMs !== undefined ? ` (waypoint ${f.waypointCpuMs})` : ''}; unanswered ${r.unanswered}, not sent (4096 in flight) ${r.skipped}; load generator ${gen ?? '?'} % of a core${(gen ?? 0) > GENERATOR_BUSY_PERCENT ? ' (busy)' : ''}`,
  );
}

export const l7: Scenario = {
  name: 'l7',
  systems: ['direct', 'weft', 'haproxy-mtls'],
  usesSystem: true,
  // Only when named (`--scenario l7`, about 5 min; 1.5 with --quick): it would double a default run.
  onlyWhenNamed: true,
  metrics,
  newSystem(name: SystemName): System | undefined {
    if (name === 'weft') return new WaypointSystem();
    if (name === 'haproxy-mtls') return new HaproxySystem('http');
    if (name === 'direct') return new DirectSystem();
    return undefined;
  },
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    const wp = sys instanceof WaypointSystem ? sys : undefined;
    if (wp !== undefined) ctx.log(`  the waypoint runs on ${wp.waypointNode ?? '?'}`);
    let rssMax = 0;
    let rssFirst: number | undefined;
    const mb = (kib: number): number => Math.round((kib * 1024) / 1e5) / 10;
    const variants: readonly RouteVariant[] = wp === undefined ? ['plain'] : ['plain', 'retry', 'outlier'];
    for (const p of L7_PROTOCOLS) {
      for (const rate of L7_RATES) {
        for (const v of variants) {
          if (wp !== undefined) await wp.setVariant(v);
          const streamsBefore = (await wp?.waypointStreams()) ?? 0;
          const f = await measureOne(sys, p, rate, ctx, wp?.waypointPid());
          if (wp !== undefined) {
            const rss = rssKiB(wp.waypointPid());
            rssFirst ??= rss;
            rssMax = Math.max(rssMax, rss);
            ctx.log(`  waypoint RSS ${mb(rss)} MB`);
            // The load must have gone through the waypoint (16 HBONE streams, one per connection).
            if ((await wp.waypointStreams()) <= streamsBefore) throw new BenchError(`the l7 load (${at(p, rate, v)}) did not pass the waypoint (no new HBONE stream on it)`);
          }
          logRun(ctx, at(p, rate, v), f);
          details[at(p, rate, v)] = { ...f.result, proxyCpuMs: f.proxyCpuMs, waypointCpuMs: f.waypointCpuMs };
          const r = f.result;
          if (v === 'plain') {
            values[l7Metric.rate(p, rate)] = r.achievedRps;
            values[l7Metric.p50(p, rate)] = r.latency.p50;
            values[l7Metric.p99(p, rate)] = r.latency.p99;
            if (f.proxyCpuMs !== undefined) values[l7Metric.proxyCpu(p, rate)] = f.proxyCpuMs;
            const gen = generatorPercent(r);
            if (gen !== undefined) values[l7Metric.generator(p, rate)] = gen;
          } else {
            values[l7Metric.p50(p, rate, v)] = r.latency.p50;
            values[l7Metric.p99(p, rate, v)] = r.latency.p99;
          }
          if (f.waypointCpuMs !== undefined) values[l7Metric.waypointCpu(p, rate, v)] = f.waypointCpuMs;
        }
        const plain = values[l7Metric.waypointCpu(p, rate)];
        for (const v of ['retry', 'outlier'] as const) {
          const with_ = values[l7Metric.waypointCpu(p, rate, v)];
          if (plain !== undefined && with_ !== undefined && plain > 0) values[l7Metric.cost(p, rate, v)] = Math.round(((with_ - plain) / plain) * 1000) / 10;
        }
      }
    }
    if (wp !== undefined) values[l7Metric.waypointRss] = mb(rssMax);
    if (rssFirst !== undefined) values[l7Metric.waypointRssFirst] = mb(rssFirst);
    return { values, details };
  },
  derive(values) {
    const base = values.direct;
    if (base === undefined) return;
    for (const name of ['weft', 'haproxy-mtls'] as const) {
      const v = values[name];
      if (v === undefined) continue;
      for (const p of L7_PROTOCOLS) {
        for (const rate of L7_RATES) {
          const summary = (x: Record<string, number>): LatencySummary | undefined => {
            const p50 = x[l7Metric.p50(p, rate)];
            const p99 = x[l7Metric.p99(p, rate)];
            return p50 === undefined || p99 === undefined ? undefined : { count: 0, max: 0, mean: 0, p50, p90: 0, p99, p999: 0 };
          };
          const b = summary(base);
          const s = summary(v);
          if (b === undefined || s === undefined) continue;
          const added = addedOver(b, s);
          v[l7Metric.addedP50(p, rate)] = added.p50;
          v[l7Metric.addedP99(p, rate)] = added.p99;
        }
      }
    }
  },
};
