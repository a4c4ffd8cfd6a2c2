import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdownReport } from '../../bench/report/markdown.js';
import { latencySvg, niceMax } from '../../bench/report/svg.js';
import { judgeTargets, type Figure, type RunResult } from '../../bench/results.js';

const figures: Figure[] = [
  { scenario: 'bulk', metric: 'throughput', unit: 'Gbit/s', better: 'higher', values: { direct: 20, weft: 6, 'haproxy-mtls': 4 } },
  { scenario: 'latency', metric: 'added p90 @ 1000 rps', unit: 'ms', better: 'lower', values: { weft: 0.25, 'haproxy-mtls': 0.2 } },
  { scenario: 'latency', metric: 'added p99 @ 1000 rps', unit: 'ms', better: 'lower', values: { weft: -0.5, 'haproxy-mtls': 0.2 } },
  { scenario: 'scale', metric: 'policy decision', unit: 'ns', better: 'lower', values: { weft: 700 } },
];

function run(): RunResult {
  return {
    startedAt: '2026-11-25T02:00:00.000Z',
    finishedAt: '2026-11-25T02:03:00.000Z',
    quick: true,
    scenarios: ['bulk', 'latency', 'scale'],
    machine: { cpuModel: 'Test CPU', cores: 2, kernel: '6.1', node: 'v20', haproxy: '2.6', iperf3: '3.12' },
    figures,
    targets: judgeTargets(figures),
    details: {},
    failures: { 'idle/weft': 'agents did not capture' },
  };
}

test('targets are judged from the figures; missing ones are "not measured", not failed', () => {
  const t = judgeTargets(figures);
  const by = (prefix: string) => t.find((x) => x.target.startsWith(prefix))!;
  assert.equal(by('bulk throughput').met, true);
  assert.match(by('bulk throughput').measured, /1\.5 x/);
  assert.equal(by('latency @ 1000 rps: weft added p90 <= 0.17').met, false);
  assert.equal(by('scale: policy decision').met, true);
  assert.equal(by('connect rate').met, undefined);
  assert.equal(by('idle').measured, 'not measured');
});

test('the Markdown table has every system, weft ratios, targets and failures', () => {
  const md = markdownReport(run());
  assert.match(md, /\| scenario \| metric \| unit \| direct \| weft \| haproxy-mtls \| weft \/ direct \| weft \/ haproxy-mtls \|/);
  assert.match(md, /\| bulk \| throughput \| Gbit\/s \(higher is better\) \| 20\.0 \| 6\.00 \| 4\.00 \| 0\.30 x \| 1\.50 x \|/);
  assert.match(md, /\| scale \| policy decision \| ns \(lower is better\) \| – \| 700 \| – \| – \| – \|/);
  assert.match(md, /weft added p90 <= 0\.17 ms \| 0\.25 ms \| \*\*not met\*\*/);
  assert.match(md, /- idle\/weft: agents did not capture/);
  // A negative "added" (noise) gets no ratio.
  assert.match(md, /\| latency \| added p99 @ 1000 rps \| ms \(lower is better\) \| – \| -0\.500 \| 0\.200 \| – \| – \|/);
  assert.match(md, /\(--quick\)/);
});

test('the SVG has one bar per system and percentile, scaled to a nice maximum', () => {
  const summary = (p50: number) => ({ count: 1, p50, p90: p50 * 2, p99: p50 * 3, p999: p50 * 4, max: 0, mean: 0 });
  const svg = latencySvg([{ rate: 1000, bySystem: { direct: summary(0.1), weft: summary(0.3), 'haproxy-mtls': summary(0.2) } }], ['direct', 'weft', 'haproxy-mtls'], 'a <title>');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.equal((svg.match(/<rect x=[^>]*><title>/g) ?? []).length, 12);
  assert.match(svg, /weft p99\.9: 1\.2 ms/);
  assert.match(svg, /a &lt;title&gt;/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal(niceMax(1.2), 2);
  assert.equal(niceMax(0.3), 0.5);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(0), 1);
});
