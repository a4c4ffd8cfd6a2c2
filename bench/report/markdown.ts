/** The run as a Markdown page: every figure side by side, weft's ratios, the targets. Pure. */
import { PEER_NAMES, SYSTEM_NAMES } from '../systems/system.js';
import { weftRatio, type RunResult } from '../results.js';

function num(x: number | undefined): string {
  if (x === undefined) return '–';
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return x.toFixed(digits);
}

/** A ratio of a difference that went negative (noise on "added" latency) means nothing: left out. */
function ratioCell(r: number | undefined, a: number | undefined, b: number | undefined): string {
  if (r === undefined || a === undefined || b === undefined || a <= 0 || b <= 0) return '–';
  return `${r.toFixed(2)} x`;
}

export function markdownReport(r: RunResult): string {
  const m = r.machine;
  const lines = [
    `# Weft benchmark, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC${r.quick ? ' (--quick)' : ''}`,
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, HAProxy ${m.haproxy ?? 'n/a'}, iperf3 ${m.iperf3 ?? 'n/a'}.`,
    'Two lab nodes (network namespaces), client pod and server pod on different nodes; every system on the same veth path.',
    'Proxy CPU is utime+stime of the proxy processes of both sides (both agents, or both HAProxies), from /proc/<pid>/stat.',
    'Latency is measured from each request\'s intended send time (open loop); "added" is over direct at the same percentile ' +
      '(a negative "added" is run-to-run noise: the direct run happened to be slower; no ratio is shown for it).',
    '',
    '## Figures',
    '',
  ];
  // Only the systems this run measured; the peer of a figure is haproxy-mtls or, in the ingress
  // scenario, the reverse proxy.
  const shown = SYSTEM_NAMES.filter((s) => r.figures.some((f) => f.values[s] !== undefined));
  const peerOf = (f: RunResult['figures'][number]): (typeof PEER_NAMES)[number] | undefined => PEER_NAMES.find((p) => f.values[p] !== undefined);
  lines.push(`| scenario | metric | unit | ${shown.join(' | ')} | weft / direct | weft / peer |`, `| --- | --- | --- | ${shown.map(() => '---:').join(' | ')} | ---: | ---: |`);
  for (const f of r.figures) {
    const cells = shown.map((s) => num(f.values[s]));
    const peer = peerOf(f);
    const peerCell = peer === undefined ? '–' : ratioCell(weftRatio(f, peer), f.values.weft, f.values[peer]);
    lines.push(`| ${f.scenario} | ${f.metric} | ${f.unit} (${f.better} is better) | ${cells.join(' | ')} | ${ratioCell(weftRatio(f, 'direct'), f.values.weft, f.values.direct)} | ${peerCell} |`);
  }
  lines.push('', '## Targets (issues 5, 11, 12, 13, 15)', '', '| target | measured | met |', '| --- | --- | --- |');
  for (const t of r.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? 'not measured' : t.met ? 'met' : '**not met**'} |`);
  const failures = Object.entries(r.failures);
  if (failures.length > 0) {
    lines.push('', '## Not measured', '');
    for (const [what, why] of failures) lines.push(`- ${what}: ${why.replace(/\n/g, ' ')}`);
  }
  lines.push(
    '',
    'Reproduce: `npm run bench` (all scenarios, about 5 min) or `npm run bench -- --quick` (under 3 min); one scenario: `npm run bench -- --scenario latency`. ' +
      'Absolute figures drift on a shared machine; the ratios measured side by side in one run are what to compare.',
    '',
  );
  return lines.join('\n');
}
