// An HTTP echo backend for the waypoint example: it answers every request with who answered
// (POD_NAME, VERSION) and what arrived (protocol, method, path, authority, headers, body size),
// so a client can see which backend a route picked and what its filters changed. HTTP/1.1 and
// HTTP/2 with prior knowledge (h2c) on one port: the first bytes of a connection tell which.
// `?delay=MS` answers after MS milliseconds (at most 10 s), `?status=CODE` with that code.
// One JSON line per request on stdout (the pod's log): a mirror backend's log shows the copies.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';

const PORT = Number(process.env.PORT ?? 8080);
const POD = process.env.POD_NAME ?? 'local';
const VERSION = process.env.VERSION ?? '';
const MAX_DELAY_MS = 10_000;
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

function handle(req, res) {
  let size = 0;
  req.on('data', (c) => (size += c.length));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://echo');
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!k.startsWith(':')) headers[k] = v;
    const authority = req.headers[':authority'] ?? req.headers.host ?? '';
    const seen = { pod: POD, version: VERSION, protocol: `HTTP/${req.httpVersion}`, method: req.method, path: req.url, authority, headers, bodyBytes: size };
    process.stdout.write(JSON.stringify({ msg: 'request', pod: POD, protocol: seen.protocol, method: req.method, path: req.url, authority }) + '\n');
    const status = Number(url.searchParams.get('status') ?? 200);
    const delay = Math.min(Number(url.searchParams.get('delay') ?? 0), MAX_DELAY_MS);
    const answer = () => {
      if (res.destroyed || res.writableEnded) return;
      const body = JSON.stringify(seen) + '\n';
      res.writeHead(Number.isInteger(status) && status >= 200 && status <= 599 ? status : 400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-echo-pod': POD });
      res.end(body);
    };
    if (delay > 0) {
      const timer = setTimeout(answer, delay);
      res.on('close', () => clearTimeout(timer));
    } else answer();
  });
}

const h1 = http.createServer(handle);
h1.keepAliveTimeout = 5_000;
const h2 = http2.createServer(handle);
h2.on('sessionError', () => undefined);

/**
 * The socket as a stream that first gives `head` again: node:http2 reads a net.Socket's handle
 * directly (bytes unshifted into it would be lost), a plain Duplex through its stream interface.
 */
function replay(socket, head) {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  d.push(head);
  socket.on('data', (c) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  return d;
}

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    // Enough bytes to tell the HTTP/2 preface from an HTTP/1.1 request line.
    if (head.length < H2_PREFACE.length && H2_PREFACE.subarray(0, head.length).equals(head)) return;
    socket.off('data', onData);
    socket.pause();
    if (head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) h2.emit('connection', replay(socket, head));
    else {
      socket.unshift(head);
      h1.emit('connection', socket);
      socket.resume();
    }
  };
  socket.on('data', onData);
});
server.listen(PORT, process.env.HOST ?? '0.0.0.0', () => process.stdout.write(`echo (${POD}) listening on ${server.address().port}\n`));

const stop = () => {
  server.close();
  h1.closeAllConnections();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
