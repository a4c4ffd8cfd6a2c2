/**
 * The server pod's application: a request/response server (protocol.ts), a sink that reads and
 * discards everything, an HTTP/1.1 server (every request answered with 1 KiB once its body is
 * read) and an h2c server answering gRPC-like calls (one length-prefixed 1 KiB message, then
 * the trailers `grpc-status: 0`). Small on purpose: the benchmark measures the path, not the app.
 * Run: `node dist/bench/server.js [--rr-port 7000] [--sink-port 7001] [--http-port 7080] [--h2-port 7090]`.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { grpcFrame, H2_PORT, HTTP_MESSAGE_BYTES, HTTP_PORT, RequestParser, RR_PORT, SINK_PORT } from './protocol.js';

/** Responses by size: built once, written many times (Node copies nothing for a Buffer write). */
const responses = new Map<number, Buffer>();

function responseOf(size: number): Buffer {
  let buf = responses.get(size);
  if (buf === undefined) {
    buf = Buffer.alloc(size, 0x62);
    // Bounded: a client asking for many different sizes must not grow the cache forever.
    if (responses.size < 64) responses.set(size, buf);
  }
  return buf;
}

function onRrConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  const parser = new RequestParser((size) => {
    socket.write(responseOf(size));
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk);
    } catch {
      socket.destroy();
    }
  });
  socket.on('end', () => socket.end());
  socket.on('error', ignore);
}

function onSinkConnection(socket: net.Socket): void {
  socket.on('data', ignore);
  socket.on('end', () => socket.end());
  socket.on('error', ignore);
}

const HTTP_BODY = Buffer.alloc(HTTP_MESSAGE_BYTES, 0x62);
const GRPC_MESSAGE = grpcFrame(HTTP_MESSAGE_BYTES);

function onHttpRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.on('data', ignore);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': HTTP_BODY.length });
    res.end(HTTP_BODY);
  });
  req.on('error', ignore);
}

function onH2Stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on('error', ignore);
  stream.on('data', ignore);
  stream.on('end', () => {
    // A stream the client cancelled (its time-out under overload) may close at any point: the
    // calls on it then throw, and an overloaded run must not kill the server pod.
    try {
      if (stream.destroyed || stream.closed) return;
      const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
      stream.respond({ ':status': 200, 'content-type': grpc ? 'application/grpc' : 'application/octet-stream' }, { waitForTrailers: grpc });
      if (grpc) {
        stream.once('wantTrailers', () => {
          try {
            stream.sendTrailers({ 'grpc-status': '0' });
          } catch {
            stream.destroy();
          }
        });
      }
      stream.end(grpc ? GRPC_MESSAGE : HTTP_BODY);
    } catch {
      stream.destroy();
    }
  });
}

function ignore(): void {
  // A client reset is the end of its connection, nothing more.
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'rr-port': { type: 'string', default: String(RR_PORT) },
      'sink-port': { type: 'string', default: String(SINK_PORT) },
      'http-port': { type: 'string', default: String(HTTP_PORT) },
      'h2-port': { type: 'string', default: String(H2_PORT) },
    },
  });
  const httpServer = http.createServer({ keepAliveTimeout: 600_000, noDelay: true }, onHttpRequest);
  // No request timeout: the l7 scenario holds its keep-alive connections for the whole run.
  httpServer.requestTimeout = 0;
  httpServer.headersTimeout = 0;
  const h2Server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  // A request the parser refuses is answered 400 by Node: say why in the pod's log (a proxy on
  // the path that sent something malformed).
  httpServer.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: net.Socket) => {
    // A client gone at the end of a run is not news.
    if (err.code !== 'ECONNRESET') process.stderr.write(`bench server: refused HTTP/1.1 input (${err.code ?? err.message}): ${JSON.stringify(err.rawPacket?.subarray(0, 300).toString('latin1') ?? '')}\n`);
    socket.destroy();
  });
  h2Server.on('stream', onH2Stream);
  h2Server.on('sessionError', ignore);
  h2Server.on('session', (session) => session.on('error', ignore));
  const servers = [
    net.createServer(onRrConnection).listen({ port: Number(values['rr-port']), backlog: 4096 }),
    net.createServer(onSinkConnection).listen({ port: Number(values['sink-port']), backlog: 4096 }),
    httpServer.listen({ port: Number(values['http-port']), backlog: 4096 }),
    h2Server.listen({ port: Number(values['h2-port']), backlog: 4096 }),
  ];
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
