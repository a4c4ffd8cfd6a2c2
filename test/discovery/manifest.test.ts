import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import {
  formatManifestError,
  isManifestFileName,
  isPod,
  isService,
  loadManifestDir,
  ownerIndex,
  oversizeDocumentsIn,
  parseManifestText,
  reconcileFiles,
} from '../../agent/discovery/manifest.js';

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: details
spec:
  containers:
  - name: app
    ports:
    - containerPort: 9080
      name: http
status:
  podIP: 198.18.1.2
  phase: Running
`;

describe('parseManifestText: valid documents', () => {
  it('reads every kind, defaults the namespace of namespaced kinds and drops it from cluster-scoped ones', () => {
    const text = [
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  namespace: ignored\n  labels:\n    weft.dev/mesh: enabled\n',
      'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reviews\n  namespace: bookinfo\n',
      POD,
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: details\nspec:\n  clusterIP: 198.19.128.5\n  selector: {app: details}\n  ports:\n  - port: 9080\n    targetPort: http\n',
      'apiVersion: security.weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny-all\n  namespace: bookinfo\nspec:\n  action: DENY\n',
      '# only a comment\n',
    ].join('---\n');
    const { objects, errors } = parseManifestText(text, 'all.yaml');
    assert.deepEqual(errors, []);
    assert.deepEqual(
      objects.map((o) => [o.kind, o.metadata.namespace, o.metadata.name]),
      [
        ['Namespace', undefined, 'bookinfo'],
        ['ServiceAccount', 'bookinfo', 'reviews'],
        ['Pod', 'default', 'details'],
        ['Service', 'default', 'details'],
        ['AuthorizationPolicy', 'bookinfo', 'deny-all'],
      ],
    );
    const pod = objects[2]!;
    assert.ok(isPod(pod));
    assert.equal(pod.status?.podIP, '198.18.1.2');
    assert.equal(pod.spec.containers[0]!.ports![0]!.name, 'http');
    const svc = objects[3]!;
    assert.ok(isService(svc));
    assert.equal(svc.spec.ports?.[0]!.targetPort, 'http');
    assert.deepEqual((objects[4] as { spec?: unknown }).spec, { action: 'DENY' });
  });

  it('passes a Service of another API group through instead of validating it as a core Service', () => {
    const { objects, errors } = parseManifestText(
      'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\nspec:\n  template: {}\n',
      'kn.yaml',
    );
    assert.deepEqual(errors, []);
    assert.equal(objects.length, 1);
    assert.equal(isService(objects[0]!), false);
  });
});

describe('parseManifestText: errors name the file, the document, the line and the field', () => {
  const cases: { name: string; docs: string[]; document: number; line?: number; reason: RegExp }[] = [
    {
      name: 'pod without containers',
      docs: [POD, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: reviews\nspec:\n  nodeName: n1\n'],
      document: 1,
      reason: /^Pod default\/reviews: spec\.containers: required$/,
    },
    {
      name: 'pod with an empty container list',
      docs: ['apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n'],
      document: 0,
      line: 6,
      reason: /^Pod default\/p: spec\.containers: must list at least one container$/,
    },
    {
      name: 'missing metadata.name',
      docs: ['apiVersion: v1\nkind: Namespace\nmetadata:\n  labels: {a: b}\n'],
      document: 0,
      reason: /^Namespace <unnamed>: metadata\.name: required$/,
    },
    {
      name: 'label value that is not a string, and a bad pod IP, both reported',
      docs: ['apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns1\n  labels:\n    version: 1.0\nspec:\n  containers: [{name: a}]\nstatus:\n  podIP: 198.18.1\n'],
      document: 0,
      line: 7,
      reason: /^Pod ns1\/p: metadata\.labels\.version: expected string; status\.podIP: must be an IP address$/,
    },
    {
      name: 'service port out of range',
      docs: ['apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 70000\n'],
      document: 0,
      line: 7,
      reason: /^Service default\/s: spec\.ports\[0\]\.port: /,
    },
    {
      name: 'numeric string as targetPort',
      docs: ['apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n    targetPort: "8080"\n'],
      document: 0,
      line: 8,
      reason: /spec\.ports\[0\]\.targetPort: must be a port number \(1-65535\) or a container port name/,
    },
    {
      name: 'service without ports',
      docs: ['apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  selector: {app: s}\n'],
      document: 0,
      reason: /^Service default\/s: spec\.ports: required$/,
    },
    {
      name: 'two unnamed service ports',
      docs: ['apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n  - port: 81\n'],
      document: 0,
      reason: /spec\.ports\[0\]\.name: required when a service has more than one port/,
    },
    {
      name: 'duplicate container port name',
      docs: ['apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    ports: [{containerPort: 1, name: web}]\n  - name: b\n    ports: [{containerPort: 2, name: web}]\n'],
      document: 0,
      reason: /spec\.containers\[1\]\.ports\[0\]\.name: duplicate port name "web"/,
    },
    {
      name: 'wrong apiVersion on a core kind',
      docs: ['apiVersion: v2\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: [{name: a}]\n'],
      document: 0,
      reason: /^Pod default\/p: apiVersion: must be "v1"$/,
    },
    {
      name: 'unknown kind without apiVersion',
      docs: ['kind: HTTPRoute\nmetadata:\n  name: r\n'],
      document: 0,
      reason: /^HTTPRoute default\/r: apiVersion: required$/,
    },
    {
      name: 'a document that is not a mapping',
      docs: [POD, '- just\n- a list\n'],
      document: 1,
      reason: /must be a mapping/,
    },
    {
      name: 'a List',
      docs: ['apiVersion: v1\nkind: List\nitems: []\n'],
      document: 0,
      reason: /write one object per YAML document/,
    },
    {
      name: 'broken YAML',
      docs: [POD, 'apiVersion: v1\nkind: Pod\nmetadata: {name: [oops\n'],
      document: 1,
      reason: /^invalid YAML: /,
    },
    {
      name: 'duplicate key in a mapping',
      docs: ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n'],
      document: 0,
      reason: /^invalid YAML: .*unique/,
    },
    {
      name: 'the same object twice in one file',
      docs: [POD, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n', POD],
      document: 2,
      reason: /^Pod default\/details: defined twice in this file \(doc 1 and doc 3\)$/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { errors } = parseManifestText(c.docs.join('---\n'), 'pods.yaml');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      const e = errors[0]!;
      assert.equal(e.file, 'pods.yaml');
      assert.equal(e.document, c.document);
      assert.match(e.reason, c.reason);
      if (c.line !== undefined) assert.equal(e.line, c.line);
      assert.equal(typeof e.line, 'number');
    });
  }

  it('keeps the valid documents of a file that has an invalid one', () => {
    const { objects, errors } = parseManifestText([POD, 'apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {}\n'].join('---\n'), 'p.yaml');
    assert.equal(errors.length, 1);
    assert.deepEqual(objects.map((o) => o.metadata.name), ['details']);
  });

  it('formats an error as file, 1-based document, line and reason', () => {
    const { errors } = parseManifestText([POD, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: details2\nspec:\n  nodeName: n1\n'].join('---\n'), 'pods.yaml');
    assert.equal(formatManifestError(errors[0]!), 'pods.yaml doc 2 (line 20): Pod default/details2: spec.containers: required');
  });
});

describe('loadManifestDir', () => {
  it('reads *.yaml and *.yml only, applies files atomically and reports a duplicate naming both files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-discovery-'));
    try {
      await writeFile(join(dir, 'a.yaml'), POD);
      // Redefines the pod of a.yaml: refused as a whole, so its namespace does not appear either.
      await writeFile(join(dir, 'b.yml'), `apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\n${POD}`);
      await writeFile(join(dir, 'c.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: good}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec: {}\n');
      await writeFile(join(dir, 'd.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n');
      await writeFile(join(dir, 'notes.txt'), 'not: a manifest');
      await writeFile(join(dir, '.a.yaml.tmp'), 'half a fil');
      const { objects, errors } = await loadManifestDir(dir);
      assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`), ['Pod/details', 'Namespace/fine']);
      assert.deepEqual(
        errors.map((e) => [e.file, e.document]),
        [
          ['b.yml', 1],
          ['c.yaml', 1],
        ],
      );
      assert.match(errors[0]!.reason, /^Pod default\/details: also defined in a\.yaml$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with WEFT_ERR_CONFIG when the directory does not exist', async () => {
    await assert.rejects(loadManifestDir(join(tmpdir(), 'weft-no-such-dir-' + process.pid)), (err) => isWeftError(err, 'WEFT_ERR_CONFIG'));
  });

  it('recognises manifest file names', () => {
    const table: [string, boolean][] = [
      ['pod.default.details-v1.yaml', true],
      ['x.yml', true],
      ['.x.yaml', false],
      ['..data', false],
      ['x.yaml.tmp', false],
      ['x.json', false],
    ];
    for (const [name, want] of table) assert.equal(isManifestFileName(name), want, name);
  });
});

describe('reconcileFiles', () => {
  const pod = (ip: string): string => POD.replace('198.18.1.2', ip);
  it('accepts an object moving between files in one round, whichever file comes first', () => {
    const before = parseManifestText(pod('198.18.1.2'), 'b.yaml');
    const previous = new Map([['b.yaml', before.objects]]);
    const gains = parseManifestText(pod('198.18.1.3'), 'a.yaml');
    const loses = parseManifestText('apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n', 'b.yaml');
    const { accepted, rejected, conflicted } = reconcileFiles(previous, [gains, loses]);
    assert.equal(rejected.size, 0);
    assert.equal(conflicted.size, 0);
    assert.deepEqual(accepted.get('a.yaml'), gains.objects);
    assert.deepEqual(accepted.get('b.yaml'), loses.objects);
  });

  it('keeps the previous content of a refused file', () => {
    const good = parseManifestText(pod('198.18.1.2'), 'a.yaml');
    const bad = parseManifestText('apiVersion: v1\nkind: Pod\nmetadata: {name: details}\nspec: {}\n', 'a.yaml');
    const { accepted, rejected } = reconcileFiles(new Map([['a.yaml', good.objects]]), [bad]);
    assert.equal(accepted.get('a.yaml'), good.objects);
    assert.equal(rejected.get('a.yaml')![0]!.reason, 'Pod default/details: spec.containers: required');
  });
});

describe('reconcileFiles with a kept owner index', () => {
  const pod = (ip: string): string => POD.replace('198.18.1.2', ip);
  it('decides as a fresh index does over rounds, and keeps the index equal to one built anew', () => {
    let accepted = new Map<string, readonly import('../../agent/discovery/types.js').ManifestObject[]>();
    const owners = new Map<string, string>();
    const rounds = [
      [parseManifestText(pod('198.18.1.2'), 'b.yaml')],
      // a.yaml takes the pod b.yaml has: refused while b.yaml holds it.
      [parseManifestText(pod('198.18.1.3'), 'a.yaml')],
      // b.yaml lets it go: a.yaml (retried) gets it.
      [parseManifestText('apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n', 'b.yaml'), parseManifestText(pod('198.18.1.3'), 'a.yaml')],
    ];
    const refusedPerRound: string[][] = [];
    for (const candidates of rounds) {
      const fresh = reconcileFiles(accepted, candidates);
      const kept = reconcileFiles(accepted, candidates, owners);
      assert.deepEqual([...kept.rejected.keys()], [...fresh.rejected.keys()]);
      assert.deepEqual(kept.accepted, fresh.accepted);
      accepted = kept.accepted;
      assert.deepEqual(owners, ownerIndex(accepted));
      refusedPerRound.push([...kept.rejected.keys()]);
    }
    assert.deepEqual(refusedPerRound, [[], ['a.yaml'], []]);
  });
});

describe('oversizeDocumentsIn', () => {
  it('names each document over 1.5 MiB with its number and the line of its separator, from the bytes', () => {
    const big = `kind: ConfigMap\ndata:\n  a: ${'x'.repeat(1.6 * 1024 * 1024)}\n`;
    const text = `kind: Namespace\n---\n${big}--- # two\nkind: Namespace\n---\n${big}`;
    const result = oversizeDocumentsIn(Buffer.from(text), 'f.yaml');
    assert.deepEqual(result?.errors.map((e) => [e.document, e.line, e.code]), [[1, 2, 'WEFT_ERR_OBJECT_TOO_LARGE'], [3, 8, 'WEFT_ERR_OBJECT_TOO_LARGE']]);
    // The text path gives the same errors.
    assert.deepEqual(parseManifestText(text, 'f.yaml').errors, result?.errors);
    assert.equal(oversizeDocumentsIn(Buffer.from('kind: Namespace\n'), 'f.yaml'), undefined);
    // `---` inside a line is no separator.
    assert.equal(oversizeDocumentsIn(Buffer.from(`a: b---c\n${big}`), 'f.yaml')?.errors.length, 1);
  });
});
