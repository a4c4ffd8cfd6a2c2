/**
 * meta.k8s.io/v1 Table output, which `kubectl get` asks for (Accept: ...;as=Table): Name, the
 * kind's own columns, Age; each row carries the object's metadata so `-A` can show namespaces.
 */
import type { ResourceType } from './resources.js';
import { pathValue, type JsonObject, type JsonValue, type KubeObject } from './types.js';

/** Age as kubectl prints it (`45s`, `12m`, `3h`, `5d`). */
export function shortAge(sinceIso: string | undefined, now: number): string {
  if (sinceIso === undefined) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(sinceIso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 3600 * 2) return `${Math.floor(s / 60)}m`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept);
}

function cell(o: KubeObject, path: ResourceType['columns'][number]['path']): JsonValue {
  if (typeof path === 'function') return path(o);
  const v = pathValue(o, path);
  if (v === undefined || v === null) return '<none>';
  return typeof v === 'object' ? JSON.stringify(v) : v;
}

export function tableRow(t: ResourceType, o: KubeObject, now: number): JsonObject {
  const narrow = t.columns.filter((c) => c.wide !== true);
  const wide = t.columns.filter((c) => c.wide === true);
  const cells: JsonValue[] = [o.metadata.name ?? '', ...narrow.map((c) => cell(o, c.path)), shortAge(o.metadata.creationTimestamp, now), ...wide.map((c) => cell(o, c.path))];
  return { cells, object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: JSON.parse(JSON.stringify(o.metadata)) as JsonObject } };
}

export function table(t: ResourceType, items: KubeObject[], listMeta: JsonObject, now: number): JsonObject {
  const def = (c: ResourceType['columns'][number]) => ({ name: c.name, type: c.type === 'date' ? 'string' : c.type, format: '', description: c.name, priority: c.wide === true ? 1 : 0 });
  // Age comes before the wide columns, as in Kubernetes' own printers.
  const columnDefinitions = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...t.columns.filter((c) => c.wide !== true).map(def),
    { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp of the object.', priority: 0 },
    ...t.columns.filter((c) => c.wide === true).map(def),
  ];
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMeta, columnDefinitions, rows: items.map((o) => tableRow(t, o, now)) };
}
