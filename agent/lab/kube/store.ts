/**
 * The object store (the lab's etcd): objects by resource and namespace/name, one global
 * resourceVersion counter, a bounded history of changes for watches and for consistent paged
 * lists, and persistence to a JSON state file written after each change (coalesced), so a
 * restarted API server keeps its objects and its resourceVersions stay monotonic. History is
 * not persisted: after a restart, watches from older resourceVersions get 410 Expired, which
 * informers answer with a re-list.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { WeftError } from '../../errors.js';
import { errors } from './status.js';
import { clone, type JsonValue, type KubeObject } from './types.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  /** `group/plural` (resources.ts resourceKey). */
  resource: string;
  object: KubeObject;
  /** The object before a MODIFIED or DELETED change. */
  prev: KubeObject | undefined;
}

interface StateFile {
  version: 1;
  resourceVersion: number;
  objects: Record<string, KubeObject[]>;
  extra: Record<string, JsonValue>;
}

export interface StoreOptions {
  stateFile?: string;
  /** Changes kept for watches (default 10,000). */
  historyLimit?: number;
}

/** How long changes gather before the state file is written. */
const PERSIST_DELAY_MS = 200;

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class Store {
  #rv = 0;
  /** Watches and snapshots can start at any resourceVersion >= this one. */
  #oldestWatchable = 0;
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  #history: StoreEvent[] = [];
  readonly #historyLimit: number;
  readonly #listeners = new Set<(e: StoreEvent) => void>();
  readonly #stateFile: string | undefined;
  #extra: Record<string, JsonValue> = {};
  #dirty = false;
  #writing: Promise<void> | undefined;

  constructor(options: StoreOptions = {}) {
    this.#historyLimit = options.historyLimit ?? 10_000;
    this.#stateFile = options.stateFile;
    if (this.#stateFile !== undefined && existsSync(this.#stateFile)) this.#load(this.#stateFile);
  }

  #load(file: string): void {
    let state: StateFile;
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    } catch (err) {
      throw new WeftError('WEFT_ERR_KUBE_API', `cannot read the API server's state file ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (state.version !== 1 || typeof state.resourceVersion !== 'number') throw new WeftError('WEFT_ERR_KUBE_API', `state file ${file} is not a version 1 API server state`);
    this.#rv = state.resourceVersion;
    this.#oldestWatchable = state.resourceVersion;
    for (const [resource, items] of Object.entries(state.objects)) {
      const m = this.#bucket(resource);
      for (const o of items) m.set(objectKey(o.metadata.namespace, o.metadata.name ?? ''), o);
    }
    this.#extra = state.extra ?? {};
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  get oldestWatchable(): number {
    return this.#oldestWatchable;
  }

  /** Persisted values that are not objects (keys, tokens): read once at start. */
  extra(key: string): JsonValue | undefined {
    return this.#extra[key];
  }

  setExtra(key: string, value: JsonValue): void {
    this.#extra[key] = value;
    this.#schedulePersist();
  }

  #bucket(resource: string): Map<string, KubeObject> {
    let m = this.#objects.get(resource);
    if (m === undefined) {
      m = new Map();
      this.#objects.set(resource, m);
    }
    return m;
  }

  /** The stored object itself (callers must not change it; use clone). */
  peek(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#objects.get(resource)?.get(objectKey(namespace, name));
  }

  /** Current objects of a resource (optionally one namespace), sorted by namespace/name. */
  items(resource: string, namespace?: string): KubeObject[] {
    const m = this.#objects.get(resource);
    if (m === undefined) return [];
    const out: KubeObject[] = [];
    for (const o of m.values()) if (namespace === undefined || o.metadata.namespace === namespace) out.push(o);
    // Sorted so that a `continue` token can name the last key of a page.
    return sortByKey(out);
  }

  /** The objects of `resource` as they were at resourceVersion `rv` (410 when compacted). */
  itemsAt(resource: string, rv: number, namespace?: string): KubeObject[] {
    if (rv >= this.#rv) return this.items(resource, namespace);
    if (rv < this.#oldestWatchable) throw errors.gone(`The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.`);
    const snapshot = new Map<string, KubeObject>();
    for (const [k, o] of this.#objects.get(resource) ?? []) snapshot.set(k, o);
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const e = this.#history[i]!;
      if (e.rv <= rv) break;
      if (e.resource !== resource) continue;
      const k = objectKey(e.object.metadata.namespace, e.object.metadata.name ?? '');
      if (e.type === 'ADDED') snapshot.delete(k);
      else if (e.prev !== undefined) snapshot.set(k, e.prev);
    }
    return sortByKey([...snapshot.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace));
  }

  /** Whether any object of `resource` is in `namespace` (without sorting, for namespace deletion). */
  hasAny(resource: string, namespace: string): boolean {
    for (const o of this.#objects.get(resource)?.values() ?? []) if (o.metadata.namespace === namespace) return true;
    return false;
  }

  /** Changes after resourceVersion `rv`; undefined when some of them were compacted away. */
  eventsAfter(rv: number): StoreEvent[] | undefined {
    if (rv < this.#oldestWatchable) return undefined;
    let lo = 0;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#history[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.#history.slice(lo);
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stores a new or changed object (its resourceVersion is set here) and tells watchers. */
  put(resource: string, obj: KubeObject): KubeObject {
    const k = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    const m = this.#bucket(resource);
    const prev = m.get(k);
    const rv = ++this.#rv;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(rv);
    m.set(k, stored);
    this.#record({ rv, type: prev === undefined ? 'ADDED' : 'MODIFIED', resource, object: stored, prev });
    return clone(stored);
  }

  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const k = objectKey(namespace, name);
    const m = this.#objects.get(resource);
    const prev = m?.get(k);
    if (m === undefined || prev === undefined) return undefined;
    m.delete(k);
    const rv = ++this.#rv;
    const gone = clone(prev);
    gone.metadata.resourceVersion = String(rv);
    this.#record({ rv, type: 'DELETED', resource, object: gone, prev });
    return clone(gone);
  }

  /** Forgets all history: watches from any earlier resourceVersion get 410 (as after etcd compaction). */
  compact(): void {
    this.#history = [];
    this.#oldestWatchable = this.#rv;
  }

  #record(e: StoreEvent): void {
    this.#history.push(e);
    if (this.#history.length > this.#historyLimit) {
      const drop = this.#history.length - this.#historyLimit;
      this.#oldestWatchable = this.#history[drop - 1]!.rv;
      this.#history = this.#history.slice(drop);
    }
    this.#schedulePersist();
    for (const fn of this.#listeners) fn(e);
  }

  #snapshot(): string {
    const objects: Record<string, KubeObject[]> = {};
    for (const [resource, m] of this.#objects) if (m.size > 0) objects[resource] = [...m.values()];
    const state: StateFile = { version: 1, resourceVersion: this.#rv, objects, extra: this.#extra };
    return JSON.stringify(state);
  }

  #schedulePersist(): void {
    if (this.#stateFile === undefined) return;
    this.#dirty = true;
    if (this.#writing !== undefined) return;
    const file = this.#stateFile;
    // Coalesces a burst of changes into one write; the chain re-runs while changes arrive.
    this.#writing = (async () => {
      while (this.#dirty) {
        // A burst of creates (thousands of pods) becomes a few writes of the whole store.
        await new Promise((r) => setTimeout(r, PERSIST_DELAY_MS));
        this.#dirty = false;
        await writeFile(`${file}.tmp`, this.#snapshot(), { mode: 0o600 });
        await rename(`${file}.tmp`, file);
      }
    })().finally(() => {
      this.#writing = undefined;
    });
  }

  /** Waits for pending writes and writes the final state synchronously. */
  async flush(): Promise<void> {
    await this.#writing?.catch(() => undefined);
    if (this.#stateFile === undefined) return;
    writeFileSync(`${this.#stateFile}.tmp`, this.#snapshot(), { mode: 0o600 });
    renameSync(`${this.#stateFile}.tmp`, this.#stateFile);
    this.#dirty = false;
  }
}

function sortByKey(items: KubeObject[]): KubeObject[] {
  return items.sort((a, b) => compareKeys(objectKey(a.metadata.namespace, a.metadata.name ?? ''), objectKey(b.metadata.namespace, b.metadata.name ?? '')));
}

export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export { objectKey };
