import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isWeftError } from '../../agent/errors.js';
import { HttpCaClient } from '../../agent/identity/ca-client.js';
import { parseDuration } from '../../agent/identity/ca-command.js';
import { parseHostPort } from '../../agent/util/host-port.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { id, waitFor } from '../tunnel/fixtures.js';

const MAIN = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));

describe('weft ca', () => {
  let child: ChildProcess | undefined;
  let dir = '';
  after(async () => {
    child?.kill('SIGKILL');
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('serves /v1/sign from a generated root, tokens file and manifests directory', async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-ca-cli-'));
    await mkdir(join(dir, 'manifests'));
    await writeFile(
      join(dir, 'manifests', 'pods.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: cart-1, namespace: shop}\nspec: {nodeName: node-a, serviceAccountName: cart, containers: [{name: app}]}\nstatus: {podIP: 198.18.0.5, phase: Running}\n',
    );
    await writeFile(join(dir, 'tokens.json'), JSON.stringify({ 'tok-a': 'node-a' }));
    child = spawn(process.execPath, [MAIN, 'ca', '--listen', '127.0.0.1:0', '--dir', join(dir, 'ca'), '--tokens', join(dir, 'tokens.json'), '--manifests', join(dir, 'manifests'), '--lifetime', '2h'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => /"msg":"CA listening"/.test(out) || child!.exitCode !== null, 'the CA to listen', 10_000);
    const m = /"port":(\d+),"msg":"CA listening"/.exec(out);
    assert.ok(m, out);
    const client = new HttpCaClient({ url: `https://127.0.0.1:${m[1]}`, token: 'tok-a', caCertificates: [await readFile(join(dir, 'ca', 'root-cert.pem'), 'utf8')] });
    const cert = await requestCertificate(client, id('shop', 'cart'));
    const lifetime = cert.notAfter.getTime() - Date.now();
    assert.ok(lifetime > 119 * 60_000 && lifetime <= 120 * 60_000, `lifetime ${lifetime}`);
    await assert.rejects(requestCertificate(client, id('shop', 'other')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));
    child.kill('SIGTERM');
    await waitFor(() => child!.exitCode !== null, 'the CA to exit on SIGTERM');
    assert.equal(child.exitCode, 0);
  });

  it('parses durations and listen addresses', () => {
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.throws(() => parseDuration('24'), (e) => isWeftError(e, 'WEFT_ERR_CONFIG'));
    assert.throws(() => parseDuration('h'), (e) => isWeftError(e, 'WEFT_ERR_CONFIG'));
    assert.deepEqual(parseHostPort('127.0.0.1:15012'), { host: '127.0.0.1', port: 15012 });
    assert.throws(() => parseHostPort('15012'), (e) => isWeftError(e, 'WEFT_ERR_CONFIG'));
  });
});
