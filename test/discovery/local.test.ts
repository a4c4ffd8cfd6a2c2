import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rename, rm, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import { silentLogger } from '../../agent/log.js';
import { LocalSource, type LocalSourceOptions } from '../../agent/discovery/local.js';
import { parseManifestText } from '../../agent/discovery/manifest.js';
import type { ManifestError, MeshModel } from '../../agent/discovery/types.js';

const DEADLINE_MS = 10_000;

/**
 * Resolves with the first `event` whose argument satisfies `accept`; rejects after the deadline.
 * Registered before the action that should cause it, so it cannot be missed.
 */
function waitFor<T>(emitter: EventEmitter, event: string, accept: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no matching '${event}' event within ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    function onEvent(value: T): void {
      if (!accept(value)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(value);
    }
    emitter.on(event, onEvent);
  });
}

function namespaceYaml(name: string, mesh: boolean): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${mesh ? '  labels:\n    weft.dev/mesh: enabled\n' : ''}`;
}

function podYaml(namespace: string, name: string, ip: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  labels: {app: ${name}}
spec:
  nodeName: n1
  containers: [{name: app}]
status:
  podIP: ${ip}
  phase: Running
`;
}

describe('LocalSource', () => {
  let dir: string;
  let source: LocalSource | undefined;

  /** Written the way the lab writes: a temporary dot file renamed into place. */
  async function put(file: string, text: string): Promise<void> {
    const tmp = join(dir, `.${file}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, join(dir, file));
  }

  async function open(options: Partial<LocalSourceOptions> = {}): Promise<{ source: LocalSource; model: MeshModel }> {
    source = new LocalSource({ dir, logger: silentLogger, debounceMs: 20, rescanMs: 500, ...options });
    const model = await source.start();
    return { source, model };
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-local-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start on a directory that does not exist, saying so', async () => {
    const missing = join(dir, 'nope');
    const s = new LocalSource({ dir: missing, logger: silentLogger });
    await assert.rejects(s.start(), (err) => isWeftError(err, 'WEFT_ERR_CONFIG') && err.message.includes(missing) && err.message.includes('does not exist'));
    await s.stop();
  });

  it('starts with what is there, then follows added pods and namespace label flips', async () => {
    await put('ns.bookinfo.yaml', namespaceYaml('bookinfo', false));
    const { source: s, model } = await open();
    assert.equal(model.generation, 1);
    assert.deepEqual([...model.namespaces.keys()], ['bookinfo']);
    assert.equal(s.current(), model);

    const added = waitFor<MeshModel>(s, 'update');
    await put('pod.bookinfo.details.yaml', podYaml('bookinfo', 'details', '198.18.1.2'));
    const m2 = await added;
    assert.equal(m2.generation, 2);
    assert.equal(m2.workloadByIp('198.18.1.2')?.key, 'bookinfo/details');
    assert.equal(m2.workloads.get('bookinfo/details')!.inMesh, false);
    assert.equal(s.current(), m2);

    const flipped = waitFor<MeshModel>(s, 'update');
    await put('ns.bookinfo.yaml', namespaceYaml('bookinfo', true));
    const m3 = await flipped;
    assert.equal(m3.generation, 3);
    assert.equal(m3.workloads.get('bookinfo/details')!.inMesh, true);
  });

  it('keeps the last good content of a malformed file, reports it, and applies the fix', async () => {
    await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
    const { source: s } = await open();

    const invalid = waitFor<ManifestError[]>(s, 'invalid');
    const updates: MeshModel[] = [];
    s.on('update', (m: MeshModel) => updates.push(m));
    // The pod file is broken and, in the same burst, another file adds a pod: that one applies.
    await put('pod.default.a.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  nodeName: n1\n');
    const other = waitFor<MeshModel>(s, 'update', (m) => m.workloads.has('default/b'));
    await put('pod.default.b.yaml', podYaml('default', 'b', '198.18.1.3'));
    const errors = await invalid;
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.file, 'pod.default.a.yaml');
    assert.equal(errors[0]!.reason, 'Pod default/a: spec.containers: required');
    const withB = await other;
    assert.equal(withB.workloads.get('default/a')?.ip, '198.18.1.2', 'last good content of a stays in force');
    assert.equal(s.current().workloads.get('default/a')?.ip, '198.18.1.2');

    const fixed = waitFor<MeshModel>(s, 'update', (m) => m.workloads.get('default/a')?.ip === '198.18.1.9');
    await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.9'));
    const m = await fixed;
    assert.equal(m.workloadByIp('198.18.1.2'), undefined);
    for (const u of updates) assert.ok(u.workloads.has('default/a'), 'no update ever dropped the pod of the malformed file');
  });

  it('removes the objects of a deleted file', async () => {
    await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
    await put('pod.default.b.yaml', podYaml('default', 'b', '198.18.1.3'));
    const { source: s, model } = await open();
    assert.equal(model.workloads.size, 2);
    const removed = waitFor<MeshModel>(s, 'update');
    await unlink(join(dir, 'pod.default.a.yaml'));
    const m = await removed;
    assert.deepEqual([...m.workloads.keys()], ['default/b']);
    assert.equal(m.workloadByIp('198.18.1.2'), undefined);
  });

  it('emits no update for a rewrite that does not change the model', async () => {
    await put('ns.a.yaml', namespaceYaml('a', true));
    // No watcher, rare re-scans: refresh() decides exactly when the directory is read.
    const { source: s, model } = await open({ watch: false, rescanMs: 3_600_000 });
    const updates: MeshModel[] = [];
    s.on('update', (m: MeshModel) => updates.push(m));
    // Same objects, new inode, other formatting and key order: not a change.
    await put('ns.a.yaml', `# rewritten\napiVersion: v1\nmetadata:\n  labels: {weft.dev/mesh: enabled}\n  name: a\nkind: Namespace\n`);
    await s.refresh();
    assert.equal(updates.length, 0);
    assert.equal(s.current(), model);
    await put('ns.b.yaml', namespaceYaml('b', false));
    await s.refresh();
    assert.equal(updates.length, 1);
    assert.equal(updates[0]!.generation, model.generation + 1);
    assert.ok(updates[0]!.namespaces.has('b'));
  });

  it('refuses a file that redefines an object of another file, and takes it once the other file is gone', async () => {
    await put('a.yaml', podYaml('default', 'x', '198.18.1.2'));
    const { source: s } = await open();
    const invalid = waitFor<ManifestError[]>(s, 'invalid');
    await put('b.yaml', podYaml('default', 'x', '198.18.1.7'));
    const errors = await invalid;
    assert.equal(errors[0]!.file, 'b.yaml');
    assert.equal(errors[0]!.reason, 'Pod default/x: also defined in a.yaml');
    assert.equal(s.current().workloads.get('default/x')!.ip, '198.18.1.2');

    const moved = waitFor<MeshModel>(s, 'update', (m) => m.workloads.get('default/x')?.ip === '198.18.1.7');
    await unlink(join(dir, 'a.yaml'));
    await moved;
  });

  it('still follows changes with fs.watch off, through the periodic re-scan', async () => {
    const { source: s, model } = await open({ watch: false, rescanMs: 50 });
    assert.equal(model.generation, 1, 'an empty directory is a model too');
    assert.equal(model.workloads.size, 0);
    const added = waitFor<MeshModel>(s, 'update');
    await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
    const m = await added;
    assert.ok(m.workloads.has('default/a'));
  });

  it('keeps the model while the directory is gone and follows it when it is back', async () => {
    await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
    const { source: s, model } = await open({ watch: false, rescanMs: 3_600_000 });
    await rm(dir, { recursive: true });
    await s.refresh();
    assert.equal(s.current(), model, 'a vanished directory does not empty the mesh');
    await mkdir(dir);
    const back = waitFor<MeshModel>(s, 'update');
    await put('pod.default.b.yaml', podYaml('default', 'b', '198.18.1.3'));
    await s.refresh();
    const m = await back;
    assert.deepEqual([...m.workloads.keys()], ['default/b']);
  });

  it('reports the files that are invalid at start and loads the rest', async () => {
    await put('good.yaml', podYaml('default', 'a', '198.18.1.2'));
    await put('bad.yaml', 'kind: [\n');
    const s = new LocalSource({ dir, logger: silentLogger, debounceMs: 20 });
    source = s;
    const invalid = waitFor<ManifestError[]>(s, 'invalid');
    const model = await s.start();
    const errors = await invalid;
    assert.deepEqual(errors.map((e) => e.file), ['bad.yaml']);
    assert.match(errors[0]!.reason, /^invalid YAML: /);
    assert.ok(model.workloads.has('default/a'));
  });

  it('parses a file again only when its content changed, not when it is rewritten the same or touched', async () => {
    await put('a.yaml', podYaml('default', 'a', '198.18.1.2'));
    await put('b.yaml', podYaml('default', 'b', '198.18.1.3'));
    const parsed: string[] = [];
    const counting = (text: string, file: string): ReturnType<typeof parseManifestText> => {
      parsed.push(file);
      return parseManifestText(text, file);
    };
    const { source: s } = await open({ watch: false, rescanMs: 3_600_000, parse: counting });
    assert.deepEqual([...parsed].sort(), ['a.yaml', 'b.yaml']);
    // A new inode with the same bytes, and a new mtime on the same bytes: both read, neither parsed.
    await put('a.yaml', podYaml('default', 'a', '198.18.1.2'));
    await utimes(join(dir, 'b.yaml'), new Date(), new Date(Date.now() + 60_000));
    await s.refresh();
    assert.equal(parsed.length, 2, `parsed again: ${parsed.slice(2).join(', ')}`);
    const moved = waitFor<MeshModel>(s, 'update', (m) => m.workloads.get('default/a')?.ip === '198.18.1.9');
    await put('a.yaml', podYaml('default', 'a', '198.18.1.9'));
    await s.refresh();
    await moved;
    assert.deepEqual(parsed.slice(2), ['a.yaml']);
  });

  it('follows a directory swapped in by rename, and watches the new one', async () => {
    const { source: s } = await open({ rescanMs: 3_600_000 });
    const staging = `${dir}.staging`;
    try {
      await mkdir(staging);
      await writeFile(join(staging, 'pod.default.a.yaml'), podYaml('default', 'a', '198.18.1.2'));
      const swapped = waitFor<MeshModel>(s, 'update', (m) => m.workloads.has('default/a'));
      await rename(staging, dir);
      await swapped;
      // Only the watcher can deliver this one (the periodic re-scan is an hour away).
      const next = waitFor<MeshModel>(s, 'update', (m) => m.workloads.has('default/b'));
      await put('pod.default.b.yaml', podYaml('default', 'b', '198.18.1.3'));
      const m = await next;
      assert.deepEqual([...m.workloads.keys()].sort(), ['default/a', 'default/b']);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });
  describe('size limits and kinds not read (finding 11)', () => {
    it('refuses a 50 MB file from its size alone, without reading or parsing it, and says why', async () => {
      await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
      const parsed: string[] = [];
      const { source: s } = await open({ watch: false, rescanMs: 3_600_000, parse: (text, file) => (parsed.push(file), parseManifestText(text, file)) });
      const invalid = waitFor<ManifestError[]>(s, 'invalid');
      // Sparse: 50 MB by its size, nothing written.
      await writeFile(join(dir, 'configmap.yaml'), '');
      await truncate(join(dir, 'configmap.yaml'), 50 * 1024 * 1024);
      await s.refresh();
      const errors = await invalid;
      assert.equal(errors[0]!.code, 'WEFT_ERR_MANIFEST_TOO_LARGE');
      assert.match(errors[0]!.reason, /^file of 50 MiB is over the 8 MiB a manifest file may have; not read/);
      assert.deepEqual(parsed, ['pod.default.a.yaml'], 'the big file was never parsed');
      assert.deepEqual(s.refusals().map((r) => [r.file, r.code]), [['configmap.yaml', 'WEFT_ERR_MANIFEST_TOO_LARGE']]);
      assert.ok(s.current().workloads.has('default/a'));
    });

    it('refuses a document over 1.5 MiB (a pod with 100k labels), keeping the last good version', async () => {
      await put('pod.default.a.yaml', podYaml('default', 'a', '198.18.1.2'));
      const { source: s } = await open({ watch: false, rescanMs: 3_600_000 });
      const invalid = waitFor<ManifestError[]>(s, 'invalid');
      const labels = Array.from({ length: 100_000 }, (_, i) => `    label-${i}: value-${i}\n`).join('');
      await put('pod.default.a.yaml', `apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n${labels}spec:\n  containers: [{name: app}]\nstatus:\n  podIP: 198.18.1.9\n`);
      await s.refresh();
      const errors = await invalid;
      assert.equal(errors[0]!.code, 'WEFT_ERR_OBJECT_TOO_LARGE');
      assert.match(errors[0]!.reason, /^document of 2\.\d MiB is over the 1\.5 MiB an object may have/);
      assert.equal(s.current().workloads.get('default/a')?.ip, '198.18.1.2');
      assert.equal(s.refusals()[0]?.code, 'WEFT_ERR_OBJECT_TOO_LARGE');
    });

    it('does not keep kinds the agent does not read, and a change of one is no update', async () => {
      const configMap = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  key: ${v}\n`;
      await put('cm.yaml', configMap('1'));
      const { source: s, model } = await open({ watch: false, rescanMs: 3_600_000 });
      assert.deepEqual(model.others, []);
      const updates: MeshModel[] = [];
      s.on('update', (m: MeshModel) => updates.push(m));
      await put('cm.yaml', configMap('2'));
      await s.refresh();
      assert.equal(updates.length, 0);
    });

    it('takes endpoints from EndpointSlice manifests for a selectorless service (finding 4)', async () => {
      await put('svc.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  clusterIP: 198.19.128.9\n  ports: [{port: 5432}]\n');
      await put('slice.yaml', 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: db-1\n  labels: {kubernetes.io/service-name: db}\naddressType: IPv4\nports: [{name: "", port: 5432}]\nendpoints:\n  - addresses: [198.19.0.50]\n');
      const { model } = await open({ watch: false, rescanMs: 3_600_000 });
      assert.deepEqual(model.serviceByVip('198.19.128.9')?.ports.get(5432)?.map((e) => `${e.ip}:${e.port}`), ['198.19.0.50:5432']);
    });
  });
});
