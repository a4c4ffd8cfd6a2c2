/**
 * The Gateway API objects the dashboard shows (Gateways: waypoints and ingress gateways;
 * HTTPRoutes and GRPCRoutes: the routes of a service), listed from a cluster's API server.
 */
import { existsSync, statSync } from 'node:fs';
import type { ManifestObject } from '../discovery/types.js';

const GROUP = 'gateway.networking.k8s.io';
const VERSION = 'v1';

/** Every namespace's Gateways and routes; a kind whose CRD is not installed is left out. */
export async function listGatewayApiObjects(kubeconfig: string): Promise<ManifestObject[]> {
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const { loadKubeConfig } = await import('../discovery/kubernetes.js');
  const api = loadKubeConfig(kubeconfig).makeApiClient(CustomObjectsApi);
  const out: ManifestObject[] = [];
  for (const [plural, kind] of [['gateways', 'Gateway'], ['httproutes', 'HTTPRoute'], ['grpcroutes', 'GRPCRoute']] as const) {
    try {
      const list = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as { items?: ManifestObject[] };
      for (const item of list.items ?? []) out.push({ ...item, kind, apiVersion: `${GROUP}/${VERSION}` });
    } catch {
      // No such CRD (404) or not allowed: that kind shows as none.
    }
  }
  return out;
}

/**
 * A Kubernetes-mode lab's kubeconfig, when it has one: the API server's fabric address from
 * inside the lab's fabric namespace (where the lab runs its dashboard), its loopback one from
 * this machine's.
 */
export async function kubeLabKubeconfig(lab: string): Promise<string | undefined> {
  const { kubePaths } = await import('../lab/kube-paths.js');
  const { fabricNetns, NETNS_DIR } = await import('../lab/paths.js');
  const inFabric = sameFile('/proc/thread-self/ns/net', `${NETNS_DIR}/${fabricNetns(lab)}`);
  const file = inFabric ? kubePaths(lab).controlPlaneKubeconfig : kubePaths(lab).adminKubeconfig;
  return existsSync(file) ? file : undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}
