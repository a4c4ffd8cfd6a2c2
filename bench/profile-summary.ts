/**
 * `node dist/bench/profile-summary.js FILE.cpuprofile [TOP]`: where an agent's CPU time went —
 * self time by function (top N) and by area (idle, GC, V8/native "program", Node's own modules
 * such as node:internal/http2 and node:_tls_wrap, Weft's code, dependencies). Self time of a
 * JavaScript function includes the native calls it makes (e.g. nghttp2, OpenSSL writes).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function area(f: CallFrame): string {
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(garbage collector)') return 'GC';
  if (f.functionName === '(program)') return 'V8/native (program)';
  if (f.url.includes('/node_modules/')) return `dependency ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url)?.[1] ?? ''}`;
  if (f.url.includes('/dist/')) return 'weft';
  if (f.url.startsWith('node:')) return f.url.replace(/^node:(internal\/)?/, 'node:').replace(/\/.*$/, '');
  return f.url === '' ? `native ${f.functionName}` : 'other';
}

export function summarize(p: CpuProfile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = p.endTime - p.startTime;
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/dist\//, 'dist/')}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = area(f);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const busy = total - (byArea.get('idle') ?? 0);
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1)}%`;
  const lines = [`wall ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (${((100 * busy) / total).toFixed(0)}%); shares of busy time:`, '', 'by area:'];
  for (const [a, us] of [...byArea].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).slice(0, 15)) lines.push(`  ${pct(us).padStart(6)}  ${a}`);
  lines.push('', `top ${top} functions (self):`);
  for (const [k, us] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(us).padStart(6)}  ${k}`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(process.argv[3] ?? 25)) + '\n');
}
