/**
 * The tunnel tests that build their servers and pools with the process default (the lean framer)
 * run again here with node:http2 as that default (WEFT_HBONE_IMPL=node, agent/tunnel/impl.ts):
 * the same assertions hold on both implementations while node stays selectable. hbone.test.ts
 * and the attack suite loop over both themselves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const HERE = dirname(fileURLToPath(import.meta.url));
const FILES = ['session-bounds', 'relay-close', 'fin-wait', 'pool-gone', 'trust-domain', 'session-resumption'];

// Without the parent runner's context variable, so the child runs its tests instead of reporting to us.
const env: NodeJS.ProcessEnv = { ...process.env, WEFT_HBONE_IMPL: 'node' };
delete env['NODE_TEST_CONTEXT'];

for (const name of FILES) {
  test(`${name}.test.ts with node:http2`, async () => {
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) =>
      execFile(process.execPath, ['--test', join(HERE, `${name}.test.js`)], { env, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, output: stdout + stderr }),
      ),
    );
    assert.equal(code, 0, output.split('\n').filter((l) => /not ok|error|Error/.test(l)).slice(0, 20).join('\n'));
    assert.match(output, /# fail 0/);
  });
}
