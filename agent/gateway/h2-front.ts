/**
 * Downstream HTTP/2 for the ingress gateway: a TLS connection that chose `h2` by ALPN, and on a
 * plain HTTP port a client speaking HTTP/2 with prior knowledge (h2c), is served by node:http2, and
 * each request goes through the waypoint's HTTP/1 request path (agent/waypoint/http1.ts:
 * decide, route, L7 authorization, metrics, forward over the keep-alive pool), by node:http2's
 * compatibility objects, which are the IncomingMessage/ServerResponse that path takes.
 *
 * Why HTTP/1.1 upstream and not agent/waypoint/http2.ts (which forwards HTTP/2 as HTTP/2): a
 * browser's ALPN h2 says nothing of what the backend speaks (bookinfo's pods speak HTTP/1.1);
 * the waypoint's clients speak the app's own protocol, the gateway's clients do not.
 * gRPC (which needs HTTP/2 upstream and trailers) through the gateway is not served this way.
 * The h2c check costs a plain connection one 'readable' and an unshift of its first bytes.
 */
import http from 'node:http';
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { TunnelContext } from '../waypoint/context.js';
import { serveHttp1, TUNNEL_CONTEXT } from '../waypoint/http1.js';
import { H2_PREFACE } from '../waypoint/sniff.js';

type Tunnelled = Duplex & { [TUNNEL_CONTEXT]?: TunnelContext };


export class H2Front {
  readonly #server: Http2Server;

  constructor(http1: http.Server, logger: Logger) {
    this.#server = createH2Server({ maxSessionMemory: 64 });
    this.#server.on('session', (s) => s.on('error', (err) => logger.debug({ err: err.message }, 'downstream HTTP/2 session error')));
    this.#server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const h = req.headers;
      // The HTTP/1 path routes by Host and reads a body only when the head announces one.
      if (h.host === undefined && typeof h[':authority'] === 'string') h.host = h[':authority'];
      if (!req.stream.endAfterHeaders && h['content-length'] === undefined) h['transfer-encoding'] = 'chunked';
      http1.emit('request', req, res);
    });
  }

  /** Serves an HTTP/2 connection (TLS with ALPN h2, or plain with the preface) whose requests belong to `tunnel`. */
  serve(socket: Duplex, tunnel: TunnelContext): void {
    (socket as Tunnelled)[TUNNEL_CONTEXT] = tunnel;
    this.#server.emit('connection', socket);
  }

  /**
   * A plain HTTP connection: HTTP/2 with prior knowledge (h2c, RFC 9113 3.4) when its first bytes
   * are the connection preface, else HTTP/1. The bytes read to tell are put back. A client that
   * sends nothing within `timeoutMs` is closed (the HTTP/1 server's header timeout starts only
   * once it has the connection).
   */
  servePlain(socket: net.Socket, tunnel: TunnelContext, http1: http.Server, timeoutMs: number): void {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    const onReadable = (): void => {
      for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null) buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      if (buf.length === 0) return;
      const n = Math.min(buf.length, H2_PREFACE.length);
      const preface = buf.compare(H2_PREFACE, 0, n, 0, n) === 0;
      if (preface && buf.length < H2_PREFACE.length) return;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.unshift(buf);
      if (preface) this.serve(socket, tunnel);
      else serveHttp1(http1, socket, tunnel);
    };
    socket.on('readable', onReadable);
    socket.once('close', () => clearTimeout(timer));
  }

  /** Closes the sessions' server side (the sockets are the gateway's to destroy). */
  close(): void {
    this.#server.close();
  }
}
