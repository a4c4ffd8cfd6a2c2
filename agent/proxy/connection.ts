/**
 * One record per proxied connection: classified once when it is opened, finished exactly once
 * when it closes (access log line, counters), whatever path it took.
 */
import type { Workload } from '../discovery/types.js';
import type { RelayResult } from './relay.js';
import type { Logger } from '../log.js';

export type Direction = 'outbound' | 'inbound';

export interface ConnectionInfo {
  direction: Direction;
  /** Client address as the capturing socket saw it. */
  sourceIp: string;
  sourcePort: number;
  sourceWorkload: Workload | undefined;
  /** Where the client was going (SO_ORIGINAL_DST). */
  originalDestination: string;
  /** Where the agent sent it (an endpoint chosen for a service VIP, or the original). */
  upstream: string;
  destinationWorkload: Workload | undefined;
  /** `<namespace>/<name>` of the service the original destination was, if any. */
  destinationService: string | undefined;
}

export interface ConnectionSummary extends ConnectionInfo {
  id: number;
  openedAt: number;
  bytesSent: number;
  bytesReceived: number;
  durationMs: number;
  error: string | undefined;
}

/** Open connections and per-pair totals, for the admin API, tests and the demo. */
export class ConnectionTracker {
  #nextId = 1;
  readonly #open = new Map<number, ConnectionRecord>();
  readonly #totals = new Map<string, { direction: Direction; source: string; destination: string; connections: number; bytesSent: number; bytesReceived: number }>();
  readonly #accessLog: Logger;

  constructor(accessLog: Logger) {
    this.#accessLog = accessLog;
  }

  open(info: ConnectionInfo): ConnectionRecord {
    const record = new ConnectionRecord(this, this.#nextId++, info);
    this.#open.set(record.id, record);
    return record;
  }

  /** @internal called by ConnectionRecord.finish */
  closed(record: ConnectionRecord, summary: ConnectionSummary): void {
    this.#open.delete(record.id);
    const source = workloadKey(summary.sourceWorkload, summary.sourceIp);
    const destination = workloadKey(summary.destinationWorkload, summary.upstream.split(':')[0]!);
    const key = `${summary.direction}|${source}|${destination}`;
    let t = this.#totals.get(key);
    if (!t) {
      t = { direction: summary.direction, source, destination, connections: 0, bytesSent: 0, bytesReceived: 0 };
      this.#totals.set(key, t);
    }
    t.connections++;
    t.bytesSent += summary.bytesSent;
    t.bytesReceived += summary.bytesReceived;
    this.#accessLog.info(
      {
        direction: summary.direction,
        src: `${summary.sourceIp}:${summary.sourcePort}`,
        src_workload: summary.sourceWorkload?.key,
        dst: summary.originalDestination,
        dst_service: summary.destinationService,
        upstream: summary.upstream,
        dst_workload: summary.destinationWorkload?.key,
        bytes_sent: summary.bytesSent,
        bytes_received: summary.bytesReceived,
        duration_ms: summary.durationMs,
        error: summary.error,
      },
      'connection closed',
    );
  }

  openConnections(): ConnectionInfo[] {
    return [...this.#open.values()].map((r) => r.info);
  }

  totals() {
    return [...this.#totals.values()];
  }
}

export class ConnectionRecord {
  readonly id: number;
  readonly info: ConnectionInfo;
  readonly #tracker: ConnectionTracker;
  readonly #openedAt = Date.now();
  #finished = false;

  constructor(tracker: ConnectionTracker, id: number, info: ConnectionInfo) {
    this.#tracker = tracker;
    this.id = id;
    this.info = info;
  }

  /** Records the result exactly once; later calls are ignored. */
  finish(result: Partial<RelayResult> & { error?: Error | undefined }): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#tracker.closed(this, {
      ...this.info,
      id: this.id,
      openedAt: this.#openedAt,
      bytesSent: result.bytesFromDownstream ?? 0,
      bytesReceived: result.bytesFromUpstream ?? 0,
      durationMs: Date.now() - this.#openedAt,
      error: result.error ? ((result.error as NodeJS.ErrnoException).code ?? result.error.message) : undefined,
    });
  }
}

function workloadKey(workload: Workload | undefined, ip: string): string {
  return workload ? workload.key : ip;
}
