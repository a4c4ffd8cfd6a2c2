/** The JSON shapes the API server handles: objects are kept as parsed JSON, checked where used. */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [key: string]: JsonValue | undefined;
}

/** Any stored object: apiVersion, kind, metadata and whatever else its kind has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: JsonValue | ObjectMeta | undefined;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep copy of parsed JSON (objects handed out are never the stored ones). */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Reads a dotted path (`spec.nodeName`) of an object; undefined when any step is missing. */
export function pathValue(obj: unknown, path: string): JsonValue | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!isJsonObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur as JsonValue | undefined;
}
