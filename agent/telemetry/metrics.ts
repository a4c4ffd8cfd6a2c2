/**
 * Prometheus metrics (prom-client). The TCP metrics carry Istio's standard names and labels so
 * existing dashboards and Kiali work; `weft_*` metrics describe the agent itself. Label values
 * come from discovery (workload names, not IPs), so cardinality is bounded by the cluster.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Workload } from '../discovery/types.js';
import { PEER_LABELS, peerLabels } from './labels.js';
import { NO_FLAGS } from './tcp-response-flags.js';

/** Istio's TCP metric labels: the peer labels every standard metric carries (labels.ts). */
export const TCP_LABELS = PEER_LABELS;

export type TcpLabelName = (typeof TCP_LABELS)[number];
export type TcpLabels = Record<TcpLabelName, string>;

export interface TcpLabelInput {
  reporter: 'source' | 'destination';
  source: Workload | undefined;
  /** SPIFFE ID of the source when it was authenticated (HBONE), else undefined. */
  sourcePrincipal: string | undefined;
  destination: Workload | undefined;
  /** `<namespace>/<name>` of the destination service, if the connection was to one. */
  destinationService: string | undefined;
  mutualTls: boolean;
  clusterName: string;
  /** Envoy's response flags of the connection (tcp-response-flags.ts); `-` (none) when absent. */
  responseFlags?: string;
}

/** Sources for the gauges read at scrape time (set once by the agent). */
export interface StateSources {
  certificates(): { identity: string; notAfter: Date | undefined }[];
  pools(): { pod: string; connectionsOpen: number }[];
}

/** Refreshes the state gauges on every scrape, from the live state (no bookkeeping on the hot path). */
export function collectStateOnScrape(metrics: AgentMetrics, sources: StateSources): void {
  const expiry = metrics.certificateExpiry;
  const pools = metrics.poolConnections;
  // prom-client calls a metric's `collect` before serialising it; the typings omit the property.
  (expiry as unknown as { collect: () => void }).collect = () => {
    expiry.reset();
    for (const c of sources.certificates()) if (c.notAfter) expiry.set({ identity: c.identity }, c.notAfter.getTime() / 1000);
  };
  (pools as unknown as { collect: () => void }).collect = () => {
    pools.reset();
    for (const p of sources.pools()) pools.set({ pod: p.pod }, p.connectionsOpen);
  };
}

/** Istio's TCP label set for one connection; computed once when the connection is classified. */
export function tcpLabels(input: TcpLabelInput): TcpLabels {
  return peerLabels({ ...input, requestProtocol: 'tcp', responseFlags: input.responseFlags ?? NO_FLAGS });
}

/**
 * How often the event-loop lag histogram samples. prom-client's default (10 ms) is a timer that
 * woke an idle agent 100 times a second (about 13 ms of CPU per second per agent, doing nothing);
 * once a second still shows a loop that stalls for long, at no cost worth measuring.
 */
const EVENT_LOOP_SAMPLE_MS = 1000;

/**
 * The Istio TCP series of one label set, shared by every connection that has those labels. The
 * hot path adds to plain numbers here; prom-client reads them when it is scraped (see
 * TcpSeriesTable), so a connection neither builds a label object nor has prom-client hash one.
 */
export class TcpSeries {
  readonly labels: TcpLabels;
  opened = 0;
  closed = 0;
  sentBytes = 0;
  receivedBytes = 0;

  constructor(labels: TcpLabels) {
    this.labels = labels;
  }
}

/** Stands for "no workload" in the lookup maps below (WeakMap keys must be objects). */
const NO_WORKLOAD = {};

/**
 * Every TcpSeries, by label values, and a lookup from what a connection knows (its source and
 * destination Workload objects, principal, service, mTLS) to its series. Workload objects are
 * the model's (replaced when the workload changes), so the lookup is keyed by object identity in
 * WeakMaps: a changed or removed workload drops out of it with the model. The series themselves
 * stay, as prom-client's would: counters are totals since start.
 */
export class TcpSeriesTable {
  readonly #byValues = new Map<string, TcpSeries>();
  readonly #lookup = new WeakMap<object, WeakMap<object, Map<string, TcpSeries>>>();
  readonly #flagged = new WeakMap<TcpSeries, Map<string, TcpSeries>>();

  /** The series of a connection (TcpLabelInput as tcpLabels takes it). */
  get(input: TcpLabelInput): TcpSeries {
    const src: object = input.source ?? NO_WORKLOAD;
    const dst: object = input.destination ?? NO_WORKLOAD;
    let byDst = this.#lookup.get(src);
    if (byDst === undefined) this.#lookup.set(src, (byDst = new WeakMap()));
    let byRest = byDst.get(dst);
    if (byRest === undefined) byDst.set(dst, (byRest = new Map()));
    const rest = `${input.reporter}\u0000${input.sourcePrincipal ?? ''}\u0000${input.destinationService ?? ''}\u0000${input.mutualTls ? 1 : 0}\u0000${input.clusterName}\u0000${input.responseFlags ?? NO_FLAGS}`;
    let series = byRest.get(rest);
    if (series === undefined) {
      series = this.#byLabels(tcpLabels(input));
      byRest.set(rest, series);
    }
    return series;
  }

  /**
   * The series of `series`'s labels with `flags` as response_flags. A connection is opened on
   * its series without flags and, when it ends with some (UF, DENY, ...), counts its close on
   * this one, as ztunnel does: the flags are only known at the end.
   */
  withFlags(series: TcpSeries, flags: string): TcpSeries {
    if (flags === series.labels.response_flags) return series;
    let byFlags = this.#flagged.get(series);
    if (byFlags === undefined) this.#flagged.set(series, (byFlags = new Map()));
    let flagged = byFlags.get(flags);
    if (flagged === undefined) byFlags.set(flags, (flagged = this.#byLabels({ ...series.labels, response_flags: flags })));
    return flagged;
  }

  #byLabels(labels: TcpLabels): TcpSeries {
    const values = TCP_LABELS.map((n) => labels[n]).join('\u0000');
    let series = this.#byValues.get(values);
    if (series === undefined) this.#byValues.set(values, (series = new TcpSeries(labels)));
    return series;
  }

  all(): IterableIterator<TcpSeries> {
    return this.#byValues.values();
  }
}

/** Bytes so far of the connections still open, by series (see AgentMetrics.liveTcpBytes). */
export type LiveTcpBytes = () => Map<TcpSeries, { fromClient: number; toClient: number }>;

/** Feeds the TCP counters from the series table when prom-client collects them. */
function collectTcpOnScrape(counter: Counter<TcpLabelName>, table: TcpSeriesTable, value: (s: TcpSeries, live: Map<TcpSeries, { fromClient: number; toClient: number }> | undefined) => number, live?: () => LiveTcpBytes | undefined): void {
  // prom-client calls a metric's `collect` before serialising it; the typings omit the property.
  (counter as unknown as { collect: () => void }).collect = () => {
    counter.reset();
    const open = live?.()?.();
    // Series with nothing to count are left out, as they were when counters were incremented
    // per connection (bytes only when > 0, closed only once one closed).
    for (const s of table.all()) {
      const v = value(s, open);
      if (v > 0) counter.inc(s.labels, v);
    }
  };
}

export class AgentMetrics {
  readonly registry: Registry;
  readonly tcpOpened: Counter<TcpLabelName>;
  readonly tcpClosed: Counter<TcpLabelName>;
  /** Bytes sent to the client (response direction), as Istio defines it. */
  readonly tcpSentBytes: Counter<TcpLabelName>;
  /** Bytes received from the client (request direction). */
  readonly tcpReceivedBytes: Counter<TcpLabelName>;
  /** What the four counters above report, added to per connection (see TcpSeries). */
  readonly tcpSeries = new TcpSeriesTable();
  /** Set by the connection tracker: the bytes of open connections, added at scrape time. */
  liveTcpBytes: LiveTcpBytes | undefined;
  readonly capturedPods: Gauge;
  readonly openConnections: Gauge<'direction'>;
  readonly discoveryUpdates: Counter<'result'>;
  readonly policyDecisions: Counter<'result' | 'action'>;
  readonly errors: Counter<'kind'>;
  readonly certificateExpiry: Gauge<'identity'>;
  readonly poolConnections: Gauge<'pod'>;

  constructor(registry: Registry = new Registry(), options: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: registry, prefix: 'weft_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    }
    const tcp = (name: string, help: string) => new Counter({ name, help, labelNames: TCP_LABELS, registers: [registry] });
    this.tcpOpened = tcp('istio_tcp_connections_opened_total', 'TCP connections opened');
    this.tcpClosed = tcp('istio_tcp_connections_closed_total', 'TCP connections closed');
    this.tcpSentBytes = tcp('istio_tcp_sent_bytes_total', 'Bytes sent to the client during the connection (response direction)');
    this.tcpReceivedBytes = tcp('istio_tcp_received_bytes_total', 'Bytes received from the client during the connection (request direction)');
    collectTcpOnScrape(this.tcpOpened, this.tcpSeries, (s) => s.opened);
    collectTcpOnScrape(this.tcpClosed, this.tcpSeries, (s) => s.closed);
    // Closed connections' bytes plus those of the open ones so far: the live part becomes the
    // closed part when the connection ends, from the same socket counters, so the total only grows.
    collectTcpOnScrape(this.tcpSentBytes, this.tcpSeries, (s, open) => s.sentBytes + (open?.get(s)?.toClient ?? 0), () => this.liveTcpBytes);
    collectTcpOnScrape(this.tcpReceivedBytes, this.tcpSeries, (s, open) => s.receivedBytes + (open?.get(s)?.fromClient ?? 0), () => this.liveTcpBytes);
    this.capturedPods = new Gauge({ name: 'weft_captured_pods', help: 'Pods on this node whose traffic the agent captures', registers: [registry] });
    this.openConnections = new Gauge({ name: 'weft_open_connections', help: 'Proxied connections open now', labelNames: ['direction'], registers: [registry] });
    this.discoveryUpdates = new Counter({ name: 'weft_discovery_updates_total', help: 'Discovery updates applied (result=applied) or refused as invalid (result=invalid)', labelNames: ['result'], registers: [registry] });
    this.policyDecisions = new Counter({ name: 'weft_policy_decisions_total', help: 'Authorization decisions by result (allow, deny) and the deciding action', labelNames: ['result', 'action'], registers: [registry] });
    this.errors = new Counter({ name: 'weft_errors_total', help: 'Errors by kind (stable WEFT_ERR_* code or socket error code)', labelNames: ['kind'], registers: [registry] });
    this.certificateExpiry = new Gauge({ name: 'weft_certificate_expiry_timestamp_seconds', help: 'When the workload certificate of each identity on this node expires (Unix time)', labelNames: ['identity'], registers: [registry] });
    this.poolConnections = new Gauge({ name: 'weft_hbone_pool_connections', help: 'HBONE (mutual TLS) connections open in each captured pod\'s pool', labelNames: ['pod'], registers: [registry] });
  }
}
