/**
 * The Gateway API objects the dashboard shows (Gateways: waypoints and ingress gateways;
 * HTTPRoutes and GRPCRoutes: the routes of a service), listed from a cluster's API server.
 */
import { existsSync } from 'node:fs';
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

/** A Kubernetes-mode lab's admin kubeconfig, when it has one. */
export async function kubeLabKubeconfig(lab: string): Promise<string | undefined> {
  const { kubePaths } = await import('../lab/kube-paths.js');
  const file = kubePaths(lab).adminKubeconfig;
  return existsSync(file) ? file : undefined;
}
