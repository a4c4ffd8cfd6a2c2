/**
 * The real kubectl (1.32) against the lab's API server with the kubeconfig it writes: get, -A,
 * -w, apply (create, then update), label, describe, delete, auth can-i, create token, and
 * Forbidden errors as kubectl prints them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, CommandError } from '../../agent/util/exec.js';
import { waitFor } from '../helpers/wait.js';
import { startTestApi, type TestApi } from './kube-api-helpers.js';

const KUBECTL = '/usr/bin/kubectl';
let api: TestApi;
let kubeconfig: string;

function kubectlArgs(args: string[], config = kubeconfig): string[] {
  return ['--kubeconfig', config, '--cache-dir', join(api.dir, 'kube-cache'), ...args];
}

async function kubectl(args: string[], input?: string, config = kubeconfig): Promise<string> {
  return (await runCommand(KUBECTL, kubectlArgs(args, config), input)).stdout;
}

/** Exit code and stdout (kubectl auth can-i answers "no" with exit code 1). */
function kubectlExit(args: string[], config = kubeconfig): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(KUBECTL, kubectlArgs(args, config), { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (stdout += c));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

async function kubectlFails(args: string[], config = kubeconfig): Promise<string> {
  try {
    await runCommand(KUBECTL, kubectlArgs(args, config));
  } catch (err) {
    if (err instanceof CommandError) return err.stderr;
    throw err;
  }
  throw new Error(`kubectl ${args.join(' ')} succeeded but should have failed`);
}

before(async () => {
  api = await startTestApi();
  kubeconfig = join(api.dir, 'kubeconfig');
  await api.server.writeKubeconfig(kubeconfig);
});
after(() => api?.close());

const MANIFEST = (value: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  value: "${value}"
---
apiVersion: v1
kind: Pod
metadata:
  name: cart
  namespace: shop
  labels: {app: cart}
spec:
  nodeName: node-1
  containers:
  - name: cart
    image: cart:1
    ports:
    - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: shop
spec:
  selector: {app: cart}
  ports:
  - port: 80
    targetPort: 8080
`;

test('kubectl apply -f creates, and applied again with a change, updates only what changed', async () => {
  const file = join(api.dir, 'shop.yaml');
  await writeFile(file, MANIFEST('1'));
  assert.equal(await kubectl(['apply', '-f', file]), 'namespace/shop created\nconfigmap/settings created\npod/cart created\nservice/cart created\n');
  await writeFile(file, MANIFEST('2'));
  assert.equal(await kubectl(['apply', '-f', file]), 'namespace/shop unchanged\nconfigmap/settings configured\npod/cart unchanged\nservice/cart unchanged\n');
  assert.equal(await kubectl(['get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.value}']), '2');
});

test('kubectl apply -k daemonset/ (the install), then a Weft policy created and updated with kubectl apply', async () => {
  const install = await kubectl(['apply', '-k', new URL('../../../daemonset/', import.meta.url).pathname]);
  assert.match(install, /customresourcedefinition.apiextensions.k8s.io\/authorizationpolicies.weft.dev created/);
  assert.match(install, /daemonset.apps\/weft-agent created/);
  const file = join(api.dir, 'policy.yaml');
  const policy = (action: string) => `apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-cart\n  namespace: shop\nspec:\n  action: ${action}\n`;
  await writeFile(file, policy('ALLOW'));
  assert.equal(await kubectl(['apply', '-f', file]), 'authorizationpolicy.weft.dev/allow-cart created\n');
  await writeFile(file, policy('DENY'));
  assert.equal(await kubectl(['apply', '-f', file]), 'authorizationpolicy.weft.dev/allow-cart configured\n');
  assert.match(await kubectl(['get', 'authorizationpolicies', '-n', 'shop']), /\nallow-cart\s+DENY\s+\d+s\n/);
});

test('kubectl get (table), get -A, -o json, discovery of short names', async () => {
  const pods = await kubectl(['get', 'pods', '-n', 'shop']);
  assert.match(pods, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
  assert.match(pods, /\ncart\s+0\/1\s+Pending\s+0\s+\d+s\n/);
  assert.match(await kubectl(['get', 'pods', '-n', 'shop', '-o', 'wide']), /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\n.*\s+<none>\s+node-1\n/s);
  const all = await kubectl(['get', 'svc', '-A']);
  assert.match(all, /^NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP\s+PORT\(S\)\s+AGE\n/);
  assert.match(all, /\ndefault\s+kubernetes\s+ClusterIP\s+198\.19\.128\.1\s+443\/TCP/);
  assert.match(all, /\nshop\s+cart\s+ClusterIP\s+198\.19\.\d+\.\d+\s+80\/TCP/);
  const json = JSON.parse(await kubectl(['get', 'po', 'cart', '-n', 'shop', '-o', 'json'])) as { kind: string; spec: { nodeName: string } };
  assert.equal(json.kind, 'Pod');
  assert.equal(json.spec.nodeName, 'node-1');
  assert.match(await kubectl(['get', 'ns']), /\nshop\s+Active\s+/);
  assert.match(await kubectl(['api-resources']), /\npods\s+po\s+v1\s+true\s+Pod\n/);
  const missing = await kubectlFails(['get', 'pod', 'nope', '-n', 'shop']);
  assert.match(missing, /Error from server \(NotFound\): pods "nope" not found/);
});

test('kubectl label and describe', async () => {
  assert.equal(await kubectl(['label', 'pod', 'cart', '-n', 'shop', 'tier=back']), 'pod/cart labeled\n');
  assert.equal(await kubectl(['label', 'namespace', 'shop', 'weft.dev/mesh=enabled']), 'namespace/shop labeled\n');
  assert.match(await kubectl(['get', 'ns', 'shop', '--show-labels']), /weft\.dev\/mesh=enabled/);
  const described = await kubectl(['describe', 'pod', 'cart', '-n', 'shop']);
  assert.match(described, /^Name:\s+cart\n/m);
  assert.match(described, /^Labels:\s+app=cart\n\s+tier=back\n/m);
  assert.match(described, /^Node:\s+node-1\/?/m);
  assert.match(await kubectl(['describe', 'service', 'cart', '-n', 'shop']), /^IP:\s+198\.19\./m);
  assert.equal(await kubectl(['label', 'pod', 'cart', '-n', 'shop', 'tier-']), 'pod/cart unlabeled\n');
});

test('kubectl get -w prints the list, then each change', async () => {
  const child = spawn(KUBECTL, kubectlArgs(['get', 'configmaps', '-n', 'shop', '-w']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c: string) => (out += c));
  try {
    await waitFor(() => /settings/.test(out), 'the initial list');
    await kubectl(['create', 'configmap', 'watched', '-n', 'shop', '--from-literal=a=b']);
    await waitFor(() => /\nwatched\s+1\s+/.test(out), 'the new configmap on the watch');
    assert.match(out, /^NAME\s+DATA\s+AGE\n/);
  } finally {
    child.kill();
  }
});

test('kubectl logs reads the file the lab names, with --tail; a multi-container choice is asked for', async () => {
  const logFile = join(api.dir, 'cart.log');
  await writeFile(logFile, 'starting\nlistening on 8080\n');
  api.server.setPodLogResolver((pod, container) => (pod.metadata.name === 'cart' && container === 'cart' ? logFile : undefined));
  assert.equal(await kubectl(['logs', 'cart', '-n', 'shop']), 'starting\nlistening on 8080\n');
  assert.equal(await kubectl(['logs', 'cart', '-n', 'shop', '--tail=1']), 'listening on 8080\n');
  assert.match(await kubectlFails(['logs', 'cart', '-n', 'shop', '-c', 'nope']), /container nope is not valid for pod cart/);
  const follow = spawn(KUBECTL, kubectlArgs(['logs', '-f', 'cart', '-n', 'shop']), { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  follow.stdout.setEncoding('utf8');
  follow.stdout.on('data', (c: string) => (out += c));
  try {
    await waitFor(() => out.includes('listening on 8080'), 'the log so far');
    await appendFile(logFile, 'request 1\n');
    await waitFor(() => out.endsWith('request 1\n'), 'appended output while following');
  } finally {
    follow.kill();
  }
});

test('kubectl delete: a configmap at once, a scheduled pod gracefully', async () => {
  assert.equal(await kubectl(['delete', 'configmap', 'watched', '-n', 'shop']), 'configmap "watched" deleted\n');
  assert.equal(await kubectl(['delete', 'pod', 'cart', '-n', 'shop', '--wait=false']), 'pod "cart" deleted\n');
  assert.match(await kubectl(['get', 'pod', 'cart', '-n', 'shop']), /\ncart\s+0\/1\s+Terminating\s+/);
  assert.equal(await kubectl(['delete', 'pod', 'cart', '-n', 'shop', '--grace-period=0', '--force']).then((s) => s.replace(/^Warning.*\n/m, '')), 'pod "cart" force deleted\n');
});

test('kubectl with a service-account kubeconfig: Forbidden as Kubernetes words it; auth can-i; create token', async () => {
  await kubectl(['create', 'serviceaccount', 'reader', '-n', 'shop']);
  await kubectl(['create', 'clusterrole', 'pod-reader', '--verb=get,list,watch', '--resource=pods']);
  await kubectl(['create', 'clusterrolebinding', 'reader', '--clusterrole=pod-reader', '--serviceaccount=shop:reader']);
  const token = (await kubectl(['create', 'token', 'reader', '-n', 'shop'])).trim();
  assert.equal(token.split('.').length, 3);
  const readerConfig = join(api.dir, 'reader.kubeconfig');
  await api.server.writeKubeconfig(readerConfig, { token, user: 'reader' });
  await kubectl(['get', 'pods', '-A'], undefined, readerConfig);
  const denied = await kubectlFails(['get', 'secrets', '-n', 'shop'], readerConfig);
  assert.match(denied, /Error from server \(Forbidden\): secrets is forbidden: User "system:serviceaccount:shop:reader" cannot list resource "secrets" in API group "" in the namespace "shop"/);
  assert.equal(await kubectl(['auth', 'can-i', 'watch', 'pods', '-A'], undefined, readerConfig), 'yes\n');
  assert.deepEqual(await kubectlExit(['auth', 'can-i', 'delete', 'pods', '-n', 'shop'], readerConfig), { code: 1, stdout: 'no\n' });
});
