/**
 * HTTP/1.x on a tunnelled stream: node:http's server parses the requests (keep-alive, chunked,
 * pipelining in order), each request is decided (decide.ts) and forwarded on its own over an
 * HTTP/1.1 keep-alive pool to the chosen pod. Bodies stream both ways (pipe, with backpressure;
 * never buffered); trailers of a chunked response are passed on. An Upgrade (WebSocket, h2c
 * upgrade) is forwarded as a request, and after the 101 the bytes are relayed raw.
 */
import http, { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../discovery/types.js';
import { WAYPOINT_HEADERS_TIMEOUT_MS, WAYPOINT_MIRROR_MAX_BUFFER_BYTES, WAYPOINT_RETRY_BUFFER_BYTES } from '../config.js';
import { isWeftError } from '../errors.js';
import { RequestRecord, type TunnelContext, type WaypointInputs } from './context.js';
import { decide, mirrorEndpoint, requestView, type Decision, type ForwardPlan } from './decide.js';
import { Exchange } from './resilience/exchange.js';
import { ReplayBody } from './resilience/replay-body.js';
import { applyHeaderModifier } from '../l7/paths.js';
import { endToEnd, isGrpc, shadowAuthority } from './headers.js';

const kTunnel = Symbol('weft.tunnel');
type TunnelSocket = Duplex & { [kTunnel]?: TunnelContext };
/** Hook for the ingress gateway's downstream HTTP/2 (agent/gateway/h2-front.ts): the tunnel context on a socket. */ export { kTunnel as TUNNEL_CONTEXT };

/** One node:http server for every HTTP/1 tunnel of the waypoint; a tunnel's context rides on its socket. */
export function createHttp1Server(inputs: WaypointInputs): http.Server {
  const server = http.createServer({ requestTimeout: 0, headersTimeout: WAYPOINT_HEADERS_TIMEOUT_MS, keepAliveTimeout: 60_000 });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(inputs, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => onUpgrade(inputs, req, socket, head));
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    inputs.logger.debug({ err: err.message, code: err.code }, 'HTTP/1 parse error on a tunnelled stream');
    if (!socket.destroyed && socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

/** Hands a sniffed HTTP/1 stream to the server. */
export function serveHttp1(server: http.Server, socket: Duplex, tunnel: TunnelContext): void {
  (socket as TunnelSocket)[kTunnel] = tunnel;
  server.emit('connection', socket);
}

function tunnelOf(req: IncomingMessage): TunnelContext {
  return (req.socket as unknown as TunnelSocket)[kTunnel]!;
}

function newRecord(inputs: WaypointInputs, tunnel: TunnelContext, req: IncomingMessage): RequestRecord {
  return new RequestRecord(inputs, tunnel, { method: req.method ?? 'GET', authority: req.headers.host ?? tunnel.authority, path: req.url ?? '/', protocol: 'HTTP/1.1', grpc: isGrpc(req.headers['content-type']) });
}

function decideFor(inputs: WaypointInputs, tunnel: TunnelContext, req: IncomingMessage, record: RequestRecord): Decision {
  return decide(inputs, tunnel, requestView(req.method ?? 'GET', req.url ?? '/', req.headers.host ?? tunnel.authority, req.headers), record);
}

function upstreamHeaders(req: IncomingMessage, plan: ForwardPlan, authority: string): OutgoingHttpHeaders {
  const headers = applyHeaderModifier(endToEnd(req.headers, false), plan.requestHeaders);
  headers.host = authority;
  return headers;
}

function onRequest(inputs: WaypointInputs, req: IncomingMessage, res: ServerResponse): void {
  const tunnel = tunnelOf(req);
  const record = newRecord(inputs, tunnel, req);
  req.on('data', (c: Buffer) => {
    record.requestBytes += c.length;
  });
  res.on('close', () => {
    if (!res.writableFinished) record.flag('DC');
    record.finish();
  });
  const decision = decideFor(inputs, tunnel, req, record);
  if (decision.delayMs === undefined || decision.delayMs === 0) act(inputs, tunnel, req, res, record, decision);
  else {
    // An injected delay: nothing is read or sent meanwhile; a client gone by then ends it.
    const timer = setTimeout(() => {
      if (!res.destroyed) act(inputs, tunnel, req, res, record, decision);
    }, decision.delayMs);
    res.once('close', () => clearTimeout(timer));
  }
}

function act(inputs: WaypointInputs, tunnel: TunnelContext, req: IncomingMessage, res: ServerResponse, record: RequestRecord, decision: Decision): void {
  if (decision.kind === 'local') {
    record.status = decision.status;
    record.responseBytes = Buffer.byteLength(decision.body);
    req.resume();
    res.writeHead(decision.status, decision.headers).end(decision.body);
    return;
  }
  const exchange = new Http1Exchange(inputs, tunnel, req, res, record, decision);
  res.on('close', () => {
    if (!res.writableFinished) exchange.abandon();
  });
  for (const m of decision.plan.mirrors) mirror(inputs, tunnel, req, decision.plan, m);
  exchange.start();
}

/** One HTTP/1 request forwarded as attempts (resilience/exchange.ts decides; this sends and answers). */
class Http1Exchange extends Exchange {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #bodyless: boolean;
  readonly #rateHeaders: Readonly<Record<string, string>> | undefined;
  /** Only for a request that may be retried and has a body. */
  readonly #body: ReplayBody | undefined;
  #up: http.ClientRequest | undefined;

  constructor(inputs: WaypointInputs, tunnel: TunnelContext, req: IncomingMessage, res: ServerResponse, record: RequestRecord, decision: Extract<Decision, { kind: 'forward' }>) {
    super(inputs, tunnel, record, decision.plan, decision.service, decision.endpoint, true);
    this.#req = req;
    this.#res = res;
    this.#bodyless = hasNoBody(req);
    this.#rateHeaders = decision.rateHeaders;
    this.#body = this.retriable && !this.#bodyless ? new ReplayBody(req, WAYPOINT_RETRY_BUFFER_BYTES) : undefined;
    // The (empty) request body is still read, so that the next request on the connection parses.
    if (this.#bodyless) req.resume();
  }

  protected send(endpoint: Endpoint, attempt: number): void {
    this.#request(endpoint, attempt, false);
  }

  #request(endpoint: Endpoint, attempt: number, resend: boolean): void {
    const plan = this.plan;
    const u = http.request({
      agent: this.inputs.upstreams.http1(endpoint, this.tunnel.clientIp, plan.backend.policy?.connectionPool?.maxRequestsPerConnection),
      host: endpoint.ip,
      port: endpoint.port,
      method: plan.method,
      path: plan.pathAndQuery,
      headers: upstreamHeaders(this.#req, plan, plan.authority),
      setHost: false,
    });
    this.#up = u;
    u.on('response', (upRes) => this.#response(attempt, upRes));
    u.on('error', (err: Error & { code?: string }) => {
      if (this.#up !== u) return;
      // A kept-alive connection the pod closed while this request was put on it (the pod's
      // keep-alive timeout racing ours): a request without a body is sent again, once, on a
      // new connection, as node documents for `reusedSocket`. Nothing of it reached the app.
      if (!resend && u.reusedSocket && this.#bodyless && !this.#res.headersSent && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        this.#request(endpoint, attempt, true);
        return;
      }
      this.failed(attempt, isWeftError(err, 'WEFT_ERR_WAYPOINT_UPSTREAM') ? 'connect-failure' : 'reset', err.message);
    });
    if (this.#bodyless) u.end();
    else if (this.#body !== undefined) this.#body.attach(u);
    else this.#req.pipe(u);
  }

  #response(attempt: number, upRes: IncomingMessage): void {
    const status = upRes.statusCode ?? 502;
    if (!this.responseHead(attempt, status, undefined)) {
      upRes.resume();
      return;
    }
    const res = this.#res;
    const record = this.record;
    const headers = applyHeaderModifier(endToEnd(upRes.headers, false), this.plan.responseHeaders);
    if (this.#rateHeaders !== undefined) Object.assign(headers, this.#rateHeaders);
    record.status = status;
    res.writeHead(status, headers);
    upRes.on('data', (c: Buffer) => {
      record.responseBytes += c.length;
    });
    upRes.pipe(res, { end: false });
    upRes.on('end', () => {
      const trailers = upRes.trailers;
      if (Object.keys(trailers).length > 0) res.addTrailers(trailers);
      res.end();
      this.completed(attempt);
    });
    upRes.on('error', () => {
      res.destroy();
      this.completed(attempt);
    });
  }

  protected cancel(): void {
    const u = this.#up;
    if (u === undefined) return;
    this.#up = undefined;
    this.#body?.detach();
    if (this.#body === undefined && !this.#bodyless) this.#req.unpipe(u);
    u.destroy();
  }

  protected headersSent(): boolean {
    return this.#res.headersSent;
  }

  protected answer(status: number, body: string): void {
    this.record.responseBytes = Buffer.byteLength(body);
    this.#res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
  }

  protected reset(): void {
    this.#res.destroy();
  }

  protected replayable(): boolean {
    return this.#bodyless || (this.#body !== undefined && this.#body.replayable);
  }
}

/** A request without a body: no Content-Length (or 0) and no Transfer-Encoding. */
function hasNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** A copy of the request to a mirror backend: its body teed as it streams, the answer discarded, never waited for. */
function mirror(inputs: WaypointInputs, tunnel: TunnelContext, req: IncomingMessage, plan: ForwardPlan, m: ForwardPlan['mirrors'][number]): void {
  const endpoint = mirrorEndpoint(inputs, m);
  if (endpoint === undefined) return;
  const copy = http.request({
    agent: inputs.upstreams.http1(endpoint, tunnel.clientIp),
    host: endpoint.ip,
    port: endpoint.port,
    method: plan.method,
    path: plan.pathAndQuery,
    headers: upstreamHeaders(req, plan, shadowAuthority(plan.authority)),
    setHost: false,
  });
  copy.on('response', (r) => r.resume());
  copy.on('error', (err) => inputs.logger.debug({ mirror: m.backend.service, err: err.message }, 'mirror request failed (ignored)'));
  req.on('data', (c: Buffer) => {
    // A mirror never slows the real request: one that falls behind is given up.
    if (copy.writableLength > WAYPOINT_MIRROR_MAX_BUFFER_BYTES) copy.destroy();
    else if (!copy.destroyed) copy.write(c);
  });
  req.on('end', () => {
    if (!copy.destroyed) copy.end();
  });
  req.on('close', () => {
    if (!req.complete) copy.destroy();
  });
}

function rawHead(status: number, headers: OutgoingHttpHeaders | http.IncomingHttpHeaders): string {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) s += `${name}: ${String(one)}\r\n`;
  }
  return s + '\r\n';
}

/** An Upgrade request: forwarded with its Upgrade/Connection headers; after the 101 both ways raw. */
function onUpgrade(inputs: WaypointInputs, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const tunnel = tunnelOf(req);
  const record = newRecord(inputs, tunnel, req);
  socket.on('error', () => socket.destroy());
  const decision = decideFor(inputs, tunnel, req, record);
  if (decision.kind === 'local') {
    record.status = decision.status;
    socket.end(rawHead(decision.status, { ...decision.headers, 'content-length': String(Buffer.byteLength(decision.body)), connection: 'close' }) + decision.body);
    record.finish();
    return;
  }
  const { plan, endpoint } = decision;
  inputs.picker.begin(endpoint);
  const headers = upstreamHeaders(req, plan, plan.authority);
  headers.connection = 'upgrade';
  headers.upgrade = req.headers.upgrade;
  // Not from the keep-alive pool: the connection becomes the upgraded protocol's.
  const up = http.request({
    createConnection: (_opts, cb) => {
      inputs.upstreams.open(endpoint, tunnel.clientIp).then((s) => cb(null, s), (err: Error) => cb(err, undefined as unknown as Duplex));
      return undefined;
    },
    host: endpoint.ip,
    port: endpoint.port,
    method: plan.method,
    path: plan.pathAndQuery,
    headers,
    setHost: false,
  } as http.RequestOptions);
  let released = false;
  const finish = (): void => {
    if (released) return;
    released = true;
    inputs.picker.end(endpoint);
    record.finish();
  };
  up.on('upgrade', (upRes, upSocket, upHead) => {
    record.status = upRes.statusCode ?? 101;
    const resHeaders = applyHeaderModifier(endToEnd(upRes.headers, false), plan.responseHeaders);
    resHeaders.connection = 'upgrade';
    resHeaders.upgrade = upRes.headers.upgrade;
    socket.write(rawHead(record.status, resHeaders));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.on('data', (c: Buffer) => {
      record.responseBytes += c.length;
    });
    socket.on('data', (c: Buffer) => {
      record.requestBytes += c.length;
    });
    upSocket.pipe(socket);
    socket.pipe(upSocket);
    upSocket.on('error', () => socket.destroy());
    socket.on('close', () => {
      upSocket.destroy();
      finish();
    });
    upSocket.on('close', () => {
      socket.end();
      finish();
    });
  });
  up.on('response', (upRes) => {
    // The upstream declined the upgrade: its answer goes back as an ordinary response.
    record.status = upRes.statusCode ?? 502;
    const resHeaders = applyHeaderModifier(endToEnd(upRes.headers, false), plan.responseHeaders);
    resHeaders.connection = 'close';
    socket.write(rawHead(record.status, resHeaders));
    upRes.pipe(socket);
    upRes.on('end', finish);
  });
  up.on('error', (err) => {
    const connect = isWeftError(err, 'WEFT_ERR_WAYPOINT_UPSTREAM');
    record.flag(connect ? 'UF' : 'UC');
    record.reason = err.message;
    if (record.status === 0) {
      record.status = 503;
      socket.end(rawHead(503, { 'content-type': 'text/plain', 'content-length': '0', connection: 'close' }));
    } else socket.destroy();
    finish();
  });
  up.end();
}
