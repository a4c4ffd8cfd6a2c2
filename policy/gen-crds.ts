/**
 * Writes the policy CRDs into daemonset/crds/ (`node dist/policy/gen-crds.js`), or with `--check`
 * exits 1 if the committed files differ from what the schemas produce.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrds } from './crd.js';

// dist/policy/gen-crds.js -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const f of renderCrds()) {
  const target = join(root, f.path);
  if (check) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== f.content) {
      stale++;
      process.stderr.write(`stale: ${f.path} (run: node dist/policy/gen-crds.js)\n`);
    }
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.content);
    process.stdout.write(`wrote ${f.path}\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
