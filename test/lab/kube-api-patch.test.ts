/** Unit tests of the API server's patch and selector code (agent/lab/kube/patch.ts, selectors.ts), table-driven. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, strategicMerge } from '../../agent/lab/kube/patch.js';
import { BUILTIN_RESOURCES } from '../../agent/lab/kube/resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from '../../agent/lab/kube/selectors.js';
import { StatusError } from '../../agent/lab/kube/status.js';
import type { JsonObject, JsonValue, KubeObject } from '../../agent/lab/kube/types.js';

test('JSON merge patch (RFC 7386 examples)', () => {
  const cases: [JsonValue, JsonValue, JsonValue][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  ];
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want, JSON.stringify(patch));
});

test('JSON patch (RFC 6902): add, remove, replace, move, copy, test, and failures', () => {
  const doc = { a: { b: [1, 2] }, c: 'x' };
  assert.deepEqual(jsonPatch(doc, [{ op: 'add', path: '/a/b/1', value: 9 }]), { a: { b: [1, 9, 2] }, c: 'x' });
  assert.deepEqual(jsonPatch(doc, [{ op: 'add', path: '/a/b/-', value: 3 }]), { a: { b: [1, 2, 3] }, c: 'x' });
  assert.deepEqual(jsonPatch(doc, [{ op: 'remove', path: '/c' }]), { a: { b: [1, 2] } });
  assert.deepEqual(jsonPatch(doc, [{ op: 'replace', path: '/c', value: 'y' }]), { a: { b: [1, 2] }, c: 'y' });
  assert.deepEqual(jsonPatch(doc, [{ op: 'move', from: '/c', path: '/d' }]), { a: { b: [1, 2] }, d: 'x' });
  assert.deepEqual(jsonPatch(doc, [{ op: 'copy', from: '/c', path: '/a/e' }]), { a: { b: [1, 2], e: 'x' }, c: 'x' });
  assert.deepEqual(jsonPatch({ 'a/b': 1, 'm~n': 2 }, [{ op: 'remove', path: '/a~1b' }, { op: 'remove', path: '/m~0n' }]), {});
  assert.deepEqual(doc, { a: { b: [1, 2] }, c: 'x' }, 'the target is not changed');
  for (const bad of [[{ op: 'test', path: '/c', value: 'y' }], [{ op: 'remove', path: '/nope' }], [{ op: 'replace', path: '/a/b/5', value: 1 }], [{ op: 'frobnicate', path: '/c' }], { op: 'add' }]) {
    assert.throws(() => jsonPatch(doc, bad as JsonValue), (e: unknown) => e instanceof StatusError && e.code === 400, JSON.stringify(bad));
  }
});

test('strategic merge patch: merge keys of the core types and the directives kubectl sends', () => {
  const app: JsonObject = { name: 'app', image: 'app:1', ports: [{ containerPort: 80, name: 'http' }], env: [{ name: 'A', value: '1' }] };
  const side: JsonObject = { name: 'side', image: 'side:1' };
  const pod = { metadata: { labels: { a: '1' }, finalizers: ['x'] }, spec: { containers: [app, side], tolerations: [{ key: 'k' }] } };
  const cases: [string, JsonValue, JsonValue][] = [
    ['a container changed by name, the other kept', { spec: { containers: [{ name: 'app', image: 'app:2' }] } }, { ...pod.spec, containers: [{ ...app, image: 'app:2' }, side] }],
    ['a container deleted with $patch', { spec: { containers: [{ name: 'side', $patch: 'delete' }] } }, { ...pod.spec, containers: [app] }],
    ['env merged by name, ports by containerPort', { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }], ports: [{ containerPort: 80, protocol: 'TCP' }] }] } }, {
      ...pod.spec,
      containers: [{ ...app, env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80, name: 'http', protocol: 'TCP' }] }, side],
    }],
    ['a list without merge key is replaced', { spec: { tolerations: [{ key: 'j' }] } }, { ...pod.spec, tolerations: [{ key: 'j' }] }],
    ['$setElementOrder orders the merged list', { spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'app', image: 'app:3' }] } }, { ...pod.spec, containers: [side, { ...app, image: 'app:3' }] }],
  ];
  for (const [what, patch, wantSpec] of cases) assert.deepEqual((strategicMerge(pod, patch) as { spec: JsonValue }).spec, wantSpec, what);
  assert.deepEqual((strategicMerge(pod, { metadata: { finalizers: ['y'] } }) as { metadata: { finalizers: string[] } }).metadata.finalizers, ['x', 'y'], 'finalizers merge as a set');
  assert.deepEqual((strategicMerge(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] } }) as { metadata: { finalizers: string[] } }).metadata.finalizers, []);
  assert.deepEqual((strategicMerge(pod, { metadata: { labels: { a: null, b: '2' } } }) as { metadata: { labels: object } }).metadata.labels, { b: '2' }, 'null deletes, as kubectl label k- sends');
  const svc: JsonObject = { spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443 }] } };
  assert.deepEqual(strategicMerge(svc, { spec: { ports: [{ port: 443, targetPort: 8443 }] } }), { spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443, targetPort: 8443 }] } }, 'service ports by port');
});

const POD_TYPE = BUILTIN_RESOURCES.find((t) => t.plural === 'pods')!;

test('label selectors: each operator, and parse errors as 400', () => {
  const labels = { app: 'web', tier: 'front', 'example.com/x': 'y' };
  const cases: [string, boolean][] = [
    ['', true], ['app=web', true], ['app==web', true], ['app=db', false], ['app!=db', true], ['missing!=x', true],
    ['app in (db, web)', true], ['app in (db)', false], ['app notin (db)', true], ['app notin (web)', false], ['missing notin (x)', true],
    ['tier', true], ['missing', false], ['!missing', true], ['!tier', false], ['app=web,tier=front', true], ['app=web,tier=back', false],
    ['example.com/x=y', true], ['app in (web),!missing,tier!=back', true],
  ];
  for (const [sel, want] of cases) assert.equal(matchesLabels(parseLabelSelector(sel), labels), want, sel);
  for (const bad of ['app=we b', 'in (x)', '-bad=1', 'a=b=c']) assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof StatusError && e.code === 400, bad);
});

test('field selectors: supported fields per kind, unsupported ones refused as 400', () => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n' }, spec: { nodeName: 'node-1' }, status: { phase: 'Running' } } as unknown as KubeObject;
  const cases: [string, boolean][] = [
    ['metadata.name=p', true], ['metadata.namespace=n', true], ['spec.nodeName=node-1', true], ['spec.nodeName==node-1', true], ['spec.nodeName!=node-1', false],
    ['status.phase=Running', true], ['status.phase!=Failed,spec.nodeName=node-1', true], ['spec.nodeName=', false], ['status.podIP=', true], ['spec.hostNetwork=false', true],
  ];
  for (const [sel, want] of cases) assert.equal(matchesFields(parseFieldSelector(sel, POD_TYPE), pod), want, sel);
  assert.throws(() => parseFieldSelector('spec.containers=x', POD_TYPE), /field label not supported: spec.containers/);
  const cm = BUILTIN_RESOURCES.find((t) => t.plural === 'configmaps')!;
  assert.throws(() => parseFieldSelector('spec.nodeName=x', cm), /field label not supported/);
});
