/**
 * Option parsing across subcommands: the root command takes positional options (so that
 * `weft waypoint generate NAME --namespace NS` is generate's), which must not turn a
 * subcommand's own options after its arguments into arguments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WEFT_MAIN = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));

test('lab exec reads -n and --name after the pod, and only what follows -- is the command', () => {
  // A lab that does not exist: the error must name it, which it does only if --name was parsed.
  const r = spawnSync(process.execPath, [WEFT_MAIN, 'lab', 'exec', 'client', '-n', 'outside', '--name', 'nosuchlabopts', '--', 'echo', 'hi'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /lab nosuchlabopts is not up/);
});
