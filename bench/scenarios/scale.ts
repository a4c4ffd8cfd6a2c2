/**
 * scale: a fresh agent (in the server node's namespace, its own ports and manifest directory,
 * serving a node no pod is on) is given a source of 5,000 pods, 1,000 services and 500
 * AuthorizationPolicies. Time: from the first file written to the agent's log line
 * "mesh model updated" with all 5,000 workloads. Memory: its RSS before and after. Policy
 * decision: bench/policy-decision.js's figure, when that bench exists.
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
import { ISSUE_SIZE, scaleManifests } from '../scale-manifests.js';
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

/** `evaluate:  123 ns per decision` from bench/policy-decision.js output. Pure. */
export function parsePolicyDecisionNs(text: string): number | undefined {
  const m = /evaluate:\s+([\d.]+)\s*ns per decision/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

export const scale: Scenario = {
  name: 'scale',
  systems: ['weft'],
  usesSystem: false,
  metrics: [
    { metric: 'apply time', unit: 'ms', better: 'lower' },
    { metric: 'of which writing the files', unit: 'ms', better: 'lower' },
    { metric: 'agent memory after apply', unit: 'MiB', better: 'lower' },
    { metric: 'agent memory growth', unit: 'MiB', better: 'lower' },
    { metric: 'policy decision', unit: 'ns', better: 'lower' },
  ],
  async measure(_system, ctx: ScenarioContext): Promise<Measurement> {
    const dir = join(WORK_DIR, 'scale-manifests');
    const log = join(WORK_DIR, 'scale-agent.log');
    await rm(dir, { recursive: true, force: true });
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
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    try {
      const rssBefore = rssKiB(agent.pid);
      const files = scaleManifests(ISSUE_SIZE);
      const workloads = ISSUE_SIZE.namespaces * ISSUE_SIZE.podsPerNamespace;
      const start = Date.now();
      // temp + rename per file, as the lab writes its manifests: the watcher never sees half a file.
      for (const [name, content] of files) {
        const tmp = join(dir, `.${name}.tmp`);
        await writeFile(tmp, content);
        await rename(tmp, join(dir, name));
      }
      const writtenMs = Date.now() - start;
      const deadline = Date.now() + 120_000;
      let at: number | undefined;
      while (at === undefined) {
        at = modelUpdatedAt(await readFile(log, 'utf8'), workloads);
        if (at !== undefined) break;
        if (Date.now() > deadline) throw new BenchError(`the scale agent did not report a model with ${workloads} workloads within 120 s; see ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const rssAfter = rssKiB(agent.pid);
      values['apply time'] = at - start;
      values['of which writing the files'] = writtenMs;
      values['agent memory after apply'] = Math.round((rssAfter / 1024) * 10) / 10;
      values['agent memory growth'] = Math.round(((rssAfter - rssBefore) / 1024) * 10) / 10;
      Object.assign(details, { files: files.size, writtenMs, applyMs: at - start, rssBeforeKiB: rssBefore, rssAfterKiB: rssAfter });
      ctx.log(`  ${files.size} files written in ${writtenMs} ms; model with ${workloads} workloads after ${at - start} ms; RSS ${(rssAfter / 1024).toFixed(1)} MiB`);
    } finally {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    }
    if (existsSync(POLICY_BENCH)) {
      try {
        const { stdout } = await run(process.execPath, [POLICY_BENCH], { timeout: 180_000 });
        const ns = parsePolicyDecisionNs(stdout);
        if (ns !== undefined) values['policy decision'] = ns;
        details['policyDecision'] = stdout.trim();
        ctx.log(`  policy decision: ${ns ?? '?'} ns`);
      } catch (err) {
        details['policyDecisionError'] = (err as Error).message;
      }
    } else {
      details['policyDecision'] = 'bench/policy-decision.ts is not there: not measured';
    }
    return { values, details };
  },
};
