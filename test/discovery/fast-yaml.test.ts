import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadPlainDocuments } from '../../agent/discovery/fast-yaml.js';
import { parseManifestText, reconcileFiles } from '../../agent/discovery/manifest.js';

/** What the `yaml` package (the reference) makes of a text. */
function reference(text: string): unknown[] {
  return parseAllDocuments(text, { uniqueKeys: true }).map((d) => (d.contents === null ? null : d.toJS({ maxAliasCount: 100 })));
}

describe('loadPlainDocuments: the fast path reads plain YAML exactly as the yaml package does', () => {
  const same = [
    'a: 1\nb: 014\nc: 0o14\nd: 0x1F\ne: +12\nf: -0',
    'a: 1.5\nb: .5\nc: 5.\nd: 1e3\ne: 1E+2\nf: -.inf\ng: .Inf\nh: 0.1e-2',
    'a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: true\ng: False\nh: TRUE\ni: yes\nj: on\nk: off',
    'a: 0b101\nb: -0x1\nc: +0o7\nd: 1_000\ne: 2001-12-14\nf: 12:30\ng: 08',
    "a: \"\\u00e9\\x41\\n\"\nb: 'it''s'\nc: |\n  x\n  y\nd: >-\n  x\n  y\n",
    'a: [1, "2", {b: c}]\nb: {c: [d]}\n- ',
    '<<: {x: 1}\ny: 2',
    'a: 1\n---\nb: 2\n---\n',
    '# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n',
  ];
  for (const text of same) {
    it(`reads ${JSON.stringify(text.slice(0, 40))} as yaml does`, () => {
      let expected: unknown[] | undefined;
      const errors = parseAllDocuments(text, { uniqueKeys: true }).flatMap((d) => d.errors);
      if (errors.length === 0) expected = reference(text);
      const fast = loadPlainDocuments(text);
      // Where yaml finds an error the fast path must step aside; elsewhere take the text and give
      // the same values.
      if (expected === undefined) assert.equal(fast, undefined);
      else assert.deepEqual(fast, expected);
    });
  }

  const leftToYaml = [
    ['anchors and aliases', 'a: &x [1]\nb: *x'],
    ['tags', 'a: !!float 1'],
    ['directives', '%YAML 1.1\n---\na: yes'],
    ['complex keys', '? [1, 2]\n: x'],
    ['flow collections as keys', '[1, 2]: x'],
    ['null keys', '~: x'],
    ['the null word as a key', 'null: x'],
    ['duplicate keys', 'a: 1\na: 2'],
    ['invalid YAML', 'kind: [\n'],
  ];
  for (const [what, text] of leftToYaml) {
    it(`leaves ${what} to the yaml package`, () => {
      assert.equal(loadPlainDocuments(text!), undefined);
    });
  }
});

describe('parseManifestText: the same objects and errors on either path', () => {
  const pod = (name: string, port: string): string =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  labels: {app: ${name}}\nspec:\n  containers:\n  - name: app\n    ports: [{containerPort: ${port}, name: http}]\nstatus: {podIP: 198.18.1.2}\n`;

  it('reads the same pod whether or not the fast path can take it', () => {
    const fast = parseManifestText(pod('a', '8080'), 'a.yaml');
    // An anchor sends the same pod through the yaml package.
    const slow = parseManifestText(pod('a', '8080').replace('name: app', 'name: &n app'), 'a.yaml');
    assert.deepEqual(fast.errors, []);
    assert.deepEqual(fast.objects, slow.objects);
    assert.equal(parseManifestText(pod('a', '0x1F90'), 'a.yaml').objects.length, 1);
    assert.deepEqual(parseManifestText(pod('a', '0x1F90'), 'a.yaml').objects, slow.objects);
  });

  it('locates a conflicting object of a fast-path file by document and line', () => {
    const first = parseManifestText(pod('b', '8080'), 'a.yaml');
    const second = parseManifestText(`${pod('c', '8080')}---\n${pod('b', '9090')}`, 'b.yaml');
    assert.equal(second.errors.length, 0);
    const { rejected } = reconcileFiles(new Map(), [first, second]);
    const errors = rejected.get('b.yaml');
    assert.ok(errors !== undefined);
    assert.equal(errors[0]!.document, 1);
    assert.equal(errors[0]!.line, 12);
    assert.equal(errors[0]!.reason, 'Pod default/b: also defined in a.yaml');
  });
});
