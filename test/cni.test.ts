/**
 * The chained CNI plugin (daemonset/cni/weft-cni), invoked exactly as a container runtime does
 * (agent/lab/cni.ts: CNI_* environment, configuration with prevResult on stdin), against an
 * agent running in-process on the two-pod topology. A pod the model knows without an IP yet (its
 * sandbox is being made) is captured from the namespace path the plugin gives; a pod out of the
 * mesh passes at once; no agent, or no capture in time, fails the sandbox (fail closed). Root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCaptureRules } from '../agent/capture/rules.js';
import { cniAdd, cniCheck, cniDel, cniVersion, prevResultFor } from '../agent/lab/cni.js';
import { isWeftError } from '../agent/errors.js';
import { createTestNetns, inNs } from './helpers/netns.js';
import { setupTwoPods, type TwoPods } from './helpers/two-pods.js';
import { waitFor } from './helpers/wait.js';

const runDir = mkdtempSync(join(tmpdir(), 'weft-failcni-run-'));
let t: TwoPods;
const fresh = createTestNetns('weft-test-failcni-new', [['ip', 'addr', 'add', '198.18.238.10/32', 'dev', 'lo']]);
const plain = createTestNetns('weft-test-failcni-plain', [['ip', 'addr', 'add', '198.18.238.11/32', 'dev', 'lo']]);

// Scheduled pods without status.podIP: what the agent knows while the runtime makes the sandbox.
const pending = (name: string, labels = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: ${name}${labels}\nspec:\n  nodeName: node-1\n  serviceAccountName: server\n  containers:\n  - name: main\n    command: [sleep, infinity]\n`;

before(async () => {
  t = await setupTwoPods('failcni', 238, { runDir });
  t.writeFile('pending.yaml', `${pending('fresh')}---\n${pending('plain', '\n    weft.dev/mesh: disabled')}`);
  await waitFor(() => t.agent.model.pendingWorkload?.('shop/fresh'), 'the agent knows the pending pods');
});

after(async () => {
  await t?.cleanup();
  fresh.remove();
  plain.remove();
  rmSync(runDir, { recursive: true, force: true });
});

const call = (pod: string, netnsPath: string, ip?: string) => ({
  runDir,
  containerId: `sandbox-${pod}`,
  netnsPath,
  podNamespace: 'shop',
  podName: pod,
  ...(ip ? { prevResult: prevResultFor(ip, 'eth0', netnsPath) } : {}),
});

test('VERSION lists the spec versions the plugin speaks', async () => {
  const v = await cniVersion();
  assert.equal(v.cniVersion, '1.0.0');
  assert.deepEqual(v.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0']);
});

test('ADD captures a new meshed pod by its namespace path before it runs, and passes prevResult through', async () => {
  assert.equal(await hasCaptureRules(fresh.path), false);
  const result = await cniAdd(call('fresh', fresh.path, '198.18.238.10'));
  assert.deepEqual(result, prevResultFor('198.18.238.10', 'eth0', fresh.path));
  // Answered only once captured: the rules and the listeners are there when ADD returns.
  assert.equal(await hasCaptureRules(fresh.path), true);
  const listening = inNs(fresh.name, 'ss', ['-ltnH']);
  for (const port of [15001, 15006]) assert.match(listening, new RegExp(`:${port}\\b`));
  assert.ok(t.logs.find((l) => l['msg'] === 'pod captured' && l['pod'] === 'shop/fresh' && l['via'] === 'cni'), 'captured from the path, not by a scan');
  await cniCheck(call('fresh', fresh.path));
});

test('ADD for a pod out of the mesh answers at once and leaves it alone', async () => {
  const result = await cniAdd(call('plain', plain.path, '198.18.238.11'));
  assert.deepEqual((result.ips as { address: string }[])[0], { address: '198.18.238.11/32', interface: 0 });
  assert.equal(await hasCaptureRules(plain.path), false);
});

test('ADD fails the sandbox when the agent does not capture the pod in time', async () => {
  await assert.rejects(cniAdd({ ...call('unknown', fresh.path, '198.18.238.12'), timeoutSeconds: 2 }), (err: unknown) => {
    assert.ok(isWeftError(err, 'WEFT_ERR_CNI_TIMEOUT'), String(err));
    assert.match(err.message, /shop\/unknown/);
    return true;
  });
});

test('ADD without prevResult is refused: weft-cni must be chained', async () => {
  await assert.rejects(cniAdd(call('fresh', fresh.path)), (err: unknown) => isWeftError(err, 'WEFT_ERR_CNI_REQUEST') && /prevResult/.test(err.message));
});

test('DEL succeeds (also for a pod the agent never saw)', async () => {
  await cniDel(call('fresh', fresh.path));
  await cniDel(call('never', '/nonexistent'));
});

test('ADD fails at once with a clear message when no agent runs on the node', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'weft-failcni-none-'));
  try {
    await assert.rejects(cniAdd({ ...call('fresh', fresh.path, '198.18.238.10'), runDir: empty }), (err: unknown) => {
      assert.ok(isWeftError(err, 'WEFT_ERR_CNI_NO_AGENT'), String(err));
      assert.match(err.message, /no Weft agent runs on this node/);
      return true;
    });
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
