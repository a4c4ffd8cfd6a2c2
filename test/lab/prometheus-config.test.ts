// The lab Prometheus's pure parts: its configuration, its target file, finding the executable.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { findPrometheus, labPrometheusPaths, renderPrometheusConfig, renderPrometheusTargets } from '../../agent/lab/prometheus.js';

describe('lab prometheus', () => {
  it('scrapes one job every second from the file_sd target file under the lab state dir', () => {
    const config = parse(renderPrometheusConfig('demo')) as {
      global: Record<string, string>;
      scrape_configs: { job_name: string; metrics_path: string; file_sd_configs: { files: string[] }[] }[];
    };
    assert.equal(config.global['scrape_interval'], '1s');
    assert.equal(config.scrape_configs.length, 1);
    const job = config.scrape_configs[0]!;
    assert.equal(job.job_name, 'weft-agents');
    assert.equal(job.metrics_path, '/metrics');
    assert.deepEqual(job.file_sd_configs[0]!.files, ['/run/weft/lab/demo/prometheus/targets.json']);
    assert.equal(labPrometheusPaths('demo').data, '/run/weft/lab/demo/prometheus/data');
  });

  it('has one target per node, on its fabric IP and the agent metrics port, labelled with the node', () => {
    const cases: [{ name: string; fabricIP: string }[], unknown][] = [
      [[], []],
      [
        [
          { name: 'node-1', fabricIP: '198.19.0.1' },
          { name: 'node-2', fabricIP: '198.19.0.2' },
        ],
        [
          { targets: ['198.19.0.1:15020'], labels: { node: 'node-1', lab: 'x' } },
          { targets: ['198.19.0.2:15020'], labels: { node: 'node-2', lab: 'x' } },
        ],
      ],
    ];
    for (const [nodes, want] of cases) assert.deepEqual(JSON.parse(renderPrometheusTargets('x', nodes)), want);
  });

  it('finds an executable prometheus on PATH and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-prom-path-'));
    try {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      mkdirSync(a);
      mkdirSync(b);
      writeFileSync(join(a, 'prometheus'), 'not executable');
      chmodSync(join(a, 'prometheus'), 0o644);
      assert.equal(await findPrometheus(`${a}:${dir}/missing`), undefined);
      writeFileSync(join(b, 'prometheus'), '#!/bin/sh\n');
      chmodSync(join(b, 'prometheus'), 0o755);
      assert.equal(await findPrometheus(`${a}::${b}`), join(b, 'prometheus'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
