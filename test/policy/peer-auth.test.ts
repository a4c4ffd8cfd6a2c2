import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies, mtlsModeForPort } from '../../policy/engine.js';

const pa = (name: string, namespace: string, spec: Record<string, unknown>, creationTimestamp?: string) => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace, ...(creationTimestamp === undefined ? {} : { creationTimestamp }) },
  spec,
});
const mode = (m: string) => ({ mtls: { mode: m } });
const sel = (labels: Record<string, string>, rest: Record<string, unknown>) => ({ selector: { matchLabels: labels }, ...rest });

const DB = { namespace: 'data', labels: { app: 'db' } };

test('precedence: workload over namespace over mesh, UNSET inherits, default PERMISSIVE', () => {
  const mesh = (m: string) => pa('mesh', 'weft-system', mode(m));
  const ns = (m: string) => pa('ns', 'data', mode(m));
  const wl = (m: string) => pa('wl', 'data', sel({ app: 'db' }, mode(m)));
  const table: [string, unknown[], string, string | undefined][] = [
    ['nothing: PERMISSIVE', [], 'PERMISSIVE', undefined],
    ['mesh STRICT', [mesh('STRICT')], 'STRICT', 'weft-system/mesh'],
    ['mesh UNSET: default', [mesh('UNSET')], 'PERMISSIVE', undefined],
    ['namespace overrides mesh', [mesh('STRICT'), ns('PERMISSIVE')], 'PERMISSIVE', 'data/ns'],
    ['namespace UNSET inherits mesh', [mesh('STRICT'), ns('UNSET')], 'STRICT', 'weft-system/mesh'],
    ['namespace without mtls inherits mesh', [mesh('STRICT'), pa('ns', 'data', {})], 'STRICT', 'weft-system/mesh'],
    ['workload overrides namespace', [ns('STRICT'), wl('PERMISSIVE')], 'PERMISSIVE', 'data/wl'],
    ['workload overrides mesh', [mesh('PERMISSIVE'), wl('STRICT')], 'STRICT', 'data/wl'],
    ['workload UNSET inherits namespace', [mesh('PERMISSIVE'), ns('STRICT'), wl('UNSET')], 'STRICT', 'data/ns'],
    ['workload DISABLE', [mesh('STRICT'), wl('DISABLE')], 'DISABLE', 'data/wl'],
    ['other namespace does not apply', [pa('ns', 'web', mode('STRICT'))], 'PERMISSIVE', undefined],
    ['selector not matching does not apply', [pa('wl', 'data', sel({ app: 'cache' }, mode('STRICT')))], 'PERMISSIVE', undefined],
    ['empty matchLabels is namespace-wide', [pa('wl', 'data', sel({}, mode('STRICT')))], 'STRICT', 'data/wl'],
    ['root-namespace selector is ignored', [pa('rootsel', 'weft-system', sel({ app: 'db' }, mode('STRICT')))], 'PERMISSIVE', undefined],
  ];
  for (const [name, objects, expected, policy] of table) {
    const store = compilePolicies(objects);
    assert.equal(store.rejected.length, 0, name);
    const w = store.forWorkload(DB);
    assert.equal(w.mtls.mode, expected, name);
    assert.equal(w.mtls.policy, policy, name);
    assert.equal(store.mtlsModeFor(DB, 5432), expected, name);
  }
  const rootSel = compilePolicies([pa('rootsel', 'weft-system', sel({ app: 'db' }, mode('STRICT')))]);
  assert.ok(rootSel.warnings.some((w) => w.code === 'peer-authentication-root-selector' && w.policy === 'weft-system/rootsel'));
});

test('port-level modes override the workload mode for their port only', () => {
  const table: [string, unknown[], [number, string][]][] = [
    [
      'STRICT workload, PERMISSIVE port',
      [pa('wl', 'data', sel({ app: 'db' }, { mtls: { mode: 'STRICT' }, portLevelMtls: { '9000': { mode: 'PERMISSIVE' } } }))],
      [[9000, 'PERMISSIVE'], [5432, 'STRICT']],
    ],
    [
      'UNSET workload inherits namespace STRICT, port DISABLE',
      [pa('ns', 'data', mode('STRICT')), pa('wl', 'data', sel({ app: 'db' }, { portLevelMtls: { '15020': { mode: 'DISABLE' } } }))],
      [[15020, 'DISABLE'], [5432, 'STRICT']],
    ],
    [
      'PERMISSIVE mesh, STRICT port',
      [pa('mesh', 'weft-system', mode('PERMISSIVE')), pa('wl', 'data', sel({ app: 'db' }, { portLevelMtls: { '5432': { mode: 'STRICT' } } }))],
      [[5432, 'STRICT'], [80, 'PERMISSIVE']],
    ],
    [
      'UNSET port inherits the workload',
      [pa('wl', 'data', sel({ app: 'db' }, { mtls: { mode: 'STRICT' }, portLevelMtls: { '5432': { mode: 'UNSET' } } }))],
      [[5432, 'STRICT']],
    ],
  ];
  for (const [name, objects, ports] of table) {
    const store = compilePolicies(objects);
    assert.equal(store.rejected.length, 0, `${name}: ${JSON.stringify(store.rejected)}`);
    const w = store.forWorkload(DB);
    for (const [port, expected] of ports) {
      assert.equal(store.mtlsModeFor(DB, port), expected, `${name} port ${port}`);
      assert.equal(mtlsModeForPort(w, port), expected, `${name} port ${port}`);
    }
  }
});

test('competing policies at one level: the oldest wins, with a warning', () => {
  const older = pa('b-older', 'data', mode('STRICT'), '2024-01-01T00:00:00Z');
  const newer = pa('a-newer', 'data', mode('PERMISSIVE'), '2025-01-01T00:00:00Z');
  const store = compilePolicies([newer, older]);
  assert.equal(store.mtlsModeFor(DB, 1), 'STRICT');
  assert.ok(store.warnings.some((w) => w.code === 'peer-authentication-conflict' && w.policy === 'data/b-older'));

  // Without timestamps the name decides, so the outcome does not depend on input order.
  const undated = [pa('b', 'data', mode('STRICT')), pa('a', 'data', mode('PERMISSIVE'))];
  assert.equal(compilePolicies(undated).mtlsModeFor(DB, 1), 'PERMISSIVE');
  assert.equal(compilePolicies([...undated].reverse()).mtlsModeFor(DB, 1), 'PERMISSIVE');

  const wlOld = pa('wl-old', 'data', sel({ app: 'db' }, mode('DISABLE')), '2023-01-01T00:00:00Z');
  const wlNew = pa('wl-new', 'data', sel({ app: 'db' }, mode('STRICT')), '2024-01-01T00:00:00Z');
  const w = compilePolicies([wlNew, wlOld]).forWorkload(DB);
  assert.equal(w.mtls.mode, 'DISABLE');
  assert.deepEqual(w.warnings.map((x) => [x.code, x.policy]), [['peer-authentication-conflict', 'data/wl-old']]);
});
