/**
 * Whether an API group version is served (the discovery document `/apis/<group>/<version>`), and
 * which resources it has: optional kinds (the Gateway API, whose CRDs a cluster may not have
 * installed) are watched only when they are there, as client-go's discovery-driven informers do.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError } from './reflector.js';

/** Plural resource names served at `groupVersion` (e.g. `gateway.networking.k8s.io/v1`); undefined when the group version is not served (404). */
export async function servedResources(kubeConfig: KubeConfig, groupVersion: string, signal?: AbortSignal): Promise<Set<string> | undefined> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(`${cluster.server.replace(/\/$/, '')}/apis/${groupVersion}`);
  const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(opts);
  const lib = url.protocol === 'https:' ? https : http;
  if (lib === http) delete opts.agent;
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = lib.request(url, { ...opts, ...(signal ? { signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  if (status === 404) return undefined;
  if (status !== 200) throw new ApiError(`/apis/${groupVersion}: HTTP ${status}`, status);
  const doc = JSON.parse(body) as { resources?: { name?: unknown }[] };
  const names = new Set<string>();
  for (const r of doc.resources ?? []) if (typeof r.name === 'string' && !r.name.includes('/')) names.add(r.name);
  return names;
}
