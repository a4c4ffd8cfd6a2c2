/**
 * `weft agent --trust-domain`: a mesh whose trust domain is not `cluster.local`, end to end in
 * process (two pod namespaces, the agent, an in-process CA of that trust domain). Discovery
 * names the workloads `spiffe://mesh.example/...`, the CA signs them, the HBONE server accepts
 * the peer, policy namespaces match, and the admin config dump shows the trust domain.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';
import { configDump } from '../../agent/admin/server.js';
import { parseTrustDomain } from '../../agent/identity/spiffe.js';
import { isWeftError } from '../../agent/errors.js';

const TD = 'mesh.example';
let t: TwoPods;

before(async () => {
  t = await setupTwoPods('shapetd', 215, { trustDomain: TD });
});
after(() => t?.cleanup());

function allowNamespace(ns: string): string {
  return `apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: from-ns\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: server\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        namespaces: ["${ns}"]\n`;
}

test('workload identities, the config dump and the model carry the configured trust domain', () => {
  assert.equal(t.agent.model.trustDomain, TD);
  assert.equal(t.agent.model.workloadByIp(t.IP_B)?.identity, `spiffe://${TD}/ns/shop/sa/server`);
  const dump = configDump({ ready: true, model: t.agent.model, inputs: t.agent.inputs, captured: t.agent.captured, refusals: () => [], config: () => t.agent.config() });
  assert.equal((dump.config as { trustDomain: string }).trustDomain, TD);
});

test('a meshed connection goes over HBONE with identities of that trust domain', async () => {
  assert.equal(await t.request(t.VIP, 80, 'hi'), `${t.IP_A}|hi`);
  const line = await waitFor(() => t.logs.find((l) => l['direction'] === 'inbound' && l['msg'] === 'connection closed' && l['mtls'] === true), 'inbound access log line over mTLS');
  assert.equal(line['src_principal'], `spiffe://${TD}/ns/shop/sa/client`);
});

test('policy namespaces match peers of the trust domain (a peer of another one would have no namespace)', async () => {
  let gen = t.agent.inputs.policy.generation;
  t.writeFile('p.yaml', allowNamespace('shop'));
  await waitFor(() => t.agent.inputs.policy.generation > gen, 'policy applied');
  assert.equal(await t.request(t.VIP, 80, 'ns'), `${t.IP_A}|ns`);
  gen = t.agent.inputs.policy.generation;
  t.writeFile('p.yaml', allowNamespace('elsewhere'));
  await waitFor(() => t.agent.inputs.policy.generation > gen, 'policy applied');
  await assert.rejects(t.request(t.VIP, 80, 'no'));
});

test('--trust-domain takes a SPIFFE trust domain and refuses anything else with WEFT_ERR_CONFIG', () => {
  assert.equal(parseTrustDomain('mesh.example'), 'mesh.example');
  for (const bad of ['', 'Mesh.Example', 'a/b', 'spiffe://x', 'x y']) assert.throws(() => parseTrustDomain(bad), (e) => isWeftError(e, 'WEFT_ERR_CONFIG'), JSON.stringify(bad));
});
