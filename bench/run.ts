/**
 * `npm run bench [-- --scenario NAME] [--system NAME] [--json FILE] [--quick] [--profile DIR]`: builds the bench lab once, runs
 * every scenario against every system (each system started fresh per scenario and stopped after),
 * writes bench/results/<timestamp>.{json,md}, latency.svg and, for a run of every scenario and
 * system, latest.md. The lab and every
 * process the run started are removed at the end, also on failure and on SIGINT/SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchLabDown, benchLabStatus, benchLabUp, WORK_DIR, type BenchLab } from './lab-env.js';
import { BenchError } from './errors.js';
import { judgeTargets, type Figure, type Machine, type RunResult } from './results.js';
import { markdownReport } from './report/markdown.js';
import { latencySvg, type LatencyPanel } from './report/svg.js';
import type { Scenario, ScenarioContext } from './scenarios/scenario.js';
import { bulk } from './scenarios/bulk.js';
import { latency, latencySummaries, RATES } from './scenarios/latency.js';
import { saturation } from './scenarios/saturation.js';
import { connect } from './scenarios/connect.js';
import { idle } from './scenarios/idle.js';
import { scale } from './scenarios/scale.js';
import { soak } from './scenarios/soak.js';
import { scaleK8s } from './scenarios/scale-k8s.js';
import { l7 } from './scenarios/l7.js';
import { ingress } from './scenarios/ingress.js';
import { nginxVersion } from './systems/reverse-proxy.js';
import { DirectSystem } from './systems/direct.js';
import { WeftSystem } from './systems/weft.js';
import { HaproxySystem, haproxyVersion } from './systems/haproxy.js';
import { SYSTEM_NAMES, type System, type SystemName } from './systems/system.js';
import { startProfiles, type ProfileTarget, type RunningProfiles } from './profile.js';

export const SCENARIOS: readonly Scenario[] = [bulk, latency, saturation, connect, idle, scale, scaleK8s, soak, l7, ingress];
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

function newSystem(name: SystemName): System {
  switch (name) {
    case 'direct':
      return new DirectSystem();
    case 'weft':
      return new WeftSystem();
    case 'haproxy-mtls':
      return new HaproxySystem();
    case 'reverse-proxy':
      throw new BenchError('the reverse proxy is a system of the ingress scenario only');
  }
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

function machine(): Machine {
  const iperf = (() => {
    try {
      return /iperf\s+(\S+)/.exec(execFileSync('iperf3', ['--version'], { encoding: 'utf8' }))?.[1];
    } catch {
      return undefined;
    }
  })();
  return { cpuModel: cpus()[0]?.model ?? 'unknown', cores: cpus().length, kernel: release(), node: process.version, haproxy: haproxyVersion(), iperf3: iperf, nginx: nginxVersion() };
}

/** File-name-safe UTC timestamp: 2026-11-25T02-30-05Z. */
export function stamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z';
}

/** Scenarios named on the command line (comma-separated or repeated), in the harness's order. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  if (names.length === 0) return SCENARIOS.filter((s) => s.onlyWhenNamed !== true);
  const wanted = new Set(names.flatMap((n) => n.split(',')).map((n) => n.trim()).filter((n) => n !== ''));
  for (const n of wanted) {
    if (!SCENARIOS.some((s) => s.name === n)) throw new BenchError(`unknown scenario ${n}; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return SCENARIOS.filter((s) => wanted.has(s.name));
}

/** `600`, `600s`, `10m`: seconds. */
export function parseSeconds(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(s|m)?$/.exec(text.trim());
  if (m === null) throw new BenchError(`--soak-duration takes seconds (600, 600s) or minutes (10m), got ${text}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

let current: System | undefined;
let cleaning: Promise<void> | undefined;
let labBuilt = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const sys = current;
    current = undefined;
    if (sys !== undefined) await sys.stop().catch((err: unknown) => log(`stopping ${sys.name} failed: ${(err as Error).message}`));
    // A run that built no lab (scale-k8s alone) leaves the bench lab and its directory alone:
    // they may be another run's.
    if (!labBuilt) return;
    await benchLabDown().catch((err: unknown) => log(`removing the bench lab failed: ${(err as Error).message}; run: weft lab down --name bench`));
    await rm(WORK_DIR, { recursive: true, force: true });
  })();
  return cleaning;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'string' },
      system: { type: 'string', multiple: true, default: [] },
      'soak-duration': { type: 'string' },
    },
  });
  if (process.getuid?.() !== 0) throw new BenchError('the benchmark builds network namespaces and must run as root');
  const scenarios = selectScenarios(values.scenario ?? []);
  const quick = values.quick === true;
  const profileDir = values.profile;
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
  const onlySystems = new Set((values.system ?? []).flatMap((n) => n.split(',')));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const startedAt = new Date();
  /** Hard rules a scenario found broken (idle: resets): the run exits 1 after writing its files. */
  const broken: string[] = [];
  const result: RunResult = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    quick,
    scenarios: scenarios.map((s) => s.name),
    machine: machine(),
    figures: [],
    targets: [],
    details: {},
    failures: {},
  };
  try {
    const needsLab = scenarios.some((s) => s.needsLab !== false);
    let lab: BenchLab | undefined;
    if (needsLab) {
      // A crashed earlier run may have left its lab behind.
      labBuilt = true;
      await benchLabDown();
      log('building the bench lab (2 nodes, client and server pods)');
      lab = await benchLabUp();
    }
    const ctx: ScenarioContext = {
      get lab(): BenchLab {
        if (lab === undefined) throw new BenchError('this scenario needs the bench lab');
        return lab;
      },
      quick,
      log,
    };
    if (values['soak-duration'] !== undefined) ctx.soakDurationMs = parseSeconds(values['soak-duration']) * 1000;
    for (const scenario of scenarios) {
      const perSystem: Partial<Record<SystemName, Record<string, number>>> = {};
      result.details[scenario.name] = {};
      for (const name of scenario.systems) {
        if (onlySystems.size > 0 && !onlySystems.has(name)) continue;
        log(`${scenario.name} / ${name}`);
        // Another `weft lab down --all` (a test run on the same machine) removes this lab too:
        // stop at once rather than report every later figure as failed.
        if (scenario.needsLab !== false) await benchLabStatus().catch((err: unknown) => {
          throw new BenchError(`the bench lab is gone or broken (removed by another weft lab command?): ${(err as Error).message}`, { cause: err });
        });
        const sys = scenario.usesSystem ? (scenario.newSystem?.(name) ?? newSystem(name)) : undefined;
        try {
          if (sys !== undefined) {
            current = sys;
            await sys.start(ctx.lab);
          }
          let profiles: RunningProfiles | undefined;
          if (profileDir !== undefined && name === 'weft') {
            const extra = (sys as (System & { profileTargets?(): ProfileTarget[] }) | undefined)?.profileTargets?.() ?? [];
            profiles = await startProfiles(await benchLabStatus(), profileDir, scenario.name, extra);
          }
          const m = await scenario.measure(sys, ctx).finally(() => profiles?.stop().then((files) => log(`profiles: ${files.join(', ')}`)));
          perSystem[name] = m.values;
          result.details[scenario.name]![name] = m.details;
          if (m.failed !== undefined) {
            result.failures[`${scenario.name}/${name}`] = m.failed;
            broken.push(m.failed);
            log(`FAILED: ${m.failed}`);
          }
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          result.failures[`${scenario.name}/${name}`] = why;
          log(`${scenario.name} / ${name} failed: ${why}`);
        } finally {
          if (sys !== undefined) {
            current = undefined;
            await sys.stop().catch((err: unknown) => {
              result.failures[`${scenario.name}/${name} (stop)`] = (err as Error).message;
            });
          }
        }
      }
      scenario.derive?.(perSystem);
      for (const def of scenario.metrics) {
        const f: Figure = { scenario: scenario.name, metric: def.metric, unit: def.unit, better: def.better, values: {} };
        for (const s of SYSTEM_NAMES) {
          const v = perSystem[s]?.[def.metric];
          if (v !== undefined) f.values[s] = v;
        }
        if (Object.keys(f.values).length > 0) result.figures.push(f);
      }
    }
  } finally {
    await cleanup();
  }
  result.finishedAt = new Date().toISOString();
  result.targets = judgeTargets(result.figures);
  await mkdir(RESULTS_DIR, { recursive: true });
  const base = join(RESULTS_DIR, stamp(startedAt));
  const json = JSON.stringify(result, null, 2) + '\n';
  const md = markdownReport(result);
  await writeFile(`${base}.json`, json);
  await writeFile(`${base}.md`, md);
  // latest.md is the README's table: only a run of every scenario and system replaces it.
  const full = (values.scenario ?? []).length === 0 && onlySystems.size === 0;
  if (full) await writeFile(join(RESULTS_DIR, 'latest.md'), md);
  if (values.json !== undefined) await writeFile(values.json, json);
  if (latencySummaries.size > 0) {
    const panels: LatencyPanel[] = RATES.filter((r) => latencySummaries.has(r)).map((rate) => ({ rate, bySystem: latencySummaries.get(rate)! }));
    await writeFile(join(RESULTS_DIR, 'latency.svg'), latencySvg(panels, SYSTEM_NAMES, `1 KiB request/response latency, 16 connections, open loop${quick ? ' (--quick)' : ''}`));
  }
  process.stdout.write(md);
  log(`wrote ${base}.json, ${base}.md${full ? ', latest.md' : ' (latest.md only from full runs)'}${latencySummaries.size > 0 ? ', latency.svg' : ''} in ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s`);
  if (broken.length > 0) {
    log(`FAILED: ${broken.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
