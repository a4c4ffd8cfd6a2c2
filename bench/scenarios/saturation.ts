/** saturation: the highest request rate sustained with 16 and 64 connections (closed loop, one request in flight each). */
import type { ClosedResult } from '../loadgen.js';
import { GENERATOR_BUSY_PERCENT, generatorPercent, requireSystem, runLoadInClient, type Measurement, type Scenario, type ScenarioContext } from './scenario.js';
import type { System } from '../systems/system.js';

const CONNECTIONS = [16, 64] as const;

export const saturation: Scenario = {
  name: 'saturation',
  systems: ['direct', 'weft', 'haproxy-mtls'],
  usesSystem: true,
  metrics: CONNECTIONS.flatMap((c) => [
    { metric: `max rps, ${c} connections`, unit: 'req/s', better: 'higher' as const },
    { metric: `load generator CPU, ${c} connections`, unit: '% of a core', better: 'lower' as const },
  ]),
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const durationMs = ctx.quick ? 2_000 : 10_000;
    const warmupMs = ctx.quick ? 500 : 2_000;
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    for (const connections of CONNECTIONS) {
      const r = await runLoadInClient<ClosedResult>(
        { mode: 'closed', target: sys.target('rr'), connections, durationMs, warmupMs, requestBytes: 1024, responseBytes: 1024 },
        durationMs + warmupMs + 30_000,
      );
      values[`max rps, ${connections} connections`] = r.rps;
      details[String(connections)] = r;
      const gen = generatorPercent(r);
      if (gen !== undefined) values[`load generator CPU, ${connections} connections`] = gen;
      ctx.log(`  ${connections} connections: ${r.rps} req/s (p99 ${r.latency.p99} ms, errors ${r.errors}; load generator ${gen ?? '?'} % of a core${(gen ?? 0) > GENERATOR_BUSY_PERCENT ? ', busy' : ''})`);
    }
    return { values, details };
  },
};
