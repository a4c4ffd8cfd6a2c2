/**
 * Watches: a chunked HTTP response of JSON lines `{"type","object"}`, with Kubernetes'
 * resourceVersion semantics: unset or "0" start with synthetic ADDED events for the current
 * state, an exact version streams the changes after it (an ERROR event with a 410 Expired
 * Status when those are compacted away); BOOKMARK events when asked; the server ends the
 * watch after `timeoutSeconds`; `sendInitialEvents=true` ends the initial events with a
 * bookmark annotated `k8s.io/initial-events-end`.
 */
import type { ServerResponse } from 'node:http';
import { apiVersionOf, resourceKey, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, type FieldSelector, type LabelSelector } from './selectors.js';
import { statusObject } from './status.js';
import type { Store, StoreEvent } from './store.js';
import type { JsonObject, JsonValue, KubeObject } from './types.js';

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  labels: LabelSelector;
  fields: FieldSelector;
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean | undefined;
  timeoutSeconds: number;
  bookmarkIntervalMs: number;
  /** Turns an object into what is sent (the object, or a Table row). */
  encode: (o: KubeObject, first: boolean) => JsonValue | KubeObject;
}

type WireType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export function serveWatch(store: Store, res: ServerResponse, w: WatchRequest, onEnd: () => void): void {
  const key = resourceKey(w.type);
  let first = true;
  let lastRv = store.resourceVersion;
  const matches = (o: KubeObject | undefined): boolean =>
    o !== undefined && (w.namespace === undefined || o.metadata.namespace === w.namespace) && matchesLabels(w.labels, o.metadata.labels) && matchesFields(w.fields, o);
  const send = (type: WireType, object: JsonValue | KubeObject): void => {
    res.write(JSON.stringify({ type, object }) + '\n');
  };
  const sendObject = (type: WireType, o: KubeObject): void => {
    const served = { ...o, apiVersion: apiVersionOf(w.type) };
    send(type, w.encode(served, first));
    first = false;
  };
  const bookmark = (annotations?: Record<string, string>): void => {
    const metadata: JsonObject = { resourceVersion: String(lastRv) };
    if (annotations !== undefined) metadata['annotations'] = annotations;
    send('BOOKMARK', { kind: w.type.kind, apiVersion: apiVersionOf(w.type), metadata });
  };
  const onEvent = (e: StoreEvent): void => {
    if (e.resource !== key) return;
    lastRv = e.rv;
    const now = matches(e.object) && e.type !== 'DELETED';
    const before = e.type !== 'ADDED' && matches(e.prev);
    if (e.type === 'DELETED') {
      if (before) sendObject('DELETED', e.object);
      return;
    }
    // An object that starts or stops matching the selectors is ADDED or DELETED for this watch.
    if (now && before) sendObject('MODIFIED', e.object);
    else if (now) sendObject('ADDED', e.object);
    else if (before) sendObject('DELETED', e.object);
  };

  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  // Headers now: clients wait for them before reading events, and there may be none for a while.
  res.flushHeaders();
  const rv = w.resourceVersion;
  const initial = rv === undefined || rv === '' || rv === '0' ? w.sendInitialEvents !== false : w.sendInitialEvents === true;
  if (initial) {
    for (const o of store.items(key, w.namespace)) if (matches(o)) sendObject('ADDED', o);
    lastRv = store.resourceVersion;
    if (w.sendInitialEvents === true && w.allowBookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  } else if (rv !== undefined && rv !== '' && rv !== '0') {
    const from = Number(rv);
    const backlog = Number.isInteger(from) ? store.eventsAfter(from) : undefined;
    if (!Number.isInteger(from)) {
      send('ERROR', statusObject(400, 'BadRequest', `invalid resource version: ${rv}`));
      res.end();
      onEnd();
      return;
    }
    if (backlog === undefined) {
      send('ERROR', statusObject(410, 'Expired', `too old resource version: ${rv} (${store.oldestWatchable})`));
      res.end();
      onEnd();
      return;
    }
    lastRv = Math.max(from, 0);
    for (const e of backlog) onEvent(e);
    lastRv = Math.max(lastRv, Math.min(from, store.resourceVersion));
  }
  const unsubscribe = store.subscribe(onEvent);
  const bookmarks = w.allowBookmarks ? setInterval(() => bookmark(), w.bookmarkIntervalMs) : undefined;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    unsubscribe();
    if (bookmarks) clearInterval(bookmarks);
    clearTimeout(timeout);
    onEnd();
  };
  const timeout = setTimeout(() => {
    if (w.allowBookmarks) bookmark();
    res.end();
    end();
  }, w.timeoutSeconds * 1000);
  res.on('close', end);
}
