/**
 * scale: a fresh agent (in the server node's namespace, its own ports and manifest directory,
 * serving a node no pod is on) is given a source of 5,000 pods, 1,000 services and 500
 * AuthorizationPolicies, twice, each time with a fresh agent: as one file per object (6,550
 * files, as the lab writes them) and as one multi-document file per kind (what `kubectl apply -f`
 * users keep).
 *
 * Apply time is "from the moment the complete source is in place to the agent reporting the
 * model with all 5,000 workloads": the agent runs on an empty manifest directory; the source is
 * written into a staging directory beside it (timed apart: "writing the files", not part of the
 * apply time), then swapped in with one rename(2) of the directory; the clock starts just before
 * the rename and stops at the agent's log line "mesh model updated" with all the workloads. That
 * is what a user sees when a source lands at once (a ConfigMap update, a git checkout swapped in)
 * and it includes the agent's own debounce (100 ms). Memory: the agent's RSS before and after.
 * Policy decision: bench/policy-decision.js's figure, when that bench exists.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchError } from '../errors.js';
import { WORK_DIR } from '../lab-env.js';
import { NetnsProcess } from '../netns-process.js';
import { rssKiB } from '../proc-stats.js';
import { ISSUE_SIZE, multiDocumentFiles, scaleManifests } from '../scale-manifests.js';
import type { Measurement, Scenario, ScenarioContext } from './scenario.js';

const run = promisify(execFile);
const WEFT_MAIN = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const POLICY_BENCH = fileURLToPath(new URL('../policy-decision.js', import.meta.url));
const ADMIN_PORT = 15100;
/**
 * The scale agent only builds its model (no pod on its node, no traffic): it needs no CA.
 * `--no-mtls` says so to an agent that otherwise requires one.
 */
const SCALE_AGENT_FLAGS = ['--no-mtls'];

/** The first "mesh model updated" line with at least `workloads` workloads: its time (ms). Pure. */
export function modelUpdatedAt(log: string, workloads: number): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes('mesh model updated')) continue;
    try {
      const j = JSON.parse(line) as { msg?: string; workloads?: number; time?: string | number };
      if (j.msg === 'mesh model updated' && (j.workloads ?? 0) >= workloads && j.time !== undefined) {
        const t = typeof j.time === 'number' ? j.time : Date.parse(j.time);
        if (Number.isFinite(t)) return t;
      }
    } catch {
      // Not a JSON line (the lab writes a header line): skip.
    }
  }
  return undefined;
}

/**
 * `evaluate:  123 ns per decision` from bench/policy-decision.js output (the node agent's L4
 * decision); with `evaluateRequest`, the waypoint's L7 line. Pure.
 */
export function parsePolicyDecisionNs(text: string, label: 'evaluate' | 'evaluateRequest' = 'evaluate'): number | undefined {
  const m = new RegExp(`${label}:\\s+([\\d.]+)\\s*ns per decision`).exec(text);
  return m === null ? undefined : Number(m[1]);
}

interface ApplyFigures {
  files: number;
  writtenMs: number;
  applyMs: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
}

const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;

/** A fresh agent on an empty directory; the source written aside, swapped in, timed to the model. */
async function applyOnce(ctx: ScenarioContext, files: ReadonlyMap<string, string>, label: string): Promise<ApplyFigures> {
  const dir = join(WORK_DIR, 'scale-manifests');
  const staging = join(WORK_DIR, 'scale-manifests.staging');
  const log = join(WORK_DIR, 'scale-agent.log');
  await rm(dir, { recursive: true, force: true });
  await rm(staging, { recursive: true, force: true });
  await rm(log, { force: true });
  await mkdir(dir, { recursive: true });
  const agent = await NetnsProcess.start({
    what: 'scale agent',
    netns: ctx.lab.serverNode.netns,
    argv: [process.execPath, WEFT_MAIN, 'agent', '--node', 'bench-scale', '--manifests', dir, '--admin', `127.0.0.1:${ADMIN_PORT}`, '--metrics', '127.0.0.1:15120', '--readiness', '127.0.0.1:15121', ...SCALE_AGENT_FLAGS],
    cwd: WORK_DIR,
    log,
    ports: [ADMIN_PORT],
    readyTimeoutMs: 20_000,
  });
  try {
    const rssBeforeKiB = rssKiB(agent.pid);
    const workloads = ISSUE_SIZE.namespaces * ISSUE_SIZE.podsPerNamespace;
    // Written aside, 64 at a time (the harness's own cost, reported but not part of apply time).
    const writeStart = Date.now();
    await mkdir(staging, { recursive: true });
    const entries = [...files];
    for (let i = 0; i < entries.length; i += 64) {
      await Promise.all(entries.slice(i, i + 64).map(([name, content]) => writeFile(join(staging, name), content)));
    }
    const writtenMs = Date.now() - writeStart;
    // The whole source appears at once: rename(2) replaces the agent's empty directory.
    const start = Date.now();
    await rename(staging, dir);
    const deadline = start + 120_000;
    let at: number | undefined;
    while (at === undefined) {
      at = modelUpdatedAt(await readFile(log, 'utf8'), workloads);
      if (at !== undefined) break;
      if (Date.now() > deadline) throw new BenchError(`the scale agent did not report a model with ${workloads} workloads within 120 s (${label}); see ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const rssAfterKiB = rssKiB(agent.pid);
    const applyMs = at - start;
    ctx.log(`  ${label}: ${files.size} files written aside in ${writtenMs} ms; swapped in; model with ${workloads} workloads after ${applyMs} ms; RSS ${(rssAfterKiB / 1024).toFixed(1)} MiB`);
    return { files: files.size, writtenMs, applyMs, rssBeforeKiB, rssAfterKiB };
  } finally {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

export const scale: Scenario = {
  name: 'scale',
  systems: ['weft'],
  usesSystem: false,
  metrics: [
    { metric: 'apply time', unit: 'ms', better: 'lower' },
    { metric: 'apply time, multi-document files', unit: 'ms', better: 'lower' },
    { metric: 'writing the files (not in apply time)', unit: 'ms', better: 'lower' },
    { metric: 'agent memory after apply', unit: 'MiB', better: 'lower' },
    { metric: 'agent memory growth', unit: 'MiB', better: 'lower' },
    { metric: 'agent memory after apply, multi-document files', unit: 'MiB', better: 'lower' },
    { metric: 'policy decision', unit: 'ns', better: 'lower' },
    { metric: 'L7 policy decision (waypoint)', unit: 'ns', better: 'lower' },
  ],
  async measure(_system, ctx: ScenarioContext): Promise<Measurement> {
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    const perObject = scaleManifests(ISSUE_SIZE);
    const perFile = await applyOnce(ctx, perObject, 'one file per object');
    values['apply time'] = perFile.applyMs;
    values['writing the files (not in apply time)'] = perFile.writtenMs;
    values['agent memory after apply'] = mib(perFile.rssAfterKiB);
    values['agent memory growth'] = mib(perFile.rssAfterKiB - perFile.rssBeforeKiB);
    details['perObject'] = perFile;
    const multi = await applyOnce(ctx, multiDocumentFiles(perObject), 'multi-document files');
    values['apply time, multi-document files'] = multi.applyMs;
    values['agent memory after apply, multi-document files'] = mib(multi.rssAfterKiB);
    details['multiDocument'] = multi;
    if (existsSync(POLICY_BENCH)) {
      try {
        const { stdout } = await run(process.execPath, [POLICY_BENCH], { timeout: 180_000 });
        const ns = parsePolicyDecisionNs(stdout);
        if (ns !== undefined) values['policy decision'] = ns;
        const l7 = parsePolicyDecisionNs(stdout, 'evaluateRequest');
        if (l7 !== undefined) values['L7 policy decision (waypoint)'] = l7;
        details['policyDecision'] = stdout.trim();
        ctx.log(`  policy decision: ${ns ?? '?'} ns, L7 (waypoint): ${l7 ?? '?'} ns`);
      } catch (err) {
        details['policyDecisionError'] = (err as Error).message;
      }
    } else {
      details['policyDecision'] = 'bench/policy-decision.ts is not there: not measured';
    }
    return { values, details };
  },
};
