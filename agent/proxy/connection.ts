/**
 * One record per proxied connection: classified once when it is opened, finished exactly once
 * when it closes (access log line, counters), whatever path it took.
 */
import type { Workload } from '../discovery/types.js';
import { relay, abort, relayByteCounts, type RelayOwner, type RelayResult } from './relay.js';
import type { Duplex } from 'node:stream';
import type { InboundQuestion, InboundVerdict } from './authorization.js';
import type { Logger } from '../log.js';
import type { AgentMetrics, TcpSeries } from '../telemetry/metrics.js';
import type { LoadBalancer } from './load-balancer.js';
import type { Endpoint } from '../discovery/types.js';
import { MAX_PAIR_TOTALS } from '../config.js';
import { tcpResponseFlags } from '../telemetry/tcp-response-flags.js';
import type { InboundServiceGuess } from '../telemetry/inbound-service.js';
import { ConnectionEventHub, type ConnectionEvent, type ConnectionEventKind } from '../telemetry/connection-events.js';

export type Direction = 'outbound' | 'inbound';

export interface ConnectionInfo {
  direction: Direction;
  /** Client address as the capturing socket saw it (from a waypoint: the client it forwarded for). */
  sourceIp: string;
  sourcePort: number;
  /** The TCP peer, when it is not the client: the waypoint that forwarded the connection. */
  peer?: string;
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
  /** Envoy's response flags for how it ended (`-`, `UF`, `UH`, `DENY`), the close's response_flags label. */
  responseFlags: string;
}

/** Open connections and per-pair totals, for the admin API, tests and the demo. */
export class ConnectionTracker {
  #nextId = 1;
  readonly #open = new Map<number, ConnectionRecord>();
  readonly #totals = new Map<string, PairTotals>();
  readonly #accessLog: Logger;
  readonly #metrics: AgentMetrics | undefined;
  readonly #clusterName: string;
  /** Open connections by direction, read by the weft_open_connections gauge when scraped. */
  #openOutbound = 0;
  #openInbound = 0;
  /** Opens, decisions and closes, live, for the admin API's /connections/stream. */
  readonly events = new ConnectionEventHub();

  readonly #maxTotals: number;

  constructor(accessLog: Logger, metrics?: AgentMetrics, clusterName = 'Kubernetes', maxTotals = MAX_PAIR_TOTALS) {
    this.#maxTotals = maxTotals;
    this.#accessLog = accessLog;
    this.#metrics = metrics;
    this.#clusterName = clusterName;
    if (metrics) {
      // Bytes of connections still open count at scrape time (a pooled or long-lived
      // connection would otherwise show no bytes until it closes), as ztunnel counts them.
      metrics.liveTcpBytes = () => this.#liveBytes();
      const gauge = metrics.openConnections;
      // prom-client calls a metric's `collect` before serialising it; the typings omit the property.
      (gauge as unknown as { collect: () => void }).collect = () => {
        gauge.set({ direction: 'outbound' }, this.#openOutbound);
        gauge.set({ direction: 'inbound' }, this.#openInbound);
      };
    }
  }

  /**
   * Names the service of an inbound connection that arrived for a pod address (set by the
   * agent): the destination reporter's destination_service labels (telemetry/inbound-service.ts).
   */
  guessInboundService: InboundServiceGuess | undefined;

  open(info: ConnectionInfo): ConnectionRecord {
    if (info.direction === 'inbound' && info.destinationService === undefined && info.destinationWorkload && this.guessInboundService) {
      const port = Number(info.originalDestination.slice(info.originalDestination.lastIndexOf(':') + 1));
      const guessed = this.guessInboundService(info.destinationWorkload, port);
      if (guessed !== undefined) info = { ...info, destinationService: guessed };
    }
    let series: TcpSeries | undefined;
    if (this.#metrics) {
      series = this.#metrics.tcpSeries.get({
        reporter: info.direction === 'outbound' ? 'source' : 'destination',
        source: info.sourceWorkload,
        sourcePrincipal: info.sourcePrincipal,
        destination: info.destinationWorkload,
        destinationService: info.destinationService,
        mutualTls: info.mutualTls === true,
        clusterName: this.#clusterName,
      });
      series.opened++;
    }
    if (info.direction === 'outbound') this.#openOutbound++;
    else this.#openInbound++;
    const pair = this.#pair(info);
    pair.opened++;
    const record = new ConnectionRecord(this, this.#nextId++, info, series, pair);
    this.#open.set(record.id, record);
    if (this.events.hasSubscribers) this.events.publish(connectionEvent('open', record.id, info));
    return record;
  }

  /** @internal called by ConnectionRecord.finish */
  closed(record: ConnectionRecord, summary: ConnectionSummary, series: TcpSeries | undefined): void {
    this.#open.delete(record.id);
    if (summary.direction === 'outbound') this.#openOutbound--;
    else this.#openInbound--;
    if (series) {
      this.#metrics!.tcpSeries.withFlags(series, summary.responseFlags).closed++;
      series.receivedBytes += summary.bytesFromClient;
      series.sentBytes += summary.bytesToClient;
    }
    if (this.#metrics && summary.errorCode) this.#metrics.errors.inc({ kind: summary.errorCode });
    // The pair found at open (not looked up again); if the bounded table dropped it meanwhile,
    // this connection's counts go with it, as the oldest pair's do.
    const t = record.pair;
    t.connections++;
    t.bytesFromClient += summary.bytesFromClient;
    t.bytesToClient += summary.bytesToClient;
    if (summary.errorCode) t.errors++;
    if (summary.verdict && !summary.verdict.allowed) t.denied++;
    t.mutualTls = summary.mutualTls === true;
    if (this.events.hasSubscribers) {
      this.events.publish({
        ...connectionEvent('close', summary.id, summary),
        ...decisionOf(summary.verdict),
        bytesFromClient: summary.bytesFromClient,
        bytesToClient: summary.bytesToClient,
        durationMs: summary.durationMs,
        error: summary.error,
        errorCode: summary.errorCode,
        responseFlags: summary.responseFlags,
      });
    }
    this.#accessLog.info(
      {
        direction: summary.direction,
        src: `${summary.sourceIp}:${summary.sourcePort}`,
        peer: summary.peer,
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
        response_flags: summary.responseFlags,
      },
      'connection closed',
    );
  }

  /** Bytes so far of every relaying connection with a series, by series. */
  #liveBytes(): Map<TcpSeries, { fromClient: number; toClient: number }> {
    const bySeries = new Map<TcpSeries, { fromClient: number; toClient: number }>();
    for (const r of this.#open.values()) {
      const live = r.liveBytes();
      if (!live) continue;
      const sum = bySeries.get(live.series);
      if (sum) {
        sum.fromClient += live.fromClient;
        sum.toClient += live.toClient;
      } else bySeries.set(live.series, { fromClient: live.fromClient, toClient: live.toClient });
    }
    return bySeries;
  }

  /** The totals of the connection's pair, made on first use. */
  #pair(info: ConnectionInfo): PairTotals {
    const source = workloadKey(info.sourceWorkload, info.sourceIp);
    const destination = workloadKey(info.destinationWorkload, info.upstream.split(':')[0]!);
    const key = `${info.direction}|${source}|${destination}`;
    let t = this.#totals.get(key);
    if (!t) {
      // Bounded: pairs of short-lived or spoofed clients must not grow the agent without end;
      // the oldest pair goes (its counts stay in the Prometheus series).
      if (this.#totals.size >= this.#maxTotals) this.#totals.delete(this.#totals.keys().next().value!);
      t = { direction: info.direction, source, destination, opened: 0, connections: 0, bytesFromClient: 0, bytesToClient: 0, errors: 0, denied: 0, mutualTls: info.mutualTls === true };
      this.#totals.set(key, t);
    }
    return t;
  }

  /** @internal called when a record's policy decision is taken */
  decided(record: ConnectionRecord, verdict: InboundVerdict): void {
    if (this.events.hasSubscribers) this.events.publish({ ...connectionEvent('decision', record.id, record.info), ...decisionOf(verdict) });
  }

  /**
   * Re-decides every open inbound connection (after a policy change) and aborts those the new
   * policies no longer allow. Returns how many were closed.
   */
  recheck(decide: (q: InboundQuestion) => InboundVerdict, logger: Logger): number {
    let closed = 0;
    for (const record of this.#open.values()) {
      const q = record.question;
      if (!q || !record.relaying) continue;
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
  /** Connections opened (counted at open; `connections` counts those closed). */
  opened: number;
  connections: number;
  bytesFromClient: number;
  bytesToClient: number;
  /** Closed connections that ended with an error (a refusal, a failed connect, a reset). */
  errors: number;
  /** Closed connections that authorization policy refused. */
  denied: number;
  /** Whether the pair's latest connection went over mutual TLS. */
  mutualTls: boolean;
}

function connectionEvent(event: ConnectionEventKind, id: number, info: ConnectionInfo): ConnectionEvent {
  const dst = info.destinationWorkload;
  return {
    event,
    id,
    time: new Date().toISOString(),
    direction: info.direction,
    src: `${info.sourceIp}:${info.sourcePort}`,
    srcWorkload: info.sourceWorkload?.key,
    srcPrincipal: info.sourcePrincipal ?? (info.direction === 'outbound' ? info.sourceWorkload?.identity : undefined),
    dst: info.originalDestination,
    dstService: info.destinationService,
    upstream: info.upstream,
    dstWorkload: dst?.key,
    dstPrincipal: dst?.inMesh ? dst.identity : undefined,
    mtls: info.mutualTls === true,
  };
}

function decisionOf(verdict: InboundVerdict | undefined): Pick<ConnectionEvent, 'decision' | 'policy' | 'reason'> {
  if (!verdict) return {};
  return { decision: verdict.allowed ? 'allow' : 'deny', policy: verdict.policy, reason: verdict.reason };
}

export class ConnectionRecord implements RelayOwner {
  readonly id: number;
  readonly info: ConnectionInfo;
  readonly #tracker: ConnectionTracker;
  readonly #openedAt = Date.now();
  readonly #series: TcpSeries | undefined;
  #finished = false;
  /** The relay's two sides, once it runs (for abort). */
  #downstream: Duplex | undefined;
  #upstream: Duplex | undefined;
  /** A load-balancer slot held until the connection is finished. */
  #loadBalancer: LoadBalancer | undefined;
  #endpoint: Endpoint | undefined;
  /** Set on inbound connections: what policy was asked, so a policy change can ask again. */
  question: InboundQuestion | undefined;
  #verdict: InboundVerdict | undefined;
  /** Why the agent closed it, when it did (reported instead of the socket error). */
  closeReason: string | undefined;

  /** @internal the per-pair totals this connection counts in */
  readonly pair: PairTotals;

  constructor(tracker: ConnectionTracker, id: number, info: ConnectionInfo, series: TcpSeries | undefined, pair: PairTotals) {
    this.pair = pair;
    this.#tracker = tracker;
    this.#series = series;
    this.id = id;
    this.info = info;
  }

  /** The authorization decision taken for this connection (inbound), for the access log and the event feed. */
  get verdict(): InboundVerdict | undefined {
    return this.#verdict;
  }

  set verdict(verdict: InboundVerdict | undefined) {
    this.#verdict = verdict;
    if (verdict) this.#tracker.decided(this, verdict);
  }

  /** Whether the relay runs (and abort() resets both sides). */
  get relaying(): boolean {
    return this.#downstream !== undefined;
  }

  /** Takes a slot of `endpoint` in the load balancer; released first thing when finished. */
  holdEndpoint(loadBalancer: LoadBalancer, endpoint: Endpoint): void {
    loadBalancer.acquire(endpoint);
    this.#loadBalancer = loadBalancer;
    this.#endpoint = endpoint;
  }

  /** The bytes this connection has relayed so far and its series, while it relays. */
  liveBytes(): { series: TcpSeries; fromClient: number; toClient: number } | undefined {
    if (!this.#series || !this.#downstream || !this.#upstream) return undefined;
    const b = relayByteCounts(this.#downstream, this.#upstream);
    return { series: this.#series, fromClient: b.bytesFromDownstream, toClient: b.bytesFromUpstream };
  }

  /** Copies both ways until both sides close, then records the result. */
  startRelay(downstream: Duplex, upstream: Duplex): void {
    this.#downstream = downstream;
    this.#upstream = upstream;
    relay(downstream, upstream, this);
  }

  /** Resets both sides (policy changes, shutdown); no-op before the relay runs. */
  abort(): void {
    if (this.#downstream) abort(this.#downstream);
    if (this.#upstream) abort(this.#upstream);
  }

  /** @internal RelayOwner */
  relayDone(result: RelayResult): void {
    this.finish(result);
  }

  /** Records the result exactly once; later calls are ignored. */
  finish(result: Partial<RelayResult> & { error?: Error | undefined }): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#endpoint) {
      this.#loadBalancer!.release(this.#endpoint);
      this.#endpoint = undefined;
    }
    this.#downstream = undefined;
    this.#upstream = undefined;
    const code = result.error ? ((result.error as NodeJS.ErrnoException).code ?? 'other') : undefined;
    // connect(2) of a socket bound to the client's IP found no free port for the 4-tuple.
    const exhausted = code === 'EADDRNOTAVAIL';
    const bytesToClient = result.bytesFromUpstream ?? 0;
    const error = this.closeReason ?? (exhausted ? `no local port left for ${this.info.sourceIp} to ${this.info.upstream} (net.ipv4.ip_local_port_range used up): EADDRNOTAVAIL` : result.error?.message);
    const errorCode = this.closeReason ? 'WEFT_ERR_POLICY_DENIED' : exhausted ? 'WEFT_ERR_PORTS_EXHAUSTED' : code;
    this.#tracker.closed(this, {
      ...this.info,
      id: this.id,
      openedAt: this.#openedAt,
      bytesFromClient: result.bytesFromDownstream ?? 0,
      bytesToClient,
      durationMs: Date.now() - this.#openedAt,
      verdict: this.verdict,
      error,
      errorCode,
      responseFlags: tcpResponseFlags({ errorCode, error, bytesToClient }),
    }, this.#series);
  }
}

function workloadKey(workload: Workload | undefined, ip: string): string {
  return workload ? workload.key : ip;
}
