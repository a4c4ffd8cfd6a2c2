/**
 * Every crash or wrong answer the fuzz targets (test/fuzz/targets.ts) found, as a plain test of
 * the smallest input, so that it stays fixed whatever seed the fuzz pass runs with.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { describe, it } from 'node:test';
import { loadPlainDocuments } from '../../agent/discovery/fast-yaml.js';
import { parseListeningPorts } from '../../agent/lab/procs.js';
import { StaticTokenAuthenticator } from '../../agent/identity/ca-auth.js';
import { CaServer } from '../../agent/identity/ca-server.js';
import { testCa } from '../tunnel/fixtures.js';

describe('fuzz regressions', () => {
  // fast-yaml: the fast path (js-yaml) read these differently from the reference (`yaml`).
  const differing = [
    // a lone carriage return is a line break to js-yaml, content to yaml
    '\r[]\n',
    'a: 1\rb: 2\n',
    // continuation lines of quoted scalars and flow collections, indented no deeper than the parent
    'a:\n  b: "x\n  c: d"\n',
    "a:\n  b: 'x\n  y'\n",
    'a: [x,\ny]\n',
    'a:\n  b: {x: 1,\n  y: 2}\n',
    'a: [b, [c]\nd: 1\n',
    // a compact nested sequence with an empty entry: js-yaml gives it the parent's next entry
    '- null\n- -\n- null\n- -\n',
    'a:\n  - -  # c\n  - b\n',
    '- - a\n  -\n- b\n',
    '- a:\n  -\n- b\n',
    // a tab as indentation: js-yaml reads it, yaml refuses it
    '\t""\n',
    // a document marker run into text
    '---[]\n',
    '... 0\n',
    // a comment run into a closing bracket
    '[]#\n',
  ];
  for (const text of differing) {
    it(`fast-yaml leaves ${JSON.stringify(text)} to yaml`, () => {
      assert.equal(loadPlainDocuments(text), undefined);
    });
  }

  it('fast-yaml still takes plain one-line flow collections and quoted scalars', () => {
    assert.deepEqual(loadPlainDocuments('a: [x, "y z"]\nb: {c: 1}\nd: \'e\'\n'), [{ a: ['x', 'y z'], b: { c: 1 }, d: 'e' }]);
  });

  it('parseListeningPorts skips a row whose local address has no hex port (was NaN)', () => {
    const text = 'sl local rem st\n   0: 00000000 00000000:0000 0A\n   1: 0100007F:1F90 00000000:0000 0A\n   2: 0100007F:zz 00000000:0000 0A\n';
    assert.deepEqual(parseListeningPorts(text), new Set([0x1f90]));
  });

  it('the CA answers an oversized body with 400 and an error code (it reset the connection)', async () => {
    const ca = testCa();
    const server = new CaServer({ ca, authenticator: new StaticTokenAuthenticator({ 'tok-a': 'node-a' }) });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const body = JSON.stringify({ csr: 'x'.repeat(70 * 1024), identity: 'spiffe://cluster.local/ns/a/sa/b' });
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, method: 'POST', path: '/v1/sign', ca: ca.trustBundle(), servername: 'localhost', agent: false, headers: { authorization: 'Bearer tok-a', 'content-length': String(body.length) } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(answer.status, 400);
      assert.equal((JSON.parse(answer.body) as { error: string }).error, 'WEFT_ERR_CA_BAD_REQUEST');
    } finally {
      await server.close();
    }
  });
});
