/** Starts the lab's API server (agent/lab/kube) in-process on loopback for a test file. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from '../../agent/lab/kube/index.js';

export interface TestApi {
  server: KubeApiServer;
  kc: KubeConfig;
  dir: string;
  stateFile: string;
  /** A KubeConfig with another bearer token. */
  kcFor(token: string): KubeConfig;
  /** Starts a second server on the same state file (after `server.stop()`). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestApi(options: Partial<KubeApiServerOptions> = {}): Promise<TestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-kapi-test-'));
  const stateFile = join(dir, 'state.json');
  const opts: KubeApiServerOptions = { listen: [{ host: '127.0.0.1', port: 0 }], stateFile, ...options };
  const api: TestApi = {
    server: await startKubeApiServer(opts),
    kc: new KubeConfig(),
    dir,
    stateFile,
    kcFor(token: string) {
      const kc = new KubeConfig();
      kc.loadFromString(api.server.kubeconfig({ token }));
      return kc;
    },
    async restart() {
      api.server = await startKubeApiServer({ ...opts, listen: [{ host: '127.0.0.1', port: 0 }] });
      api.kc = api.kcFor(api.server.adminToken);
    },
    async close() {
      await api.server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  api.kc = api.kcFor(api.server.adminToken);
  return api;
}

/** The HTTP status of a failed client-node call (fails the test when the call succeeded). */
export async function statusOf(p: Promise<unknown>): Promise<{ code: number; body: { reason?: string; message?: string; code?: number; details?: Record<string, unknown> }; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? (JSON.parse(err.body) as Record<string, unknown>) : (err.body as Record<string, unknown>);
      return { code: err.code, body, headers: err.headers };
    }
    throw err;
  }
  throw new Error('the call succeeded but a failure was expected');
}

/** A raw HTTPS request to the server (for what client-node does not expose). */
export async function rawRequest(api: TestApi, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, token = api.server.adminToken): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const { request } = await import('node:https');
  const url = new URL(path, api.server.urls[0]);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: api.server.caPem, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(typeof body === 'string' ? body : JSON.stringify(body));
    else req.end();
  });
}
