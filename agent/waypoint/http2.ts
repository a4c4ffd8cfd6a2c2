/**
 * HTTP/2 with prior knowledge (h2c, gRPC) on a tunnelled stream: node:http2's server takes the
 * stream as its connection; each request stream is decided (decide.ts) and forwarded as a
 * stream of one multiplexed HTTP/2 session to the chosen pod. Bodies stream both ways
 * (streaming gRPC in both directions), response trailers (grpc-status) are passed on, a
 * trailers-only answer stays one HEADERS frame, and a reset on one side resets the other.
 */
import { constants as h2, createServer as createH2Server, type ClientHttp2Session, type ClientHttp2Stream, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../discovery/types.js';
import { WAYPOINT_MIRROR_MAX_BUFFER_BYTES, WAYPOINT_RETRY_BUFFER_BYTES } from '../config.js';
import { isWeftError } from '../errors.js';
import { RequestRecord, type TunnelContext, type WaypointInputs } from './context.js';
import { decide, mirrorEndpoint, requestView, type Decision, type ForwardPlan } from './decide.js';
import { Exchange } from './resilience/exchange.js';
import { grpcStatusOfHttp } from './resilience/fault.js';
import { ReplayBody } from './resilience/replay-body.js';
import { applyHeaderModifier } from '../l7/paths.js';
import { endToEnd, isGrpc, shadowAuthority } from './headers.js';

const kTunnel = Symbol('weft.tunnel');
type TunnelSession = ServerHttp2Session & { [kTunnel]?: TunnelContext };

/** One h2c server for every HTTP/2 tunnel of the waypoint; a tunnel's context rides on its session. */
export class Http2Front {
  readonly #server: Http2Server;
  readonly #inputs: WaypointInputs;
  #next: TunnelContext | undefined;

  constructor(inputs: WaypointInputs) {
    this.#inputs = inputs;
    this.#server = createH2Server({ maxSessionMemory: 64 });
    // node:http2 makes the session and emits 'session' synchronously inside emit('connection').
    this.#server.on('session', (s: TunnelSession) => {
      s[kTunnel] = this.#next;
      s.on('error', (err) => inputs.logger.debug({ err: err.message }, 'downstream HTTP/2 session error'));
    });
    this.#server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => onStream(this.#inputs, stream, headers));
  }

  serve(socket: Duplex, tunnel: TunnelContext): void {
    this.#next = tunnel;
    try {
      this.#server.emit('connection', socket);
    } finally {
      this.#next = undefined;
    }
  }
}

function onStream(inputs: WaypointInputs, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const tunnel = (stream.session as TunnelSession | undefined)?.[kTunnel];
  if (tunnel === undefined) {
    stream.close(h2.NGHTTP2_REFUSED_STREAM);
    return;
  }
  const method = String(headers[':method'] ?? 'GET');
  const path = String(headers[':path'] ?? '/');
  const authority = String(headers[':authority'] ?? headers.host ?? tunnel.authority);
  const record = new RequestRecord(inputs, tunnel, { method, authority, path, protocol: 'HTTP/2', grpc: isGrpc(headers['content-type']) });
  stream.on('error', () => undefined);
  stream.on('close', () => {
    // Reset, and not by the waypoint itself (timeout, upstream reset): the client went away.
    if (stream.rstCode !== h2.NGHTTP2_NO_ERROR && !/UT|UC|UF/.test(record.flags)) record.flag('DC');
    record.finish();
  });
  const decision = decide(inputs, tunnel, requestView(method, path, authority, headers), record);
  if (decision.delayMs === undefined || decision.delayMs === 0) act(inputs, tunnel, stream, headers, record, decision);
  else {
    // An injected delay: nothing is read or sent meanwhile; a client gone by then ends it.
    const timer = setTimeout(() => {
      if (!stream.destroyed) act(inputs, tunnel, stream, headers, record, decision);
    }, decision.delayMs);
    stream.once('close', () => clearTimeout(timer));
  }
}

function act(inputs: WaypointInputs, tunnel: TunnelContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, record: RequestRecord, decision: Decision): void {
  if (decision.kind === 'local') {
    stream.resume();
    if (record.grpc && decision.grpcStatus !== undefined) respondGrpc(stream, record, decision.grpcStatus, decision.body);
    else {
      record.status = decision.status;
      record.responseBytes = Buffer.byteLength(decision.body);
      respondLocal(stream, decision.status, decision.headers, decision.body);
    }
    return;
  }
  const exchange = new Http2Exchange(inputs, tunnel, stream, headers, record, decision);
  stream.on('close', () => exchange.abandon());
  exchange.start();
}

/** A local answer to a gRPC request as Envoy gives it: HTTP 200, trailers-only, grpc-status and grpc-message. */
function respondGrpc(stream: ServerHttp2Stream, record: RequestRecord, grpcStatus: number, message: string): void {
  record.status = 200;
  record.grpcStatus = String(grpcStatus);
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

/** One HTTP/2 request forwarded as attempts (resilience/exchange.ts decides; this sends and answers). */
class Http2Exchange extends Exchange {
  readonly #stream: ServerHttp2Stream;
  readonly #headers: IncomingHttpHeaders;
  readonly #rateHeaders: Readonly<Record<string, string>> | undefined;
  /** Only for a request that may be retried. */
  readonly #body: ReplayBody | undefined;
  #up: ClientHttp2Stream | undefined;
  #mirrored = false;
  #counting = false;
  /** The upstream's reset code, passed on to the client when the answer had begun. */
  #rstCode: number | undefined;

  constructor(inputs: WaypointInputs, tunnel: TunnelContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, record: RequestRecord, decision: Extract<Decision, { kind: 'forward' }>) {
    super(inputs, tunnel, record, decision.plan, decision.service, decision.endpoint, false);
    this.#stream = stream;
    this.#headers = headers;
    this.#rateHeaders = decision.rateHeaders;
    if (this.retriable) {
      this.#body = new ReplayBody(stream, WAYPOINT_RETRY_BUFFER_BYTES);
      this.#countBody();
    }
  }

  /** Counted from the first attempt on: a 'data' listener makes the stream flow, and the body is the upstream's. */
  #countBody(): void {
    if (this.#counting) return;
    this.#counting = true;
    const record = this.record;
    this.#stream.on('data', (c: Buffer) => {
      record.requestBytes += c.length;
    });
  }

  protected send(endpoint: Endpoint, attempt: number): void {
    this.inputs.upstreams.http2(endpoint, this.tunnel.clientIp, this.plan.backend.policy?.connectionPool?.maxRequestsPerConnection).then(
      (session) => this.#request(session, attempt),
      (err: Error) => this.failed(attempt, 'connect-failure', err.message),
    );
  }

  #request(session: ClientHttp2Session, attempt: number): void {
    const stream = this.#stream;
    if (attempt !== this.attempt || this.ended || stream.destroyed) return;
    const plan = this.plan;
    let u: ClientHttp2Stream;
    try {
      u = session.request(upstreamHeaders(this.#headers, plan, plan.authority), { endStream: false });
    } catch (err) {
      this.failed(attempt, 'connect-failure', (err as Error).message);
      return;
    }
    this.#up = u;
    let trailers: IncomingHttpHeaders | undefined;
    const record = this.record;
    u.on('response', (resHeaders: IncomingHttpHeaders, flags: number) => {
      const status = Number(resHeaders[':status'] ?? 502);
      const g = resHeaders['grpc-status'];
      if (!this.responseHead(attempt, status, g === undefined ? undefined : Number(g))) {
        u.close(h2.NGHTTP2_CANCEL);
        return;
      }
      record.status = status;
      const out: OutgoingHttpHeaders = applyHeaderModifier(endToEnd(resHeaders, false), plan.responseHeaders);
      if (this.#rateHeaders !== undefined) Object.assign(out, this.#rateHeaders);
      out[':status'] = status;
      if (g !== undefined) record.grpcStatus = String(g);
      if (stream.destroyed) return;
      // END_STREAM on the response HEADERS: a trailers-only answer (gRPC errors) stays one frame.
      if ((flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0) {
        stream.respond(out, { endStream: true });
        this.completed(attempt);
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      stream.once('wantTrailers', () => {
        stream.sendTrailers(trailers === undefined ? {} : endToEnd(trailers, false));
        this.completed(attempt);
      });
      u.on('data', (c: Buffer) => {
        record.responseBytes += c.length;
      });
      u.pipe(stream);
    });
    u.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
      if (t['grpc-status'] !== undefined) record.grpcStatus = String(t['grpc-status']);
    });
    u.on('error', (err: Error) => {
      if (this.#up !== u) return;
      const refused = u.rstCode === h2.NGHTTP2_REFUSED_STREAM || /REFUSED_STREAM/.test(err.message);
      this.failed(attempt, isWeftError(err, 'WEFT_ERR_WAYPOINT_UPSTREAM') ? 'connect-failure' : refused ? 'refused-stream' : 'reset', err.message);
    });
    u.on('close', () => {
      // A reset by the upstream (before the answer: maybe retried; after it began: the client's stream is reset too).
      if (this.#up !== u || u.rstCode === h2.NGHTTP2_NO_ERROR || stream.destroyed || this.ended) return;
      this.#rstCode = u.rstCode;
      this.failed(attempt, u.rstCode === h2.NGHTTP2_REFUSED_STREAM ? 'refused-stream' : 'reset', `upstream reset the stream (code ${u.rstCode})`);
    });
    if (!this.#mirrored) {
      this.#mirrored = true;
      for (const m of plan.mirrors) mirror(this.inputs, this.tunnel, stream, this.#headers, plan, m);
    }
    if (this.#body !== undefined) this.#body.attach(u);
    else {
      this.#countBody();
      stream.pipe(u);
    }
  }

  protected cancel(): void {
    const u = this.#up;
    if (u === undefined) return;
    this.#up = undefined;
    if (this.#body !== undefined) this.#body.detach();
    else this.#stream.unpipe(u);
    if (!u.destroyed) u.close(h2.NGHTTP2_CANCEL);
  }

  protected headersSent(): boolean {
    return this.#stream.headersSent;
  }

  protected answer(status: number, body: string): void {
    const record = this.record;
    if (record.grpc) {
      respondGrpc(this.#stream, record, grpcStatusOfHttp(status), body);
      return;
    }
    record.responseBytes = Buffer.byteLength(body);
    respondLocal(this.#stream, status, { 'content-type': 'text/plain' }, body);
  }

  protected reset(): void {
    const stream = this.#stream;
    if (!stream.destroyed) stream.close(this.#rstCode ?? (this.record.flags.includes('UT') ? h2.NGHTTP2_CANCEL : h2.NGHTTP2_INTERNAL_ERROR));
  }

  protected replayable(): boolean {
    return this.#body !== undefined && this.#body.replayable;
  }
}

function upstreamHeaders(headers: IncomingHttpHeaders, plan: ForwardPlan, authority: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = applyHeaderModifier(endToEnd(headers, true), plan.requestHeaders);
  out[':method'] = plan.method;
  out[':path'] = plan.pathAndQuery;
  out[':authority'] = authority;
  out[':scheme'] = String(headers[':scheme'] ?? 'http');
  return out;
}

function respondLocal(stream: ServerHttp2Stream, status: number, headers: OutgoingHttpHeaders, body: string): void {
  if (stream.destroyed) return;
  stream.respond({ ...headers, ':status': status }, { endStream: body === '' });
  if (body !== '') stream.end(body);
}

/** A copy to a mirror backend: the body teed as it streams, the answer discarded, never waited for. */
function mirror(inputs: WaypointInputs, tunnel: TunnelContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, plan: ForwardPlan, m: ForwardPlan['mirrors'][number]): void {
  const endpoint = mirrorEndpoint(inputs, m);
  if (endpoint === undefined) return;
  const chunks: Buffer[] = [];
  let ended = false;
  let copy: ClientHttp2Stream | undefined;
  let held = 0;
  const onData = (c: Buffer): void => {
    if (copy === undefined) {
      // Held only while the mirror's session comes up, and only up to the bound.
      held += c.length;
      if (held <= WAYPOINT_MIRROR_MAX_BUFFER_BYTES) chunks.push(c);
      return;
    }
    if (copy.writableLength > WAYPOINT_MIRROR_MAX_BUFFER_BYTES) copy.close(h2.NGHTTP2_CANCEL);
    else if (!copy.destroyed) copy.write(c);
  };
  stream.on('data', onData);
  stream.on('end', () => {
    ended = true;
    if (copy !== undefined && !copy.destroyed) copy.end();
  });
  inputs.upstreams.http2(endpoint, tunnel.clientIp).then((session) => {
    const c = session.request(upstreamHeaders(headers, plan, shadowAuthority(plan.authority)), { endStream: false });
    c.on('error', () => undefined);
    c.on('response', () => c.resume());
    copy = c;
    if (held > WAYPOINT_MIRROR_MAX_BUFFER_BYTES) {
      c.close(h2.NGHTTP2_CANCEL);
      return;
    }
    for (const b of chunks.splice(0)) c.write(b);
    if (ended) c.end();
  }, (err: Error) => {
    stream.off('data', onData);
    inputs.logger.debug({ mirror: m.backend.service, err: err.message }, 'mirror request failed (ignored)');
  });
}
