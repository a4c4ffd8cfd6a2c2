/**
 * The manifests directory: the cluster as the agents see it, one YAML file per object
 * (`pod.default.details-v1.yaml`, `namespace.outside.yaml`), pods with `status.podIP` and
 * `status.phase: Running` once the lab runs them, services with `spec.clusterIP`. Files are
 * replaced atomically and only when their content changes, so the agents' watcher sees real
 * changes only.
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { isPod, isService } from '../discovery/manifest.js';
import type { ManifestObject } from '../discovery/types.js';
import { isIngressGatewayObject } from '../gateway/objects.js';
import { writeFileAtomic } from './state.js';

export function manifestFileName(o: ManifestObject): string {
  const kind = o.kind.toLowerCase();
  const ns = o.metadata.namespace;
  return ns === undefined ? `${kind}.${o.metadata.name}.yaml` : `${kind}.${ns}.${o.metadata.name}.yaml`;
}

export interface RenderInput {
  objects: Iterable<ManifestObject>;
  /** `<ns>/<name>` -> IP of the pods the lab runs; pods not in it (nor in `pendingIps`) are left out. */
  podIps: ReadonlyMap<string, string>;
  /** Pods being started, published as `Pending` with their IP (not ready: no endpoint yet). */
  pendingIps?: ReadonlyMap<string, string>;
  /** `<ns>/<name>` -> ClusterIP (undefined: headless). */
  clusterIps: ReadonlyMap<string, string | undefined>;
  /**
   * `<ns>/<name>` -> external address of a LoadBalancer Service: its status.loadBalancer, and the
   * status.addresses of the ingress Gateway of that name (gatewayObjects names its Service so).
   */
  externalIps?: ReadonlyMap<string, string>;
}

/** file name -> content of the directory as it should be. */
export function renderManifests(input: RenderInput): Map<string, string> {
  const files = new Map<string, string>();
  for (const o of input.objects) {
    const key = `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    let out: ManifestObject = o;
    if (isPod(o)) {
      const ip = input.podIps.get(key);
      const pending = input.pendingIps?.get(key);
      if (ip !== undefined) out = { ...o, status: { ...o.status, podIP: ip, phase: 'Running' } };
      else if (pending !== undefined) out = { ...o, status: { ...o.status, podIP: pending, phase: 'Pending' } };
      else continue;
    } else if (isService(o)) {
      const vip = input.clusterIps.get(key);
      const external = input.externalIps?.get(key);
      out = { ...o, spec: { ...o.spec, clusterIP: vip ?? 'None' } };
      if (external !== undefined) out = { ...out, status: { loadBalancer: { ingress: [{ ip: external }] } } } as unknown as ManifestObject;
    } else if (isIngressGatewayObject(o)) {
      const external = input.externalIps?.get(key);
      if (external !== undefined) out = { ...o, status: { ...(o as { status?: object }).status, addresses: [{ type: 'IPAddress', value: external }] } } as ManifestObject;
    }
    files.set(manifestFileName(out), stringify(out));
  }
  return files;
}

/**
 * Makes `dir` hold exactly `files`: changed ones rewritten (temp + rename), missing ones
 * written, others deleted. Returns how many files changed.
 */
export async function syncManifestDir(dir: string, files: ReadonlyMap<string, string>): Promise<number> {
  let present: string[];
  try {
    present = (await readdir(dir)).filter((n) => n.endsWith('.yaml'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    present = [];
  }
  let changed = 0;
  for (const name of present) {
    if (files.has(name)) continue;
    await unlink(join(dir, name)).catch(() => undefined);
    changed++;
  }
  for (const [name, content] of files) {
    const path = join(dir, name);
    const old = await readFile(path, 'utf8').catch(() => undefined);
    if (old === content) continue;
    await writeFileAtomic(path, content);
    changed++;
  }
  return changed;
}
