/**
 * Discovery documents (legacy, not aggregated: kubectl 1.32 asks for the aggregated v2 form and
 * falls back when the answer is plain JSON): /version, /api, /apis, /apis/G, /api/v1 and
 * /apis/G/V, all derived from the resource table.
 */
import { apiVersionOf, VERBS_ALL, type ResourceRegistry, type ResourceType } from './resources.js';
import type { JsonObject } from './types.js';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-weft-lab-test-double',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23 (not Go: weft lab test double)',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** Subresource rows of APIResourceLists: verbs and the kind they take, as Kubernetes lists them. */
const SUBRESOURCES: Record<string, { verbs: string[]; kind?: string; group?: string; version?: string }> = {
  status: { verbs: ['get', 'patch', 'update'] },
  scale: { verbs: ['get', 'patch', 'update'], kind: 'Scale', group: 'autoscaling', version: 'v1' },
  finalize: { verbs: ['update'] },
  token: { verbs: ['create'], kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1' },
  portforward: { verbs: ['create', 'get'], kind: 'PodPortForwardOptions' },
  proxy: { verbs: ['create', 'delete', 'get', 'patch', 'update'], kind: 'PodProxyOptions' },
  log: { verbs: ['get'] },
  exec: { verbs: ['create', 'get'], kind: 'PodExecOptions' },
  eviction: { verbs: ['create'], kind: 'Eviction', group: 'policy', version: 'v1' },
  binding: { verbs: ['create'], kind: 'Binding' },
  ephemeralcontainers: { verbs: ['get', 'patch', 'update'] },
};

function groupVersions(registry: ResourceRegistry): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const t of registry.all()) {
    if (t.group === '') continue;
    const versions = groups.get(t.group) ?? [];
    if (!versions.includes(t.version)) versions.push(t.version);
    groups.set(t.group, versions);
  }
  return groups;
}

function apiGroup(name: string, versions: string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0]! };
}

export function apiVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

export function apiGroupList(registry: ResourceRegistry): JsonObject {
  const groups = [...groupVersions(registry)].map(([name, versions]) => apiGroup(name, versions));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiGroupDocument(registry: ResourceRegistry, group: string): JsonObject | undefined {
  const versions = groupVersions(registry).get(group);
  return versions === undefined ? undefined : { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, versions) };
}

function resourceRows(t: ResourceType, virtual: boolean): JsonObject[] {
  const row: JsonObject = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: virtual ? ['create'] : VERBS_ALL };
  if (t.shortNames.length > 0) row['shortNames'] = t.shortNames;
  if (t.categories.length > 0) row['categories'] = t.categories;
  const rows = [row];
  for (const s of t.subresources) {
    const sub = SUBRESOURCES[s];
    if (sub === undefined) continue;
    const r: JsonObject = { name: `${t.plural}/${s}`, singularName: '', namespaced: t.namespaced, kind: sub.kind ?? t.kind, verbs: sub.verbs };
    if (sub.group !== undefined) r['group'] = sub.group;
    if (sub.version !== undefined) r['version'] = sub.version;
    rows.push(r);
  }
  return rows;
}

/** The APIResourceList of `groupVersion` ('v1' for core), or undefined when not served. */
export function apiResourceList(registry: ResourceRegistry, groupVersion: string): JsonObject | undefined {
  const stored = registry.stored().filter((t) => apiVersionOf(t) === groupVersion);
  const virtual = registry.all().filter((t) => apiVersionOf(t) === groupVersion && !stored.includes(t));
  if (stored.length + virtual.length === 0) return undefined;
  const resources = [...stored.flatMap((t) => resourceRows(t, false)), ...virtual.flatMap((t) => resourceRows(t, true))];
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
