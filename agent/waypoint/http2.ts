/**
 * HTTP/2 with prior knowledge (h2c, gRPC) on a tunnelled stream: node:http2's server takes the
 * stream as its connection; each request stream is decided (decide.ts) and forwarded as a
 * stream of one multiplexed HTTP/2 session to the chosen pod. Bodies stream both ways
 * (streaming gRPC in both directions), response trailers (grpc-status) are passed on, a
 * trailers-only answer stays one HEADERS frame, and a reset on one side resets the other.
 */
import { constants as h2, createServer as createH2Server, type ClientHttp2Stream, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { WAYPOINT_MIRROR_MAX_BUFFER_BYTES } from '../config.js';
import { isWeftError } from '../errors.js';
import { RequestRecord, type TunnelContext, type WaypointInputs } from './context.js';
import { decide, mirrorEndpoint, requestView, timeoutOf, type ForwardPlan } from './decide.js';
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
  if (decision.kind === 'local') {
    record.status = decision.status;
    record.responseBytes = Buffer.byteLength(decision.body);
    stream.resume();
    respondLocal(stream, decision.status, decision.headers, decision.body);
    return;
  }
  const { plan, endpoint } = decision;
  inputs.picker.begin(endpoint);
  let up: ClientHttp2Stream | undefined;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const done = (): void => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    inputs.picker.end(endpoint);
  };
  stream.on('close', () => {
    if (up !== undefined && !up.destroyed) up.close(h2.NGHTTP2_CANCEL);
    done();
  });
  const timeoutMs = timeoutOf(plan);
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => {
      record.flag('UT');
      record.reason = `WEFT_ERR_WAYPOINT_TIMEOUT: no complete answer within ${timeoutMs} ms`;
      if (up !== undefined && !up.destroyed) up.close(h2.NGHTTP2_CANCEL);
      if (!stream.headersSent) {
        record.status = 504;
        respondLocal(stream, 504, { 'content-type': 'text/plain' }, 'upstream request timeout');
      } else stream.close(h2.NGHTTP2_CANCEL);
      done();
    }, timeoutMs);
  }
  const fail = (err: Error): void => {
    if (ended) return;
    const connect = isWeftError(err, 'WEFT_ERR_WAYPOINT_UPSTREAM');
    record.flag(connect ? 'UF' : 'UC');
    record.reason = err.message;
    if (connect) inputs.logger.warn({ upstream: record.upstream, code: 'WEFT_ERR_WAYPOINT_UPSTREAM', reason: err.message }, 'upstream connect failed');
    if (!stream.headersSent && !stream.destroyed) {
      record.status = 503;
      respondLocal(stream, 503, { 'content-type': 'text/plain' }, connect ? 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' : 'upstream connect error or disconnect/reset before headers. reset reason: connection termination');
    } else if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    done();
  };
  inputs.upstreams.http2(endpoint, tunnel.clientIp).then((session) => {
    if (ended || stream.destroyed) return;
    const reqHeaders = upstreamHeaders(headers, plan, plan.authority);
    let u: ClientHttp2Stream;
    try {
      u = session.request(reqHeaders, { endStream: false });
    } catch (err) {
      fail(err as Error);
      return;
    }
    up = u;
    let trailers: IncomingHttpHeaders | undefined;
    u.on('response', (resHeaders: IncomingHttpHeaders, flags: number) => {
      record.status = Number(resHeaders[':status'] ?? 502);
      const out: OutgoingHttpHeaders = applyHeaderModifier(endToEnd(resHeaders, false), plan.responseHeaders);
      out[':status'] = record.status;
      if (resHeaders['grpc-status'] !== undefined) record.grpcStatus = String(resHeaders['grpc-status']);
      if (stream.destroyed) return;
      // END_STREAM on the response HEADERS: a trailers-only answer (gRPC errors) stays one frame.
      if ((flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0) {
        stream.respond(out, { endStream: true });
        done();
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      u.on('data', (c: Buffer) => {
        record.responseBytes += c.length;
      });
      u.pipe(stream);
    });
    u.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
      if (t['grpc-status'] !== undefined) record.grpcStatus = String(t['grpc-status']);
    });
    stream.on('wantTrailers', () => {
      stream.sendTrailers(trailers === undefined ? {} : endToEnd(trailers, false));
      done();
    });
    u.on('error', (err: Error) => fail(err));
    u.on('close', () => {
      // A reset by the upstream after the answer began: the client's stream is reset too.
      if (u.rstCode !== h2.NGHTTP2_NO_ERROR && !stream.destroyed && !ended) {
        record.flag('UC');
        if (stream.headersSent) stream.close(u.rstCode);
        else fail(new Error(`upstream reset the stream (code ${u.rstCode})`));
      }
    });
    for (const m of plan.mirrors) mirror(inputs, tunnel, stream, headers, plan, m);
    // Counted from here on: a 'data' listener makes the stream flow, and the body is the upstream's.
    stream.on('data', (c: Buffer) => {
      record.requestBytes += c.length;
    });
    stream.pipe(u);
  }, fail);
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
