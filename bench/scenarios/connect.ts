/** connect: new TCP connections per second, each carrying one small request (64 B / 64 B). */
import { CpuMeter } from '../proc-stats.js';
import type { ConnectResult } from '../loadgen.js';
import { GENERATOR_BUSY_PERCENT, generatorPercent, requireSystem, runLoadInClient, type Measurement, type Scenario, type ScenarioContext } from './scenario.js';
import type { System } from '../systems/system.js';

const CONCURRENCY = 16;

export const connect: Scenario = {
  name: 'connect',
  systems: ['direct', 'weft', 'haproxy-mtls'],
  usesSystem: true,
  metrics: [
    { metric: 'connections per second', unit: 'conn/s', better: 'higher' },
    { metric: 'proxy CPU per 1000 connections', unit: 'CPU ms', better: 'lower' },
    { metric: 'load generator CPU', unit: '% of a core', better: 'lower' },
  ],
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const durationMs = ctx.quick ? 3_000 : 10_000;
    const cpu = new CpuMeter(sys.proxyPids());
    cpu.start();
    const r = await runLoadInClient<ConnectResult>(
      { mode: 'connect', target: sys.target('rr'), concurrency: CONCURRENCY, durationMs, maxConnections: 200_000, requestBytes: 64, responseBytes: 64 },
      durationMs + 30_000,
    );
    const cpuSeconds = cpu.stop();
    const values: Record<string, number> = { 'connections per second': r.connectionsPerSecond };
    if (sys.proxyPids().length > 0 && r.completed > 0) values['proxy CPU per 1000 connections'] = Math.round((cpuSeconds * 1e7) / r.completed) / 10;
    const gen = generatorPercent(r);
    if (gen !== undefined) values['load generator CPU'] = gen;
    ctx.log(`  ${r.connectionsPerSecond} conn/s (errors ${r.errors}; load generator ${gen ?? '?'} % of a core${(gen ?? 0) > GENERATOR_BUSY_PERCENT ? ', busy' : ''})`);
    return { values, details: { ...r, cpuSeconds } };
  },
};
