// weft cni-install: the plugin lands in the bin dir (executable), its entry is appended once to
// the first *.conflist (idempotent), and --remove undoes both, leaving the other plugins as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCni, removeCni, CNI_PLUGIN_SOURCE } from '../../agent/capture/cni-install.js';
import { isWeftError } from '../../agent/errors.js';

function dirs() {
  const root = mkdtempSync(join(tmpdir(), 'weft-failcniinst-'));
  const binDir = join(root, 'bin');
  const confDir = join(root, 'net.d');
  mkdirSync(binDir);
  mkdirSync(confDir);
  return { root, binDir, confDir, runDir: '/var/run/weft' };
}

const calico = { cniVersion: '0.3.1', name: 'k8s-pod-network', plugins: [{ type: 'calico', ipam: { type: 'calico-ipam' } }, { type: 'portmap', capabilities: { portMappings: true } }] };

test('installs the plugin and appends it once to the first conflist', () => {
  const d = dirs();
  try {
    writeFileSync(join(d.confDir, '10-calico.conflist'), JSON.stringify(calico));
    writeFileSync(join(d.confDir, '99-other.conflist'), JSON.stringify({ ...calico, name: 'other' }));
    const first = installCni(d);
    assert.equal(first.added, true);
    assert.equal(first.conflist, join(d.confDir, '10-calico.conflist'));
    assert.equal(readFileSync(join(d.binDir, 'weft-cni'), 'utf8'), readFileSync(CNI_PLUGIN_SOURCE, 'utf8'));
    assert.equal(statSync(join(d.binDir, 'weft-cni')).mode & 0o777, 0o755);
    assert.equal(installCni(d).added, false);
    const conf = JSON.parse(readFileSync(first.conflist, 'utf8')) as typeof calico;
    assert.deepEqual(conf.plugins.map((p) => p.type), ['calico', 'portmap', 'weft-cni']);
    assert.deepEqual(conf.plugins[2], { type: 'weft-cni', runDir: '/var/run/weft' });
    assert.equal(JSON.parse(readFileSync(join(d.confDir, '99-other.conflist'), 'utf8')).plugins.length, 2, 'other files untouched');
    removeCni(d);
    assert.deepEqual(JSON.parse(readFileSync(first.conflist, 'utf8')), calico);
    assert.equal(existsSync(join(d.binDir, 'weft-cni')), false);
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('refuses a node without a network configuration to chain after', () => {
  const d = dirs();
  try {
    assert.throws(() => installCni(d), (err: unknown) => isWeftError(err, 'WEFT_ERR_CONFIG') && /no \*\.conflist/.test(err.message));
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('a single-plugin .conf becomes a .conflist with weft-cni chained after it (istio-cni does the same)', () => {
  const d = dirs();
  try {
    const flannel = { cniVersion: '0.3.1', name: 'cbr0', type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } };
    writeFileSync(join(d.confDir, '10-flannel.conf'), JSON.stringify(flannel));
    writeFileSync(join(d.confDir, '99-other.conflist'), JSON.stringify({ cniVersion: '0.3.1', name: 'other', plugins: [{ type: 'bridge' }] }));
    const first = installCni(d);
    assert.equal(first.conflist, join(d.confDir, '10-flannel.conflist'));
    assert.equal(existsSync(join(d.confDir, '10-flannel.conf')), false, 'the .conf is replaced: the runtime must read the list');
    const conf = JSON.parse(readFileSync(first.conflist, 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    assert.equal(conf.cniVersion, '0.3.1');
    assert.equal(conf.name, 'cbr0');
    assert.deepEqual(conf.plugins, [{ type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } }, { type: 'weft-cni', runDir: '/var/run/weft' }]);
    // Idempotent from here on, and removable.
    assert.equal(installCni(d).added, false);
    removeCni(d);
    assert.deepEqual((JSON.parse(readFileSync(first.conflist, 'utf8')) as typeof conf).plugins.map((p) => p['type']), ['flannel']);
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});
