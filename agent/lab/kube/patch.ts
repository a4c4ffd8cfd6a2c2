/**
 * The three patch types of PATCH requests: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
 * and strategic merge patch, where lists of objects are merged by a key (containers by `name`,
 * service ports by `port`, ...) as the core types' `patchMergeKey` tags say, with the
 * directives kubectl sends (`$patch`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`,
 * `$retainKeys`).
 */
import { errors } from './status.js';
import { clone, isJsonObject, type JsonObject, type JsonValue } from './types.js';

export const PATCH_TYPES = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

// --- RFC 7386 -----------------------------------------------------------------------------------

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return clone(patch);
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// --- RFC 6902 -----------------------------------------------------------------------------------

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw errors.badRequest(`json patch: path "${path}" does not start with /`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: JsonValue, parts: string[], path: string): { parent: JsonObject | JsonValue[]; last: string } {
  let cur: JsonValue = doc;
  for (const p of parts.slice(0, -1)) {
    const next: JsonValue | undefined = Array.isArray(cur) ? cur[Number(p)] : isJsonObject(cur) ? cur[p] : undefined;
    if (next === undefined) throw errors.badRequest(`json patch: path "${path}" does not exist`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isJsonObject(cur)) throw errors.badRequest(`json patch: path "${path}" does not exist`);
  return { parent: cur, last: parts[parts.length - 1]! };
}

function getAt(doc: JsonValue, path: string): JsonValue {
  let cur: JsonValue | undefined = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isJsonObject(cur) ? cur[p] : undefined;
    if (cur === undefined) throw errors.badRequest(`json patch: path "${path}" does not exist`);
  }
  return cur;
}

function removeAt(doc: JsonValue, path: string): JsonValue {
  const { parent, last } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw errors.badRequest(`json patch: path "${path}" does not exist`);
    return parent.splice(i, 1)[0]!;
  }
  if (!(last in parent)) throw errors.badRequest(`json patch: path "${path}" does not exist`);
  const v = parent[last]!;
  delete parent[last];
  return v;
}

function addAt(doc: JsonValue, path: string, value: JsonValue, replace: boolean): JsonValue {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const { parent, last } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw errors.badRequest(`json patch: index out of range in "${path}"`);
    if (replace) {
      if (i >= parent.length) throw errors.badRequest(`json patch: path "${path}" does not exist`);
      parent[i] = value;
    } else parent.splice(i, 0, value);
  } else {
    if (replace && !(last in parent)) throw errors.badRequest(`json patch: path "${path}" does not exist`);
    parent[last] = value;
  }
  return doc;
}

export function jsonPatch(target: JsonValue, ops: JsonValue): JsonValue {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch: the body must be a JSON array of operations');
  let doc = clone(target);
  for (const op of ops) {
    if (!isJsonObject(op) || typeof op['op'] !== 'string' || typeof op['path'] !== 'string') throw errors.badRequest('json patch: each operation needs "op" and "path"');
    const path = op['path'];
    const from = typeof op['from'] === 'string' ? op['from'] : '';
    switch (op['op']) {
      case 'add':
        doc = addAt(doc, path, clone(op['value'] ?? null), false);
        break;
      case 'replace':
        doc = addAt(doc, path, clone(op['value'] ?? null), true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'move':
        doc = addAt(doc, path, removeAt(doc, from), false);
        break;
      case 'copy':
        doc = addAt(doc, path, clone(getAt(doc, from)), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op['value'] ?? null)) throw errors.badRequest(`json patch: test operation failed at "${path}"`);
        break;
      default:
        throw errors.badRequest(`json patch: unknown operation "${String(op['op'])}"`);
    }
  }
  return doc;
}

// --- strategic merge patch ------------------------------------------------------------------------

/**
 * patchMergeKey of the core types' list fields, by field name. `ports` is a container's
 * (containerPort) or a service's (port): told apart by what the items carry.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  conditions: 'type',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  hostAliases: 'ip',
  ownerReferences: 'uid',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  readinessGates: 'conditionType',
};

/** Primitive lists that merge as sets (`patchStrategy: merge` on a list of strings). */
const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

function mergeKeyFor(field: string, items: JsonValue[]): string | undefined {
  if (field === 'ports') {
    const sample = items.find(isJsonObject);
    if (sample === undefined) return undefined;
    return 'containerPort' in sample ? 'containerPort' : 'port';
  }
  return MERGE_KEYS[field];
}

function mergeList(field: string, target: JsonValue[] | undefined, patch: JsonValue[], order: JsonValue[] | undefined): JsonValue[] {
  const base = target ?? [];
  if (MERGED_PRIMITIVE_LISTS.has(field) && patch.every((v) => !isJsonObject(v))) {
    const out = [...base];
    for (const v of patch) if (!out.some((x) => JSON.stringify(x) === JSON.stringify(v))) out.push(v);
    return out;
  }
  const key = mergeKeyFor(field, [...patch, ...base]);
  if (key === undefined) {
    // No merge key: the list is replaced, except for a `$patch: replace` marker list.
    return patch.filter((v) => !(isJsonObject(v) && v['$patch'] !== undefined)).map((v) => clone(v));
  }
  if (patch.some((v) => isJsonObject(v) && v['$patch'] === 'replace')) {
    return patch.filter((v) => !(isJsonObject(v) && v['$patch'] === 'replace')).map((v) => strip(v));
  }
  const out: JsonValue[] = base.map((v) => clone(v));
  const indexOf = (k: JsonValue | undefined): number => out.findIndex((v) => isJsonObject(v) && JSON.stringify(v[key]) === JSON.stringify(k));
  for (const item of patch) {
    if (!isJsonObject(item)) {
      out.push(item);
      continue;
    }
    const i = indexOf(item[key]);
    if (item['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMerge(out[i], item);
    else out.push(strip(item));
  }
  if (order !== undefined) {
    // `$setElementOrder/<list>`: kubectl's record of the list's order in the applied file.
    const rank = (v: JsonValue): number => {
      const k = isJsonObject(v) ? JSON.stringify(v[key]) : '';
      const r = order.findIndex((o) => isJsonObject(o) && JSON.stringify(o[key]) === k);
      return r < 0 ? order.length : r;
    };
    out.sort((a, b) => rank(a) - rank(b));
  }
  return out;
}

/** Removes directives from a value that is inserted as it is. */
function strip(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(strip);
  if (!isJsonObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = strip(x);
  return out;
}

export function strategicMerge(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return clone(patch);
  if (patch['$patch'] === 'replace') return strip(patch);
  if (patch['$patch'] === 'delete') return {};
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  const retain = patch['$retainKeys'];
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const list = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[list];
      if (Array.isArray(cur) && Array.isArray(v)) out[list] = cur.filter((x) => !v.some((d) => JSON.stringify(d) === JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    if (Array.isArray(v)) {
      const order = patch[`$setElementOrder/${k}`];
      const cur = out[k];
      out[k] = mergeList(k, Array.isArray(cur) ? cur : undefined, v, Array.isArray(order) ? order : undefined);
      continue;
    }
    out[k] = isJsonObject(v) ? strategicMerge(out[k], v) : v;
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }
  return out;
}
