/**
 * The waypoint with HTTP/2 prior knowledge (h2c) and gRPC framing over it: requests are proxied
 * per stream over one multiplexed upstream session; gRPC unary and bidirectional streaming work
 * message by message (nothing buffered), grpc-status travels in trailers, a trailers-only error
 * stays one, and curl --http2-prior-knowledge works.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startHarness, type Harness } from './harness.js';

const run = promisify(execFile);
const VIP = '198.18.121.20';

/** gRPC's length-prefixed message (uncompressed). */
function frame(payload: string): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits gRPC messages out of a stream as they complete. */
function onMessages(stream: ClientHttp2Stream | http2.ServerHttp2Stream, cb: (m: string) => void): void {
  let buf = Buffer.alloc(0);
  stream.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const n = buf.readUInt32BE(1);
      cb(buf.subarray(5, 5 + n).toString());
      buf = buf.subarray(5 + n);
    }
  });
}

function grpcCall(session: ClientHttp2Session, method: string): ClientHttp2Stream {
  return session.request({ ':method': 'POST', ':path': `/test.Echo/${method}`, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
}

describe('waypoint: HTTP/2 and gRPC', () => {
  let h: Harness;
  let port: number;
  let session: ClientHttp2Session;

  before(async () => {
    h = await startHarness({
      pods: [{ name: 'echo-1', ip: '198.18.120.21', labels: { app: 'echo' } }],
      services: [{ name: 'echo', vip: VIP, selector: { app: 'echo' } }],
      h2app: (pod, stream, headers) => {
        const path = String(headers[':path']);
        if (!path.startsWith('/test.Echo/')) return false;
        if (path === '/test.Echo/Missing') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no such thing' }, { endStream: true });
          return true;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '', 'x-pod': pod.spec.name }));
        onMessages(stream, (m) => stream.write(frame(`${pod.spec.name}:${m}`)));
        stream.on('end', () => stream.end());
        return true;
      },
    });
    port = await h.tunnelPort(VIP, 9090);
    session = http2.connect(`http://127.0.0.1:${port}`);
    // The tests see a failure through their requests; what this listener catches is the reset
    // the harness's teardown may cause after them, which would otherwise be an uncaught error.
    session.on('error', () => {});
  });
  after(async () => {
    await new Promise<void>((resolve) => session.close(() => resolve()));
    await h.close();
  });

  it('proxies h2c requests, many on one client connection', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(
        (i) =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = session.request({ ':path': `/plain/${i}`, 'x-n': String(i) });
            let status = 0;
            let body = '';
            req.on('response', (hd) => (status = Number(hd[':status'])));
            req.on('data', (c: Buffer) => (body += c));
            req.on('end', () => resolve({ status, body }));
            req.on('error', reject);
          }),
      ),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 200);
      const b = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
      assert.equal(b.url, `/plain/${i + 1}`);
      assert.equal(b.headers['x-n'], String(i + 1));
    }
    const upstream = h.connects.filter((c) => c.authority === '198.18.120.21:9090');
    assert.equal(upstream.length, 1, 'one upstream HTTP/2 session (one CONNECT) multiplexes the requests');
  });

  it('carries a unary gRPC call with its trailers', async () => {
    const call = grpcCall(session, 'Unary');
    const messages: string[] = [];
    onMessages(call, (m) => messages.push(m));
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => call.once('trailers', resolve));
    call.end(frame('hello'));
    const t = await trailers;
    await new Promise((resolve) => call.once('close', resolve));
    assert.deepEqual(messages, ['echo-1:hello']);
    assert.equal(t['grpc-status'], '0');
    assert.equal(t['x-pod'], 'echo-1');
  });

  it('streams a bidirectional gRPC call message by message', async () => {
    const call = grpcCall(session, 'Stream');
    const next: ((m: string) => void)[] = [];
    onMessages(call, (m) => next.shift()?.(m));
    const reply = (): Promise<string> => new Promise((resolve) => next.push(resolve));
    for (const m of ['one', 'two', 'three']) {
      const r = reply();
      call.write(frame(m));
      // The answer to each message comes before the request ends: nothing is buffered.
      assert.equal(await r, `echo-1:${m}`);
    }
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => call.once('trailers', resolve));
    call.end();
    assert.equal((await trailers)['grpc-status'], '0');
  });

  it('passes a trailers-only gRPC error as it came', async () => {
    const call = grpcCall(session, 'Missing');
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => call.once('response', resolve));
    call.end();
    assert.equal(headers['grpc-status'], '5');
    assert.equal(headers['grpc-message'], 'no such thing');
    await new Promise((resolve) => call.once('close', resolve));
    await waitLogged(h, '/test.Echo/Missing');
    const line = h.logs.find((l) => l.msg === 'request' && l.path === '/test.Echo/Missing')!;
    assert.equal(line.grpcStatus, '5');
    assert.equal(line.protocol, 'HTTP/2');
  });

  it('works with curl --http2-prior-knowledge', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '--http2-prior-knowledge', `http://127.0.0.1:${port}/curl-h2`]);
    assert.match(stdout, /^HTTP\/2 200/);
    assert.match(stdout, /x-pod: echo-1/);
  });
});

async function waitLogged(h: Harness, path: string): Promise<void> {
  const { waitFor } = await import('../helpers/wait.js');
  await waitFor(() => h.logs.some((l) => l.msg === 'request' && l.path === path), `access log of ${path}`, 5000);
}
