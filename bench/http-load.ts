/**
 * The load generator's HTTP mode (run by loadgen.ts in a lab pod): 1 KiB requests over
 *   h1   HTTP/1.1 keep-alive through node:http's Agent (one request in flight per connection:
 *        what a keep-alive client does; undici is not in node_modules), or over TLS (https);
 *   h2   HTTP/2 with prior knowledge (h2c) through node:http2, gRPC-like: POST with
 *        content-type application/grpc and te: trailers, one length-prefixed 1 KiB message each
 *        way, the answer complete when the trailers (grpc-status) arrive; streams round-robin
 *        over the sessions.
 * Open loop at `rate` (latency from each request's intended send time, as the latency mode) or,
 * without a rate, closed loop: `connections` requests in flight, each sent when the one before
 * it completed (the rate the path sustains). `newConnectionPerRequest` (h1 only) opens a new
 * connection, and over TLS a new handshake, for every request. Bounded in requests
 * (`maxRequests`) and in time (the measured window plus a drain), like every mode.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { GRPC_PATH, grpcFrame, HTTP_MESSAGE_BYTES } from './protocol.js';
import { newLatencyHistogram, summarize, type LatencySummary } from './histogram.js';
import { OpenLoopSchedule } from './schedule.js';

export interface HttpLoadSpec {
  mode: 'http';
  target: { host: string; port: number };
  protocol: 'h1' | 'h2';
  /** HTTPS (h1 only): the CA file that verifies the server and the SNI / name to verify. */
  tls?: { caFile: string; servername: string };
  /** Host header / :authority (default host:port). */
  authority?: string;
  /** Open loop at this many requests per second; absent: closed loop. */
  rate?: number;
  connections: number;
  newConnectionPerRequest?: boolean;
  durationMs: number;
  warmupMs: number;
  /** Hard cap on requests sent, whatever the rate or the path's speed. */
  maxRequests: number;
}

export interface HttpResult {
  mode: 'http';
  protocol: 'h1' | 'h2';
  rate: number | undefined;
  sent: number;
  answered: number;
  unanswered: number;
  /** Answers that were not 200 (and, for h2, grpc-status 0). */
  failed: number;
  /** The status (h2: `status/grpc-status`) of the failed answers, counted. */
  failedByStatus: Record<string, number>;
  errors: number;
  errorsByCode: Record<string, number>;
  /** Open loop: requests due while MAX_IN_FLIGHT were outstanding, not sent. */
  skipped: number;
  /** Measured window only (after warm-up). */
  latency: LatencySummary;
  /** From the moment the request was handed to a connection (h1: the socket assigned). */
  serviceLatency: LatencySummary;
  achievedRps: number;
}

const DRAIN_MS = 5_000;
/**
 * Open loop: requests in flight at most. Beyond it the path has fallen far behind the rate; the
 * requests then due are not sent but counted (`skipped`), so an overloaded run stays bounded in
 * memory and sockets (the achieved rate shows the shortfall).
 */
const MAX_IN_FLIGHT = 4096;
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_ERRORS = 1_000;

type Done = (ok: boolean, sentAt: number, err?: unknown, status?: string) => void;

interface Client {
  /** Sends one request; `done` is called exactly once. */
  send(done: Done): void;
  close(): void;
}

const BODY = Buffer.alloc(HTTP_MESSAGE_BYTES, 0x61);
const GRPC_BODY = grpcFrame(HTTP_MESSAGE_BYTES);

function h1Client(spec: HttpLoadSpec): Client {
  const tls = spec.tls;
  const ca = tls === undefined ? undefined : readFileSync(tls.caFile);
  const fresh = spec.newConnectionPerRequest === true;
  const agent = fresh
    ? undefined
    : tls === undefined
      ? new http.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections, scheduling: 'fifo' })
      : new https.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections, scheduling: 'fifo', ca, servername: tls.servername });
  const host = spec.authority ?? `${spec.target.host}:${spec.target.port}`;
  const headers = { host, 'content-type': 'application/octet-stream', 'content-length': String(BODY.length), ...(fresh ? { connection: 'close' } : {}) };
  const request = tls === undefined ? http.request : https.request;
  return {
    send(done: Done): void {
      let finished = false;
      let sentAt = performance.now();
      const finish = (ok: boolean, err?: unknown, status?: string): void => {
        if (finished) return;
        finished = true;
        done(ok, sentAt, err, status);
      };
      const req = request({
        host: spec.target.host,
        port: spec.target.port,
        method: 'POST',
        path: '/echo',
        headers,
        timeout: REQUEST_TIMEOUT_MS,
        // agent: false is a new connection per request.
        agent: agent ?? false,
        ...(tls !== undefined ? { ca, servername: tls.servername } : {}),
      });
      req.once('socket', () => (sentAt = performance.now()));
      req.on('response', (res) => {
        res.on('data', () => undefined);
        res.on('end', () => finish(res.statusCode === 200, undefined, String(res.statusCode)));
        res.on('error', (err) => finish(false, err));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => finish(false, err));
      req.end(BODY);
    },
    close(): void {
      agent?.destroy();
    },
  };
}

function h2Client(spec: HttpLoadSpec): Client {
  const authority = spec.authority ?? `${spec.target.host}:${spec.target.port}`;
  const sessions: http2.ClientHttp2Session[] = [];
  const open = (): http2.ClientHttp2Session => {
    const s = http2.connect(`http://${spec.target.host}:${spec.target.port}`, { settings: { enablePush: false } });
    // A session error fails its streams (counted there); the session is replaced on next use.
    s.on('error', () => undefined);
    return s;
  };
  for (let i = 0; i < spec.connections; i++) sessions.push(open());
  let next = 0;
  const headers = { ':method': 'POST', ':path': GRPC_PATH, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' };
  return {
    send(done: Done): void {
      const i = next++ % sessions.length;
      let session = sessions[i]!;
      if (session.closed || session.destroyed) session = sessions[i] = open();
      const sentAt = performance.now();
      let finished = false;
      let status = 0;
      let grpcStatus: string | undefined;
      const finish = (ok: boolean, err?: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        done(ok, sentAt, err, `${status}/${grpcStatus ?? '-'}`);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers);
      } catch (err) {
        finish(false, err);
        return;
      }
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(false, { code: 'ETIMEDOUT' });
      }, REQUEST_TIMEOUT_MS);
      stream.on('response', (h) => {
        status = Number(h[':status']);
        // A trailers-only answer (an error) carries grpc-status in the headers.
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      stream.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])));
      stream.on('data', () => undefined);
      stream.on('end', () => finish(status === 200 && grpcStatus === '0'));
      stream.on('error', (err) => finish(false, err));
      stream.on('close', () => finish(false, { code: `h2 stream closed (${stream.rstCode})` }));
      stream.end(GRPC_BODY);
    },
    close(): void {
      for (const s of sessions) s.destroy();
    },
  };
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'other';
}

export async function runHttp(spec: HttpLoadSpec): Promise<HttpResult> {
  if (spec.protocol === 'h2' && (spec.tls !== undefined || spec.newConnectionPerRequest === true)) throw new Error('h2 runs as h2c over persistent connections only');
  const client = spec.protocol === 'h1' ? h1Client(spec) : h2Client(spec);
  const hist = newLatencyHistogram();
  const service = newLatencyHistogram();
  const errorsByCode: Record<string, number> = {};
  const failedByStatus: Record<string, number> = {};
  let sent = 0;
  let skipped = 0;
  let answered = 0;
  let failed = 0;
  let errors = 0;
  const start = performance.now() + 5;
  const recordFrom = start + spec.warmupMs;
  const windowEnd = recordFrom + spec.durationMs;
  const onDone = (intended: number): Done => (ok, sentAt, err, status) => {
    if (err !== undefined) {
      errors++;
      const code = errorCode(err);
      errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
    } else if (!ok) {
      failed++;
      const key = status ?? '?';
      failedByStatus[key] = (failedByStatus[key] ?? 0) + 1;
    } else {
      answered++;
      const now = performance.now();
      // Closed loop: only what completed inside the window counts (the rate is per window).
      if (intended >= recordFrom && (spec.rate !== undefined || now <= windowEnd)) {
        hist.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
        service.recordValue(Math.max(1, Math.round((now - sentAt) * 1000)));
      }
    }
  };
  await new Promise<void>((resolve) => {
    if (spec.rate !== undefined) {
      const total = Math.min(spec.maxRequests, Math.round((spec.rate * (spec.durationMs + spec.warmupMs)) / 1000));
      const schedule = new OpenLoopSchedule(spec.rate, total, start);
      const hardDeadline = schedule.end() + DRAIN_MS;
      const tick = (): void => {
        const now = performance.now();
        const due = schedule.dueBy(now);
        while (sent + skipped < due) {
          const intended = schedule.intended(sent + skipped);
          if (sent - answered - failed - errors >= MAX_IN_FLIGHT) {
            skipped++;
            continue;
          }
          sent++;
          client.send(onDone(intended));
        }
        const settled = answered + failed + errors;
        if ((sent + skipped === total && settled >= sent) || now > hardDeadline || errors > MAX_ERRORS) return resolve();
        setTimeout(tick, sent + skipped === total ? 5 : 1);
      };
      tick();
      return;
    }
    // Closed loop: each of `connections` lanes sends its next request when its last one is done.
    let lanes = spec.connections;
    const laneDone = (): void => {
      if (--lanes === 0) resolve();
    };
    const hardDeadline = windowEnd + DRAIN_MS;
    const lane = (): void => {
      const now = performance.now();
      if (now >= windowEnd || sent >= spec.maxRequests || errors > MAX_ERRORS) return laneDone();
      sent++;
      const record = onDone(now);
      client.send((ok, sentAt, err, status) => {
        record(ok, sentAt, err, status);
        // Errors come back at once: do not spin on a broken path.
        if (err !== undefined) setTimeout(lane, 10);
        else lane();
      });
    };
    const deadline = setTimeout(resolve, hardDeadline - performance.now());
    deadline.unref();
    setTimeout(() => {
      for (let i = 0; i < spec.connections; i++) lane();
    }, Math.max(0, start - performance.now()));
  });
  client.close();
  return {
    mode: 'http',
    protocol: spec.protocol,
    rate: spec.rate,
    sent,
    skipped,
    answered,
    unanswered: sent - answered - failed - errors,
    failed,
    failedByStatus,
    errors,
    errorsByCode,
    latency: summarize(hist),
    serviceLatency: summarize(service),
    achievedRps: Math.round(hist.totalCount / (spec.durationMs / 1000)),
  };
}
