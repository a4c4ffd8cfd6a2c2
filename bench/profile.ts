/**
 * `--profile DIR`: CPU profiles of both agents while a scenario measures weft. Each agent's
 * inspector is opened with SIGUSR1 (it listens on 127.0.0.1:9229 inside the agent's node
 * namespace); bench/cdp-profile runs in that namespace, starts the profiler and writes
 * DIR/<scenario>-<node>.cpuprofile when stopped. Profiling costs the agents a few percent, so
 * profiled runs are for finding where time goes, not for the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchLab, NodeInfo } from './lab-env.js';
import { BenchError } from './errors.js';

const HELPER = fileURLToPath(new URL('./cdp-profile.js', import.meta.url));
const INSPECTOR_PORT = 9229;

export interface RunningProfiles {
  stop(): Promise<string[]>;
}

function helper(node: NodeInfo, out: string, mode: 'cpu' | 'heap'): ChildProcess {
  if (node.agentPid === undefined) throw new BenchError(`no agent running on ${node.name}`);
  process.kill(node.agentPid, 'SIGUSR1');
  return spawn('ip', ['netns', 'exec', node.netns, process.execPath, '--experimental-websocket', '--no-warnings', HELPER, String(INSPECTOR_PORT), out, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

export async function startProfiles(lab: BenchLab, dir: string, label: string): Promise<RunningProfiles> {
  const children: { child: ChildProcess; out: string }[] = [];
  for (const node of [lab.clientNode, lab.serverNode]) {
    const out = join(dir, `${label}-${node.name}.cpuprofile`);
    const child = helper(node, out, 'cpu');
    children.push({ child, out });
    const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => [undefined])])) as [Buffer | undefined];
    if (line === undefined || !line.toString().startsWith('started')) throw new BenchError(`the profiler did not start on ${node.name}`);
  }
  return {
    async stop() {
      for (const c of children) c.child.kill('SIGTERM');
      await Promise.all(children.map((c) => (c.child.exitCode === null ? once(c.child, 'exit') : undefined)));
      return children.map((c) => c.out);
    },
  };
}

/** A heap snapshot of one agent (after a full GC), written to `out`. */
export async function heapSnapshot(node: NodeInfo, out: string): Promise<void> {
  const child = helper(node, out, 'heap');
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new BenchError(`heap snapshot of the agent on ${node.name} failed (exit ${String(code)})`);
}
