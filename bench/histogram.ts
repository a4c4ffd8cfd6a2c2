/**
 * Latency histograms (HdrHistogram, microsecond values) and the numbers the report derives from
 * them. The math on summaries is pure so it is tested without a network.
 */
import * as hdr from 'hdr-histogram-js';

/** 1 µs .. 60 s at 3 significant digits: 0.1% error, a few tens of KiB. */
export function newLatencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export const PERCENTILES = [
  ['p50', 50],
  ['p90', 90],
  ['p99', 99],
  ['p999', 99.9],
] as const;

export type PercentileKey = (typeof PERCENTILES)[number][0];

export function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/** Latency a system adds over the direct path, per percentile (ms; may be negative by noise). */
export function addedOver(base: LatencySummary, system: LatencySummary): Record<PercentileKey, number> {
  const out = {} as Record<PercentileKey, number>;
  for (const [key] of PERCENTILES) out[key] = round3(system[key] - base[key]);
  return out;
}

/** a / b, or undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return round3(a / b);
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
