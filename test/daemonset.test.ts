/** The Kubernetes manifests parse, reference what exists, and pass only options the CLI knows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const dir = join(root, 'daemonset');
const main = join(root, 'dist/agent/cli/main.js');

function docs(file: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Record<string, unknown>;
  });
}

test('kustomization resources exist', () => {
  const [k] = docs('kustomization.yaml');
  for (const r of (k!['resources'] as string[])) assert.ok(existsSync(join(dir, r)), r);
});

test('every container argument is an option of the weft command it runs', () => {
  const helps = new Map<string, string>();
  let checked = 0;
  for (const file of ['agent.yaml', 'ca.yaml']) {
    for (const d of docs(file)) {
      const pod = (d['spec'] as { template?: { spec?: { containers?: { args?: string[] }[]; initContainers?: { args?: string[] }[] } } })?.template?.spec;
      for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
        const [command, ...args] = c.args ?? [];
        assert.ok(command === 'agent' || command === 'ca' || command === 'cni-install', `${file}: unknown command ${command}`);
        if (!helps.has(command!)) helps.set(command!, execFileSync(process.execPath, [main, command!, '--help'], { encoding: 'utf8' }));
        for (const a of args.filter((x) => x.startsWith('--'))) {
          assert.match(helps.get(command!)!, new RegExp(`${a.split('=')[0]}\\b`), `${file}: weft ${command} has no option ${a}`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked >= 8);
});
