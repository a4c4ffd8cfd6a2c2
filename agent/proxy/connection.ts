/**
 * One record per proxied connection: classified once when it is opened, finished exactly once
 * when it closes (access log line, counters), whatever path it took.
 */
import type { Workload } from '../discovery/types.js';
import { relay, abort, type RelayResult } from './relay.js';
import type { Duplex } from 'node:stream';
import type { InboundQuestion, InboundVerdict } from './authorization.js';
import type { Logger } from '../log.js';
import { tcpLabels, type AgentMetrics, type TcpLabels } from '../telemetry/metrics.js';

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
  /** SPIFFE ID the peer proved (HBONE inbound), if any. */
  sourcePrincipal?: string | undefined;
  /** Carried over mutual TLS (HBONE) rather than plaintext. */
  mutualTls?: boolean;
}

export interface ConnectionSummary extends ConnectionInfo {
  id: number;
  openedAt: number;
  bytesFromClient: number;
  bytesToClient: number;
  durationMs: number;
  verdict: InboundVerdict | undefined;
  /** Human-readable reason, for the access log. */
  error: string | undefined;
  /** Stable code (WEFT_ERR_* or the socket's E* code), for metric labels. */
  errorCode: string | undefined;
}

/** Open connections and per-pair totals, for the admin API, tests and the demo. */
export class ConnectionTracker {
  #nextId = 1;
  readonly #open = new Map<number, ConnectionRecord>();
  readonly #totals = new Map<string, PairTotals>();
  readonly #accessLog: Logger;
  readonly #metrics: AgentMetrics | undefined;
  readonly #clusterName: string;

  constructor(accessLog: Logger, metrics?: AgentMetrics, clusterName = 'Kubernetes') {
    this.#accessLog = accessLog;
    this.#metrics = metrics;
    this.#clusterName = clusterName;
  }

  open(info: ConnectionInfo): ConnectionRecord {
    let labels: TcpLabels | undefined;
    if (this.#metrics) {
      labels = tcpLabels({
        reporter: info.direction === 'outbound' ? 'source' : 'destination',
        source: info.sourceWorkload,
        sourcePrincipal: info.sourcePrincipal,
        destination: info.destinationWorkload,
        destinationService: info.destinationService,
        mutualTls: info.mutualTls === true,
        clusterName: this.#clusterName,
      });
      this.#metrics.tcpOpened.inc(labels);
      this.#metrics.openConnections.inc({ direction: info.direction });
    }
    const record = new ConnectionRecord(this, this.#nextId++, info, labels);
    this.#open.set(record.id, record);
    return record;
  }

  /** @internal called by ConnectionRecord.finish */
  closed(record: ConnectionRecord, summary: ConnectionSummary, labels: TcpLabels | undefined): void {
    this.#open.delete(record.id);
    if (this.#metrics && labels) {
      this.#metrics.tcpClosed.inc(labels);
      if (summary.bytesFromClient > 0) this.#metrics.tcpReceivedBytes.inc(labels, summary.bytesFromClient);
      if (summary.bytesToClient > 0) this.#metrics.tcpSentBytes.inc(labels, summary.bytesToClient);
      this.#metrics.openConnections.dec({ direction: summary.direction });
      if (summary.errorCode) this.#metrics.errors.inc({ kind: summary.errorCode });
    }
    const source = workloadKey(summary.sourceWorkload, summary.sourceIp);
    const destination = workloadKey(summary.destinationWorkload, summary.upstream.split(':')[0]!);
    const key = `${summary.direction}|${source}|${destination}`;
    let t = this.#totals.get(key);
    if (!t) {
      t = { direction: summary.direction, source, destination, connections: 0, bytesFromClient: 0, bytesToClient: 0 };
      this.#totals.set(key, t);
    }
    t.connections++;
    t.bytesFromClient += summary.bytesFromClient;
    t.bytesToClient += summary.bytesToClient;
    this.#accessLog.info(
      {
        direction: summary.direction,
        src: `${summary.sourceIp}:${summary.sourcePort}`,
        src_workload: summary.sourceWorkload?.key,
        dst: summary.originalDestination,
        dst_service: summary.destinationService,
        upstream: summary.upstream,
        dst_workload: summary.destinationWorkload?.key,
        dst_principal: summary.destinationWorkload?.inMesh ? summary.destinationWorkload.identity : undefined,
        decision: summary.verdict ? (summary.verdict.allowed ? 'allow' : 'deny') : undefined,
        policy: summary.verdict?.policy,
        src_principal: summary.sourcePrincipal,
        mtls: summary.mutualTls === true,
        bytes_from_client: summary.bytesFromClient,
        bytes_to_client: summary.bytesToClient,
        duration_ms: summary.durationMs,
        error: summary.error,
        error_code: summary.errorCode,
      },
      'connection closed',
    );
  }

  /**
   * Re-decides every open inbound connection (after a policy change) and aborts those the new
   * policies no longer allow. Returns how many were closed.
   */
  recheck(decide: (q: InboundQuestion) => InboundVerdict, logger: Logger): number {
    let closed = 0;
    for (const record of this.#open.values()) {
      const q = record.question;
      if (!q || !record.abort) continue;
      const verdict = decide(q);
      if (verdict.allowed) continue;
      closed++;
      logger.info({ src: `${record.info.sourceIp}:${record.info.sourcePort}`, dst: record.info.originalDestination, policy: verdict.policy, reason: verdict.reason }, 'open connection closed: policy no longer allows it');
      record.closeReason = `policy change: ${verdict.reason}${verdict.policy ? ` (${verdict.policy})` : ''}`;
      record.abort();
    }
    return closed;
  }

  openConnections(): ConnectionInfo[] {
    return [...this.#open.values()].map((r) => r.info);
  }

  totals(): PairTotals[] {
    return [...this.#totals.values()];
  }
}

export interface PairTotals {
  direction: Direction;
  /** Workload key (`ns/name`) or IP of the client. */
  source: string;
  destination: string;
  connections: number;
  bytesFromClient: number;
  bytesToClient: number;
}

export class ConnectionRecord {
  readonly id: number;
  readonly info: ConnectionInfo;
  readonly #tracker: ConnectionTracker;
  readonly #openedAt = Date.now();
  readonly #labels: TcpLabels | undefined;
  #finished = false;
  /** Set on inbound connections: what policy was asked, so a policy change can ask again. */
  question: InboundQuestion | undefined;
  /** The authorization decision taken for this connection (inbound), for the access log. */
  verdict: InboundVerdict | undefined;
  /** Aborts both sides; set once the relay runs. */
  abort: (() => void) | undefined;
  /** Why the agent closed it, when it did (reported instead of the socket error). */
  closeReason: string | undefined;

  constructor(tracker: ConnectionTracker, id: number, info: ConnectionInfo, labels: TcpLabels | undefined) {
    this.#tracker = tracker;
    this.#labels = labels;
    this.id = id;
    this.info = info;
  }

  /**
   * Copies both ways until both sides close, then records the result. `abort` (policy changes,
   * shutdown) resets both sides. `onDone` runs first (e.g. to release a load-balancer slot).
   */
  startRelay(downstream: Duplex, upstream: Duplex, onDone?: () => void): void {
    this.abort = () => {
      abort(downstream);
      abort(upstream);
    };
    relay(downstream, upstream, (result) => {
      onDone?.();
      this.finish(result);
    });
  }

  /** Records the result exactly once; later calls are ignored. */
  finish(result: Partial<RelayResult> & { error?: Error | undefined }): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#tracker.closed(this, {
      ...this.info,
      id: this.id,
      openedAt: this.#openedAt,
      bytesFromClient: result.bytesFromDownstream ?? 0,
      bytesToClient: result.bytesFromUpstream ?? 0,
      durationMs: Date.now() - this.#openedAt,
      verdict: this.verdict,
      error: this.closeReason ?? result.error?.message,
      errorCode: this.closeReason ? 'WEFT_ERR_POLICY_DENIED' : result.error ? ((result.error as NodeJS.ErrnoException).code ?? 'other') : undefined,
    }, this.#labels);
  }
}

function workloadKey(workload: Workload | undefined, ip: string): string {
  return workload ? workload.key : ip;
}
