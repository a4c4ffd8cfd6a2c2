/**
 * One forwarded request as a sequence of attempts, whatever the protocol: the circuit breaker's
 * admission per attempt (503 UO on overflow), the per-try and the request timeout (504 UT), the
 * retry decision (retry-on.ts) under the retry budget and maxRetries, the jittered backoff, a
 * different endpoint for a retry where the backend has one (Envoy's previous-hosts), URX when
 * the attempts are used up, and the outlier detector's view of every answer. The protocol
 * handlers (http1.ts, http2.ts) subclass it with how one attempt is sent, cancelled and
 * answered; they call back with what became of it.
 *
 * The no-policy path (no retry, no DestinationRule) touches no cluster state: one object per
 * request, and a timer only when the rule has a timeout.
 */
import type { Endpoint, Service } from '../../discovery/types.js';
import { formatAuthority } from '../../tunnel/authority.js';
import type { RequestRecord, TunnelContext, WaypointInputs } from '../context.js';
import type { ForwardPlan } from '../decide.js';
import type { ClusterState, SlotWaiter } from './cluster.js';
import { backoffMs, compileRetry, retries, type AttemptOutcome, type CompiledRetry } from './retry-on.js';

export type FailureKind = 'connect-failure' | 'reset' | 'refused-stream';

const OUTCOME: Readonly<Record<FailureKind, AttemptOutcome>> = { 'connect-failure': { kind: 'connect-failure' }, reset: { kind: 'reset' }, 'refused-stream': { kind: 'refused-stream' } };

export const CONNECT_FAILURE_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
export const RESET_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: connection termination';
export const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
export const TIMEOUT_BODY = 'upstream request timeout';

export abstract class Exchange implements SlotWaiter {
  protected readonly inputs: WaypointInputs;
  protected readonly tunnel: TunnelContext;
  protected readonly record: RequestRecord;
  protected readonly plan: ForwardPlan;
  protected readonly service: Service;
  protected endpoint: Endpoint;
  /** Increases per attempt sent: callbacks of an attempt given up compare it and are ignored. */
  protected attempt = 0;
  readonly #http1: boolean;
  readonly #cluster: ClusterState | undefined;
  readonly #retry: CompiledRetry | undefined;
  readonly #perTryMs: number | undefined;
  #retriesDone = 0;
  #ended = false;
  #inFlight = false;
  #holdsRequest = false;
  #holdsConnection = false;
  #waiting = false;
  #holdsRetry = false;
  #timer: NodeJS.Timeout | undefined;
  #tryTimer: NodeJS.Timeout | undefined;
  #backoff: NodeJS.Timeout | undefined;
  #tried: Endpoint[] | undefined;

  constructor(inputs: WaypointInputs, tunnel: TunnelContext, record: RequestRecord, plan: ForwardPlan, service: Service, endpoint: Endpoint, http1: boolean) {
    this.inputs = inputs;
    this.tunnel = tunnel;
    this.record = record;
    this.plan = plan;
    this.service = service;
    this.endpoint = endpoint;
    this.#http1 = http1;
    const retry = plan.rule?.retry;
    this.#retry = retry === undefined || retry.attempts <= 0 ? undefined : compileRetry(retry);
    this.#cluster = this.#retry !== undefined || plan.backend.policy !== undefined ? inputs.resilience.clusters.get(plan.backend, inputs.resilience.now()) : undefined;
    const backend = plan.timeouts.backendRequestMs;
    const perTry = this.#retry?.perTryTimeoutMs;
    this.#perTryMs = perTry === undefined ? backend : backend === undefined ? perTry : Math.min(perTry, backend);
  }

  /** Whether the request may be retried at all (the handler keeps its body for a replay then). */
  get retriable(): boolean {
    return this.#retry !== undefined;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sends the first attempt; the request timeout starts. */
  start(): void {
    const ms = this.plan.timeouts.requestMs;
    if (ms !== undefined) this.#timer = setTimeout(() => this.#timedOut(ms, false), ms);
    this.#try();
  }

  /** Sends one attempt to `endpoint` (number `attempt`). */
  protected abstract send(endpoint: Endpoint, attempt: number): void;
  /** Gives up the attempt in flight (its upstream request or stream is cancelled; its answer, if any, is dropped). */
  protected abstract cancel(): void;
  /** Whether the response head went downstream already (no retry, no local answer after that). */
  protected abstract headersSent(): boolean;
  /** Answers the request locally (nothing was sent downstream yet). */
  protected abstract answer(status: number, body: string): void;
  /** Resets the downstream request (the answer had begun). */
  protected abstract reset(): void;
  /** Whether the request body so far can be sent again. */
  protected abstract replayable(): boolean;

  /**
   * The attempt's response head: true when the handler is to forward it, false when it is
   * dropped (stale, or retried: the handler discards its body).
   */
  protected responseHead(attempt: number, status: number, grpcStatus: number | undefined): boolean {
    if (attempt !== this.attempt || this.#ended) return false;
    this.#observe(status);
    if (this.#retry !== undefined && this.#wantsRetry({ kind: 'status', status, grpcStatus })) {
      this.#retryLater();
      return false;
    }
    return true;
  }

  /** The attempt failed before or while answering. */
  protected failed(attempt: number, kind: FailureKind, message: string): void {
    if (attempt !== this.attempt || this.#ended) return;
    this.#observe(503);
    const early = !this.headersSent();
    if (early && this.#retry !== undefined && this.#wantsRetry(OUTCOME[kind])) {
      this.#retryLater();
      return;
    }
    const connect = kind === 'connect-failure';
    const r = this.record;
    r.flag(connect ? 'UF' : 'UC');
    r.reason = this.#exhausted(connect ? message : `upstream connection reset: ${message}`);
    if (connect) this.inputs.logger.warn({ upstream: r.upstream, code: 'WEFT_ERR_WAYPOINT_UPSTREAM', reason: message }, 'upstream connect failed');
    this.cancel();
    if (early) {
      r.status = 503;
      this.answer(503, connect ? CONNECT_FAILURE_BODY : RESET_BODY);
    } else this.reset();
    this.finish();
  }

  /** The attempt's answer went downstream completely. */
  protected completed(attempt: number): void {
    if (attempt === this.attempt) this.finish();
  }

  /** The client went away: whatever is in flight is given up. */
  abandon(): void {
    if (this.#ended) return;
    this.cancel();
    this.finish();
  }

  /** Called by the cluster when an HTTP/1 connection slot frees up for this waiting attempt. */
  granted(): void {
    this.#waiting = false;
    this.#holdsConnection = true;
    if (this.#ended) {
      this.#releaseAttempt();
      return;
    }
    this.#dispatch();
  }

  /** Releases everything the request holds (once). */
  protected finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#backoff);
    this.#releaseAttempt();
    if (this.#holdsRetry) {
      this.#holdsRetry = false;
      this.#cluster!.endRetry();
    }
  }

  #try(): void {
    const c = this.#cluster;
    if (c !== undefined) {
      if (!c.startRequest()) {
        this.#overflow(`${c.activeRequests} requests active, http2MaxRequests ${c.pool?.http2MaxRequests}`);
        return;
      }
      this.#holdsRequest = true;
      if (this.#http1 && c.limitsConnections) {
        const slot = c.acquireConnection(this);
        if (slot === 'overflow') {
          this.#overflow(`${c.busyConnections} connections busy (maxConnections ${c.pool?.maxConnections}) and ${c.pending} requests pending (http1MaxPendingRequests ${c.pool?.http1MaxPendingRequests})`);
          return;
        }
        if (slot === 'queued') {
          this.#waiting = true;
          return;
        }
        this.#holdsConnection = true;
      }
    }
    this.#dispatch();
  }

  #dispatch(): void {
    const attempt = ++this.attempt;
    this.record.attempts = attempt;
    this.inputs.picker.begin(this.endpoint);
    this.#inFlight = true;
    const ms = this.#perTryMs;
    if (ms !== undefined) this.#tryTimer = setTimeout(() => this.#timedOut(ms, true), ms);
    this.send(this.endpoint, attempt);
  }

  #overflow(why: string): void {
    const r = this.record;
    r.flag('UO');
    r.reason = `WEFT_ERR_WAYPOINT_OVERFLOW: ${this.plan.backend.service}: ${why}`;
    this.#releaseAttempt();
    if (!this.headersSent()) {
      r.status = 503;
      this.answer(503, OVERFLOW_BODY);
    } else this.reset();
    this.finish();
  }

  #timedOut(ms: number, perTry: boolean): void {
    if (this.#ended) return;
    if (perTry) {
      this.#observe(504);
      if (this.#retry !== undefined && !this.headersSent() && this.#wantsRetry(OUTCOME.reset)) {
        this.#retryLater();
        return;
      }
    }
    const r = this.record;
    r.flag('UT');
    r.reason = this.#exhausted(`WEFT_ERR_WAYPOINT_TIMEOUT: no complete answer within ${ms} ms${perTry && this.#retry !== undefined ? ' (per try)' : ''}`);
    this.cancel();
    if (this.#waiting) {
      this.#cluster!.cancelWait(this);
      this.#waiting = false;
    }
    if (!this.headersSent()) {
      r.status = 504;
      this.answer(504, TIMEOUT_BODY);
    } else this.reset();
    this.finish();
  }

  /** The reason, prefixed when the request ran out of retries (flag URX already set). */
  #exhausted(reason: string): string {
    if (this.#retry === undefined || this.#retriesDone < this.#retry.attempts) return reason;
    return `WEFT_ERR_WAYPOINT_RETRIES_EXHAUSTED: ${this.#retriesDone} retries; last: ${reason}`;
  }

  /** Whether this outcome is retried now (policy, replayable body, attempts left, budget); sets URX when only the attempts are lacking. */
  #wantsRetry(outcome: AttemptOutcome): boolean {
    const policy = this.#retry!;
    if (!retries(policy, outcome) || !this.replayable()) return false;
    if (this.#retriesDone >= policy.attempts) {
      const r = this.record;
      r.flag('URX');
      if (outcome.kind === 'status') r.reason = `WEFT_ERR_WAYPOINT_RETRIES_EXHAUSTED: ${this.#retriesDone} retries; last answer ${outcome.status}${outcome.grpcStatus === undefined ? '' : ` grpc-status ${outcome.grpcStatus}`}`;
      return false;
    }
    if (!this.#holdsRetry) {
      if (!this.#cluster!.startRetry()) {
        this.inputs.logger.debug({ backend: this.plan.backend.service, activeRetries: this.#cluster!.activeRetries }, 'retry not made: the retry budget or maxRetries is used up');
        return false;
      }
      this.#holdsRetry = true;
    }
    return true;
  }

  #retryLater(): void {
    this.cancel();
    this.#releaseAttempt();
    this.#retriesDone++;
    (this.#tried ??= []).push(this.endpoint);
    const wait = backoffMs(this.#retriesDone, this.#retry!.backoffBaseMs, this.inputs.random());
    this.#backoff = setTimeout(() => this.#retryNow(), wait);
  }

  #retryNow(): void {
    if (this.#ended) return;
    const next = pickEndpoint(this.inputs, this.service, this.plan, this.#tried);
    if (next === undefined) {
      const r = this.record;
      r.flag('UH');
      r.reason = `WEFT_ERR_WAYPOINT_NO_ENDPOINT: service ${this.plan.backend.service} has no healthy endpoint left for a retry`;
      r.status = 503;
      this.answer(503, 'no healthy upstream');
      this.finish();
      return;
    }
    this.endpoint = next;
    this.record.endpoint = next;
    this.record.upstream = formatAuthority(next.ip, next.port);
    this.#try();
  }

  #releaseAttempt(): void {
    clearTimeout(this.#tryTimer);
    if (this.#inFlight) {
      this.#inFlight = false;
      this.inputs.picker.end(this.endpoint);
    }
    const c = this.#cluster;
    if (c === undefined) return;
    if (this.#holdsConnection) {
      this.#holdsConnection = false;
      c.releaseConnection();
    }
    if (this.#holdsRequest) {
      this.#holdsRequest = false;
      c.endRequest();
    }
  }

  /** An answer (or failure, as 503; a per-try timeout as 504) of the current endpoint, for outlier detection. */
  #observe(status: number): void {
    const detector = this.#cluster?.outlier;
    if (detector === undefined) return;
    const now = this.inputs.resilience.now();
    const total = this.service.ports.get(this.plan.backend.port)?.length ?? 1;
    const ejection = detector.report(this.endpoint.ip, status, total, now);
    if (ejection !== undefined) {
      this.inputs.logger.warn({ code: 'WEFT_ERR_WAYPOINT_ENDPOINT_EJECTED', backend: this.plan.backend.service, endpoint: this.record.upstream, reason: ejection.reason, ejections: ejection.ejections, forMs: Math.round(ejection.until - now) }, 'endpoint ejected by outlier detection');
    }
  }
}

/**
 * The endpoint for a request to `plan.backend`: ejected endpoints skipped (unless too few are
 * healthy: panic), and those in `avoid` (a retry's previous hosts) where another exists.
 */
export function pickEndpoint(inputs: WaypointInputs, service: Service, plan: ForwardPlan, avoid: readonly Endpoint[] | undefined): Endpoint | undefined {
  const backend = plan.backend;
  const detector = backend.policy?.outlierDetection === undefined ? undefined : inputs.resilience.clusters.get(backend, inputs.resilience.now()).outlier;
  return inputs.picker.pick(service, backend, avoid, detector, detector === undefined ? 0 : inputs.resilience.now());
}
