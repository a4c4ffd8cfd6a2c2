/** bulk: one TCP stream (iperf3) for 10 s (3 s quick): Gbit/s and proxy CPU seconds per GB. */
import { BenchError } from '../errors.js';
import { execInClient } from '../lab-env.js';
import { CpuMeter } from '../proc-stats.js';
import { requireSystem, type Measurement, type Scenario, type ScenarioContext } from './scenario.js';
import type { System } from '../systems/system.js';

interface IperfJson {
  end?: { sum_received?: { bytes: number; bits_per_second: number; seconds: number }; cpu_utilization_percent?: { host_total?: number } };
  error?: string;
}

/** Bytes and bits/s received from iperf3 -J output. Pure. */
export function parseIperf(text: string): { bytes: number; bitsPerSecond: number; senderCpuPercent: number | undefined } {
  const j = JSON.parse(text) as IperfJson;
  if (j.error !== undefined) throw new BenchError(`iperf3: ${j.error}`);
  const r = j.end?.sum_received;
  if (r === undefined) throw new BenchError('iperf3 reported no received sum');
  // iperf3's host_total is the sending client's own CPU (user + system) in % of one core.
  return { bytes: r.bytes, bitsPerSecond: r.bits_per_second, senderCpuPercent: j.end?.cpu_utilization_percent?.host_total };
}

export const bulk: Scenario = {
  name: 'bulk',
  systems: ['direct', 'weft', 'haproxy-mtls'],
  usesSystem: true,
  metrics: [
    { metric: 'throughput', unit: 'Gbit/s', better: 'higher' },
    { metric: 'proxy CPU per GB', unit: 's/GB', better: 'lower' },
    { metric: 'load generator CPU', unit: '% of a core', better: 'lower' },
  ],
  async measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement> {
    const sys = requireSystem(system);
    const seconds = ctx.quick ? 3 : 10;
    const t = sys.target('iperf');
    const cpu = new CpuMeter(sys.proxyPids());
    cpu.start();
    const r = await execInClient(['iperf3', '--client', t.host, '--port', String(t.port), '--time', String(seconds), '--json'], (seconds + 20) * 1000);
    const cpuSeconds = cpu.stop();
    if (r.code !== 0 && r.stdout.trim() === '') throw new BenchError(`iperf3 failed (code ${r.code}): ${r.stderr.trim().slice(-300)}`);
    const { bytes, bitsPerSecond, senderCpuPercent } = parseIperf(r.stdout);
    const values: Record<string, number> = { throughput: Math.round(bitsPerSecond / 1e6) / 1e3 };
    if (sys.proxyPids().length > 0 && bytes > 0) values['proxy CPU per GB'] = Math.round((cpuSeconds / (bytes / 1e9)) * 1000) / 1000;
    if (senderCpuPercent !== undefined) values['load generator CPU'] = Math.round(senderCpuPercent * 10) / 10;
    if (sys.proxyPids().length > 0) ctx.log(`  proxy CPU user ${cpu.split.user} s, system ${cpu.split.system} s for ${Math.round(bytes / 1e6)} MB`);
    return { values, details: { seconds, bytes, bitsPerSecond, cpuSeconds, cpuSplit: cpu.split, senderCpuPercent } };
  },
};
