/**
 * `weft status top`: the busiest edges (source -> destination) of the mesh, live, from the
 * agents' connection tables (admin API /connections), in the manner of `linkerd viz top`. Two
 * samples `interval` apart give the rates; the totals are since each agent started.
 *
 * A connection is seen by both agents when both ends are meshed (outbound at the source,
 * inbound at the destination): an edge is reported by its source agent when one saw it, else by
 * the destination agent (a client outside the mesh).
 */
import type { AdminTarget } from '../admin/client.js';
import { fetchAdmin } from '../admin/client.js';
import { table } from './status-command.js';

/** An agent's /connections answer (the fields top reads). */
export interface ConnectionsSample {
  open: { direction: string; sourceIp: string; sourceWorkload?: string; destinationWorkload?: string; upstream: string }[];
  totals: { direction: string; source: string; destination: string; opened?: number; connections: number; bytesFromClient: number; bytesToClient: number; errors?: number; denied?: number; mutualTls?: boolean }[];
}

export interface EdgeCounts {
  opened: number;
  closed: number;
  bytes: number;
  errors: number;
  denied: number;
  open: number;
  mutualTls: boolean;
}

export interface TopEdge extends EdgeCounts {
  source: string;
  destination: string;
  /** Who reported it: `source` (outbound at the client's agent) or `destination`. */
  reporter: 'source' | 'destination';
  connectionsPerSecond: number;
  bytesPerSecond: number;
  /** Errors in the window. */
  recentErrors: number;
}

/** Edge -> counts, from one sample of every agent; source-reported edges win over destination-reported ones. */
export function edgesOf(samples: ConnectionsSample[]): Map<string, EdgeCounts & { source: string; destination: string; reporter: 'source' | 'destination' }> {
  const byReporter = { source: new Map<string, EdgeCounts & { source: string; destination: string }>(), destination: new Map<string, EdgeCounts & { source: string; destination: string }>() };
  const entry = (reporter: 'source' | 'destination', source: string, destination: string) => {
    const key = `${source}\u0000${destination}`;
    const map = byReporter[reporter];
    let e = map.get(key);
    if (!e) map.set(key, (e = { source, destination, opened: 0, closed: 0, bytes: 0, errors: 0, denied: 0, open: 0, mutualTls: false }));
    return e;
  };
  for (const s of samples) {
    for (const t of s.totals) {
      const e = entry(t.direction === 'outbound' ? 'source' : 'destination', t.source, t.destination);
      e.opened += t.opened ?? t.connections;
      e.closed += t.connections;
      e.bytes += t.bytesFromClient + t.bytesToClient;
      e.errors += t.errors ?? 0;
      e.denied += t.denied ?? 0;
      e.mutualTls ||= t.mutualTls === true;
    }
    for (const c of s.open) {
      const e = entry(c.direction === 'outbound' ? 'source' : 'destination', c.sourceWorkload ?? c.sourceIp, c.destinationWorkload ?? c.upstream.split(':')[0]!);
      e.open++;
    }
  }
  const edges = new Map<string, EdgeCounts & { source: string; destination: string; reporter: 'source' | 'destination' }>();
  for (const [key, e] of byReporter.source) edges.set(key, { ...e, reporter: 'source' });
  for (const [key, e] of byReporter.destination) {
    const fromSource = edges.get(key);
    if (fromSource) {
      // The destination decides policy: its denials are the edge's, whoever reports the rest.
      fromSource.denied = Math.max(fromSource.denied, e.denied);
      fromSource.mutualTls ||= e.mutualTls;
    } else edges.set(key, { ...e, reporter: 'destination' });
  }
  return edges;
}

/** The edges of `now`, with rates against `before` (`seconds` apart), busiest first. */
export function topEdges(before: ConnectionsSample[], now: ConnectionsSample[], seconds: number): TopEdge[] {
  const was = edgesOf(before);
  const result: TopEdge[] = [];
  for (const [key, e] of edgesOf(now)) {
    const b = was.get(key);
    // A pair evicted from an agent's bounded table and seen again starts from zero: no negative rates.
    const delta = (now: number, then: number | undefined) => Math.max(0, now - (then ?? 0));
    result.push({
      ...e,
      connectionsPerSecond: delta(e.opened, b?.opened) / seconds,
      bytesPerSecond: delta(e.bytes, b?.bytes) / seconds,
      recentErrors: delta(e.errors, b?.errors),
    });
  }
  return result.sort((x, y) => y.connectionsPerSecond - x.connectionsPerSecond || y.bytesPerSecond - x.bytesPerSecond || y.opened - x.opened || x.source.localeCompare(y.source) || x.destination.localeCompare(y.destination));
}

function rate(n: number): string {
  return n === 0 ? '0' : n < 10 ? n.toFixed(2) : n.toFixed(0);
}

function bytes(n: number): string {
  if (n < 1024) return `${n.toFixed(0)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatTop(edges: TopEdge[], seconds: number, limit: number): string {
  const rows = edges.slice(0, limit).map((e) => ({
    source: e.source,
    destination: e.destination,
    'conn/s': rate(e.connectionsPerSecond),
    'bytes/s': `${bytes(e.bytesPerSecond)}/s`,
    open: e.open,
    total: e.opened,
    bytes: bytes(e.bytes),
    errors: e.recentErrors > 0 ? `${e.errors} (+${e.recentErrors})` : e.errors,
    denied: e.denied,
    mtls: e.mutualTls ? 'yes' : 'no',
  }));
  const more = edges.length > limit ? `(${edges.length - limit} more edges)\n` : '';
  return `edges by connections/s over the last ${seconds.toFixed(1)} s (totals since each agent started)\n` + table(rows, ['source', 'destination', 'conn/s', 'bytes/s', 'open', 'total', 'bytes', 'errors', 'denied', 'mtls']) + more;
}

async function sample(targets: AdminTarget[]): Promise<ConnectionsSample[]> {
  return Promise.all(targets.map(async (t) => (await fetchAdmin(t, '/connections')) as ConnectionsSample));
}

export interface TopOptions {
  intervalSeconds: number;
  once: boolean;
  limit: number;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Stops a live view (tests; Ctrl-C ends the process otherwise). */
  signal?: AbortSignal;
}

/** Samples every `interval` and redraws (a plain-terminal clear and rewrite); `once` prints one table and returns. */
export async function runTop(targets: AdminTarget[], o: TopOptions): Promise<void> {
  let before = await sample(targets);
  let at = Date.now();
  for (;;) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, o.intervalSeconds * 1000);
      o.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    if (o.signal?.aborted) return;
    const now = await sample(targets);
    const seconds = (Date.now() - at) / 1000;
    const text = formatTop(topEdges(before, now, seconds), seconds, o.limit);
    if (o.once) {
      o.out.write(text);
      return;
    }
    // Home and clear, then the table: the terminal shows one live table, as `top` does.
    o.out.write((o.out.isTTY ? '\x1b[H\x1b[2J' : '\n') + `weft status top  ${new Date().toISOString()}  (${targets.length} agent${targets.length === 1 ? '' : 's'}, Ctrl-C to quit)\n` + text);
    before = now;
    at = Date.now();
  }
}
