/** What every scenario provides, and the helpers they share (load runs in the client pod). */
import { execInClient, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import type { GeneratorCpu, LoadResult, LoadSpec } from '../loadgen.js';
import type { System, SystemName } from '../systems/system.js';

export interface ScenarioContext {
  lab: BenchLab;
  quick: boolean;
  log(message: string): void;
  /** `--soak-duration`: the soak scenario's measured window in ms (after its warm-up). */
  soakDurationMs?: number;
}

export interface MetricDef {
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
}

export interface Measurement {
  /** metric -> value (only metrics this system has). */
  values: Record<string, number>;
  details: unknown;
  /**
   * Set when the run broke a hard rule of the scenario (idle: a connection reset): the figures
   * are kept, the failure is recorded and logged, and the harness exits non-zero.
   */
  failed?: string;
}

export interface Scenario {
  readonly name: string;
  readonly systems: readonly SystemName[];
  /** false: the scenario runs its own processes; `measure` gets no started system. */
  readonly usesSystem: boolean;
  /** Left out of a run that names no scenario (a long one: soak). */
  readonly onlyWhenNamed?: boolean;
  /** false: the scenario builds what it measures itself; a run of only such scenarios builds no bench lab. */
  readonly needsLab?: boolean;
  readonly metrics: readonly MetricDef[];
  /** The scenario's own system for `name` (l7: weft with a waypoint); undefined: the harness's. */
  newSystem?(name: SystemName): System | undefined;
  measure(system: System | undefined, ctx: ScenarioContext): Promise<Measurement>;
  /** Metrics computed across systems (latency added over direct), merged into the values. */
  derive?(values: Partial<Record<SystemName, Record<string, number>>>): void;
}

const LOADGEN = '../../dist/bench/loadgen.js';

/** Runs the load generator in the client pod; its JSON line is the result. */
export async function runLoadInClient<R extends LoadResult>(spec: LoadSpec, timeoutMs: number, pod = 'client'): Promise<R> {
  const r = await execInClient(['node', LOADGEN, JSON.stringify(spec)], timeoutMs, pod);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: (R & { error?: undefined }) | { error: string };
  try {
    parsed = JSON.parse(line) as R | { error: string };
  } catch (err) {
    throw new BenchError(`load generator (${spec.mode}) exited with code ${r.code} without a result: ${r.stderr.trim().slice(-500)}`, { cause: err });
  }
  if ('error' in parsed && parsed.error !== undefined) throw new BenchError(`load generator (${spec.mode}): ${parsed.error}`);
  return parsed as R;
}

/** The load generator's CPU in % of one core (the harness's own load, issue 15), when it reported it. */
export function generatorPercent(result: LoadResult): number | undefined {
  return (result as LoadResult & { generatorCpu?: GeneratorCpu }).generatorCpu?.percentOfCore;
}

/** Logged beside a figure: above this the generator, not the path, may be what limits the run. */
export const GENERATOR_BUSY_PERCENT = 85;

export function requireSystem(system: System | undefined): System {
  if (system === undefined) throw new BenchError('this scenario needs a started system');
  return system;
}
