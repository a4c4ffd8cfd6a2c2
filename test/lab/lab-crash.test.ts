// A lab that crashed (every process killed with SIGKILL, namespaces left behind, state lost) is
// cleaned by the next `up`; `down` removes a half-built lab and is fine when nothing is there; a
// failed `up` leaves nothing behind (root).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { labDown, labExec, labPaths, labStatus, labUp, type LabStatus } from '../../agent/lab/index.js';
import { isWeftError } from '../../agent/errors.js';
import { APP, assertLabGone, labNetns, manifestDir, pidAlive, podYaml } from './helpers.js';

const LAB = 'tcrash';

const files = manifestDir({
  'pods.yaml':
    podYaml({ name: 'web', node: 'node-a', labels: { app: 'web' }, script: 'details.mjs', port: 9080 }) +
    '---\n' +
    podYaml({ name: 'client', node: 'node-b', script: 'idle.mjs' }) +
    '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: http\n',
});

function killEverything(): number[] {
  const pids = labNetns(LAB).flatMap((ns) =>
    execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number),
  );
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  return pids;
}

async function waitDead(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pids.some(pidAlive)) {
    assert.ok(Date.now() < deadline, `processes ${pids.filter(pidAlive).join(',')} still alive`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function assertWorks(status: LabStatus): Promise<void> {
  assert.ok(status.pods.every((p) => p.running), 'every pod runs');
  assert.deepEqual(labNetns(LAB).sort(), [
    `weft-${LAB}-fabric`,
    `weft-${LAB}-internet`,
    `weft-${LAB}-node-node-a`,
    `weft-${LAB}-node-node-b`,
    `weft-${LAB}-pod-default-client`,
    `weft-${LAB}-pod-default-web`,
  ]);
  const r = await labExec({ name: LAB, pod: 'client', command: ['node', join(APP, 'load.mjs'), 'http://web/details/1', '--count', '2'], timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

describe('lab crash recovery and down', () => {
  before(async () => {
    await labDown({ name: LAB });
  });

  after(async () => {
    await labDown({ name: LAB });
    files.remove();
  });

  it('rebuilds a lab whose processes were all killed, on the next up', async () => {
    const first = await labUp({ name: LAB, dir: files.dir });
    const killed = killEverything();
    assert.ok(killed.length >= 2);
    await waitDead(killed);
    assert.ok((await labStatus(LAB)).pods.every((p) => !p.running));

    const second = await labUp({ name: LAB, dir: files.dir });
    assert.equal(second.mode, 'fresh');
    assert.equal(second.cleanedLeftovers, true);
    for (const p of second.pods) {
      assert.notEqual(p.pid, first.pods.find((q) => q.name === p.name)!.pid);
    }
    await assertWorks(second);
  });

  it('cleans leftovers whose state was lost too', async () => {
    const killed = killEverything();
    await waitDead(killed);
    rmSync(labPaths(LAB).stateFile);
    await assert.rejects(labStatus(LAB), (err: unknown) => isWeftError(err, 'WEFT_ERR_LAB_NOT_FOUND') && /leftovers/.test(err.message));
    const up = await labUp({ name: LAB, dir: files.dir });
    assert.equal(up.cleanedLeftovers, true);
    await assertWorks(up);
  });

  it('down removes a half-built lab without state, with a process still inside', async () => {
    await labDown({ name: LAB });
    execFileSync('ip', ['netns', 'add', `weft-${LAB}-fabric`]);
    execFileSync('ip', ['netns', 'add', `weft-${LAB}-pod-x-y`]);
    mkdirSync(`/etc/netns/weft-${LAB}-pod-x-y`, { recursive: true });
    writeFileSync(`/etc/netns/weft-${LAB}-pod-x-y/hosts`, '127.0.0.1 localhost\n');
    const child = spawn('ip', ['netns', 'exec', `weft-${LAB}-pod-x-y`, process.execPath, join(APP, 'idle.mjs')], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    // Inside once it says so.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.unref();
    const { removed } = await labDown({ name: LAB });
    assert.deepEqual(removed, [LAB]);
    assertLabGone(LAB, [child.pid!]);
  });

  it('down succeeds when nothing is there', async () => {
    assert.deepEqual((await labDown({ name: LAB })).removed, []);
    assertLabGone(LAB, []);
  });

  it('a failed up says which pod and why, and leaves nothing behind', async () => {
    const broken = manifestDir({
      'pods.yaml':
        podYaml({ name: 'ok', node: 'node-a', script: 'idle.mjs' }) +
        '---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: crashes\nspec:\n  nodeName: node-a\n  containers:\n    - name: main\n' +
        "      command: [node, -e, \"console.error('no config here'); process.exit(3)\"]\n" +
        '      ports:\n        - containerPort: 9080\n',
    });
    try {
      await assert.rejects(labUp({ name: LAB, dir: broken.dir, readyTimeoutMs: 10_000 }), (err: unknown) => {
        assert.ok(isWeftError(err, 'WEFT_ERR_LAB'), String(err));
        assert.match(err.message, /pod default\/crashes/);
        assert.match(err.message, /no config here/);
        assert.match(err.message, /exited before listening \(code 3\)/);
        return true;
      });
      assertLabGone(LAB, []);
    } finally {
      broken.remove();
    }
  });
});
