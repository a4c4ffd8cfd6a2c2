/**
 * `weft waypoint` as a process, as the lab's pod runs it: certificate from the CA over HTTPS with
 * a node token, discovery from a manifest directory; ready on 15021 once both are there; the
 * admin API lists the bound services; a request tunnelled over HBONE reaches a pod (here one
 * outside the mesh, over plain TCP on loopback), and SIGTERM stops it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StaticTokenAuthenticator } from '../../agent/identity/ca-auth.js';
import { CaServer } from '../../agent/identity/ca-server.js';
import { isWeftError } from '../../agent/errors.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { waitFor } from '../helpers/wait.js';
import { id, issue, testCa } from '../tunnel/fixtures.js';

const MAIN = join(process.cwd(), 'dist/agent/cli/main.js');
const VIP = '198.18.121.50';

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('weft waypoint (process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-wp-proc-'));
  const ca = testCa();
  const caServer = new CaServer({ ca, authenticator: new StaticTokenAuthenticator({ 'node-token': 'node-a' }) });
  const app = http.createServer((req, res) => res.end(`app saw ${req.url}`));
  let child: ChildProcess | undefined;
  let ports: { hbone: number; metrics: number; readiness: number; admin: number };
  let output = '';

  before(async () => {
    app.listen(0, '127.0.0.2');
    await once(app, 'listening');
    const appPort = (app.address() as net.AddressInfo).port;
    const caPort = (await caServer.listen(0, '127.0.0.1')).port;
    writeFileSync(join(dir, 'token'), 'node-token\n');
    writeFileSync(join(dir, 'root.pem'), ca.trustBundle().join(''));
    const m = join(dir, 'manifests');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(m);
    writeFileSync(
      join(m, 'shop.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {weft.dev/mesh: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web, weft.dev/mesh: disabled}}
spec: {nodeName: node-a, containers: [{name: app}]}
status: {podIP: 127.0.0.2, phase: Running}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {weft.dev/use-waypoint: wp}}
spec: {clusterIP: ${VIP}, selector: {app: web}, ports: [{name: http, port: 80, targetPort: ${appPort}}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec: {gatewayClassName: weft-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
`,
    );
    ports = { hbone: await freePort(), metrics: await freePort(), readiness: await freePort(), admin: await freePort() };
    child = spawn(process.execPath, [MAIN, 'waypoint', '--name', 'wp', '--namespace', 'shop', '--manifests', m, '--ca', `https://127.0.0.1:${caPort}`, '--ca-token-file', join(dir, 'token'), '--ca-root', join(dir, 'root.pem'), '--hbone', `127.0.0.1:${ports.hbone}`, '--metrics', `127.0.0.1:${ports.metrics}`, '--readiness', `127.0.0.1:${ports.readiness}`, '--admin', `127.0.0.1:${ports.admin}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (output += c));
    child.stderr!.on('data', (c: Buffer) => (output += c));
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    app.close();
    await caServer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('becomes ready with its certificate and model, and lists its services', async () => {
    await waitFor(async () => (await httpGet(ports.readiness, '/healthz/ready').catch(() => ({ status: 0 }))).status === 200, `readiness (output so far: ${output.slice(-2000)})`, 20000);
    const dump = JSON.parse((await httpGet(ports.admin, '/config_dump')).body) as { identity: string; services: { key: string }[]; ready: boolean };
    assert.equal(dump.identity, id('shop', 'wp'));
    assert.deepEqual(dump.services.map((s) => s.key), ['shop/web']);
    assert.equal(dump.ready, true);
    assert.match((await httpGet(ports.metrics, '/metrics')).body, /weft_process_/);
  });

  it('proxies a request tunnelled to a bound service and refuses an unknown VIP', async () => {
    const clientId = id('shop', 'client');
    const cert = await issue(ca, clientId);
    const pool = new HbonePool({ credentials: async () => cert });
    try {
      const connect = (authority: string) => pool.connect({ sourceIdentity: clientId, destination: { host: '127.0.0.1', port: ports.hbone }, expectedIdentity: id('shop', 'wp'), authority });
      const stream = await connect(`${VIP}:80`);
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.request({ createConnection: () => stream as unknown as net.Socket, path: '/hi', headers: { host: 'web.shop', connection: 'close' } }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c));
          res.on('end', () => resolve(b));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, 'app saw /hi');
      await assert.rejects(connect('198.18.121.99:80'), (err: unknown) => isWeftError(err, 'WEFT_ERR_HBONE_REFUSED'));
      await waitFor(() => output.includes('"msg":"request"') && output.includes('WEFT_ERR_WAYPOINT_NOT_BOUND'), 'access log and refusal in the output', 5000);
    } finally {
      pool.destroy();
    }
  });

  it('stops on SIGTERM', async () => {
    child!.kill('SIGTERM');
    const [code] = (await once(child!, 'exit')) as [number | null];
    assert.equal(code, 0);
  });
});
