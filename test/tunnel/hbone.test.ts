import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect as h2connect, type ClientHttp2Stream, type ServerHttp2Stream } from 'node:http2';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { Duplex } from 'node:stream';
import { isWeftError } from '../../agent/errors.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { createHboneServer, type HboneServer, type HboneStreamInfo } from '../../agent/tunnel/server.js';
import type { TlsCredentials } from '../../agent/tunnel/settings.js';
import { HBONE_IMPLS } from '../../agent/tunnel/impl.js';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import { captureLogger, id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
const CLIENT_ID = id('web', 'frontend');

/** Reads everything until the peer's end. */
async function readAll(s: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Backend "app": reads until the client half-closes, then answers with size + hash and ends. */
function summaryServer(): Server {
  return createServer({ allowHalfOpen: true }, (sock) => {
    const hash = createHash('sha256');
    let n = 0;
    sock.on('data', (c: Buffer) => {
      n += c.length;
      hash.update(c);
    });
    sock.on('end', () => sock.end(`got:${n}:${hash.digest('hex')}`));
    sock.on('error', () => sock.destroy());
  });
}

/** Backend "app": echoes every chunk as it comes (for a long-lived stream). */
function echoServer(): Server {
  return createServer((sock) => {
    sock.pipe(sock);
    sock.on('error', () => sock.destroy());
  });
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The inbound handler the agent will have: connect upstream, answer 200, pipe both ways. */
function relay(stream: ServerHttp2Stream, info: HboneStreamInfo): void {
  const up: Socket = netConnect({ host: info.host, port: info.port, allowHalfOpen: true });
  up.once('connect', () => {
    stream.respond({ ':status': 200 });
    stream.pipe(up);
    up.pipe(stream);
  });
  up.on('error', () => {
    if (!stream.headersSent) stream.respond({ ':status': 503 }, { endStream: true });
    else stream.destroy();
  });
  stream.on('error', () => up.destroy());
}

async function roundTrip(s: ClientHttp2Stream, payload: Buffer): Promise<string> {
  s.end(payload);
  return (await readAll(s)).toString();
}
const expected = (payload: Buffer): string => `got:${payload.length}:${createHash('sha256').update(payload).digest('hex')}`;

// Both HTTP/2 implementations (node:http2 and the lean framer), each as client and server.
for (const impl of HBONE_IMPLS) describe(`HBONE (${impl})`, () => {
  const material = CertificateAuthority.generateRoot(TD);
  const ca = testCa({ material });
  const serverLog = captureLogger();
  const poolLog = captureLogger();
  const seen: HboneStreamInfo[] = [];
  let serverCreds: WorkloadCertificate;
  let clientCreds: WorkloadCertificate;
  let backend: Server;
  let echo: Server;
  let backendPort: number;
  let echoPort: number;
  let server: HboneServer;
  let hbonePort: number;
  const pools: HbonePool[] = [];

  function pool(credentials: (src: string) => Promise<TlsCredentials> = async () => clientCreds, opts: { idleTimeoutMs?: number } = {}): HbonePool {
    const p = new HbonePool({ credentials, logger: poolLog.logger, impl, ...opts });
    pools.push(p);
    return p;
  }
  const dest = (): { host: string; port: number } => ({ host: '127.0.0.1', port: hbonePort });

  before(async () => {
    serverCreds = await issue(ca, SERVER_ID);
    clientCreds = await issue(ca, CLIENT_ID);
    backend = summaryServer();
    echo = echoServer();
    backendPort = await listen(backend);
    echoPort = await listen(echo);
    server = createHboneServer({
      impl,
      credentials: () => serverCreds,
      logger: serverLog.logger,
      onStream(stream, info) {
        seen.push(info);
        if (info.port === 1) {
          // Test hook: answer, then GOAWAY this connection (graceful close).
          stream.respond({ ':status': 200 });
          stream.session?.close();
          stream.pipe(stream);
          return;
        }
        relay(stream, info);
      },
    });
    hbonePort = (await server.listen(0, '127.0.0.1')).port;
  });

  after(async () => {
    for (const p of pools) p.destroy();
    await server.close({ timeoutMs: 100 });
    backend.close();
    echo.close();
  });

  it('round trip with half-close; the server records the client SPIFFE ID exactly; reference settings', async () => {
    const p = pool();
    const s = await p.connect({
      sourceIdentity: CLIENT_ID,
      destination: dest(),
      expectedIdentity: SERVER_ID,
      authority: `127.0.0.1:${backendPort}`,
      headers: { baggage: 'k8s.deployment.name=frontend', forwarded: 'for=198.18.0.9' },
    });
    const payload = Buffer.alloc(300_000, 7);
    assert.equal(await roundTrip(s, payload), expected(payload));
    const info = seen.at(-1)!;
    assert.equal(info.peerIdentity, CLIENT_ID);
    assert.equal(info.authority, `127.0.0.1:${backendPort}`);
    assert.equal(info.host, '127.0.0.1');
    assert.equal(info.port, backendPort);
    assert.equal(info.baggage, 'k8s.deployment.name=frontend');
    assert.equal(info.forwarded, 'for=198.18.0.9');
    assert.equal(info.localAddress, '127.0.0.1');
    assert.equal(info.localPort, hbonePort);
    const remote = s.session!.remoteSettings;
    assert.equal(remote.maxConcurrentStreams, 100);
    assert.equal(remote.initialWindowSize, 4 * 1024 * 1024);
    assert.equal(remote.maxFrameSize, 1024 * 1024);
    assert.equal(remote.maxHeaderListSize, 16 * 1024);
    const tls = s.session!.socket as TLSSocket;
    assert.equal(tls.getProtocol(), 'TLSv1.3');
    assert.equal(tls.alpnProtocol, 'h2');
  });

  it('refuses a client certificate from another CA, with the logged reason', async () => {
    const other = testCa();
    const foreign = await issue(other, CLIENT_ID);
    // Trusts our root (so it accepts the server), but presents a certificate of the other CA.
    const creds: TlsCredentials = { ...foreign, secureContext: undefined, trustBundle: ca.trustBundle() };
    const before = seen.length;
    const refusedBefore = server.stats().sessionsRefused;
    await assert.rejects(
      pool(async () => creds).connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` }),
      (e) => isWeftError(e) && /^WEFT_ERR_(HBONE|TLS)_/.test(e.code),
    );
    assert.equal(seen.length, before, 'no stream reached the handler');
    assert.ok(server.stats().sessionsRefused > refusedBefore);
    const line = serverLog.lines.find((l) => l.msg === 'HBONE connection refused' && /ISSUER|VERIFY/.test(String(l.reason)));
    assert.ok(line, `refusal logged with an OpenSSL reason: ${JSON.stringify(serverLog.lines.filter((l) => l.msg === 'HBONE connection refused'))}`);
    assert.equal(line.code, 'WEFT_ERR_TLS_PEER_UNTRUSTED');
  });

  it('refuses an expired client certificate, with the logged reason', async () => {
    // Same root as the server trusts, but a leaf that expired a day ago.
    const expiredCa = testCa({ material, now: () => Date.now() - 48 * 3600_000, lifetimeMs: 24 * 3600_000 });
    const expired = await issue(expiredCa, CLIENT_ID);
    assert.ok(expired.notAfter.getTime() < Date.now());
    const before = seen.length;
    await assert.rejects(
      pool(async () => expired).connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` }),
      (e) => isWeftError(e) && /^WEFT_ERR_(HBONE|TLS)_/.test(e.code),
    );
    assert.equal(seen.length, before, 'no stream reached the handler');
    const line = serverLog.lines.find((l) => l.msg === 'HBONE connection refused' && l.reason === 'CERT_HAS_EXPIRED');
    assert.ok(line, 'refusal logged with reason CERT_HAS_EXPIRED');
    assert.equal(line.code, 'WEFT_ERR_TLS_PEER_UNTRUSTED');
  });

  it('refuses a server that presents a different identity than expected, with the logged reason', async () => {
    await assert.rejects(
      pool().connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: id('shop', 'payments'), authority: `127.0.0.1:${backendPort}` }),
      (e) => isWeftError(e, 'WEFT_ERR_TLS_PEER_IDENTITY'),
    );
    const line = poolLog.lines.find((l) => l.msg === 'HBONE connection refused' && l.code === 'WEFT_ERR_TLS_PEER_IDENTITY');
    assert.ok(line);
    assert.equal(line.reason, `server presented ${SERVER_ID}, expected ${id('shop', 'payments')}`);
  });

  it('200 sequential CONNECTs share one TLS connection; 200 concurrent ones all succeed', async () => {
    const p = pool();
    const handshakesBefore = server.stats().sessionsAccepted;
    for (let i = 0; i < 200; i++) {
      const s = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
      const payload = Buffer.from(`seq-${i}`);
      assert.equal(await roundTrip(s, payload), expected(payload));
    }
    assert.equal(p.stats().connectionsOpened, 1);
    assert.equal(p.stats().streamsOpened, 200);
    assert.equal(server.stats().sessionsAccepted - handshakesBefore, 1);
    await waitFor(() => p.stats().streamsActive === 0, 'streams to close');

    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const s = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
        const payload = Buffer.from(`par-${i}`);
        return (await roundTrip(s, payload)) === expected(payload);
      }),
    );
    assert.equal(results.filter(Boolean).length, 200);
    // 100 streams per connection: the pooled one plus exactly one more.
    assert.equal(p.stats().connectionsOpened, 2);
    assert.equal(p.stats().streamsFailed, 0);
  });

  it('rotating the server certificate serves new connections without disturbing an open stream', async () => {
    const p1 = pool();
    const long = await p1.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${echoPort}` });
    const echoOnce = async (msg: string): Promise<string> => {
      long.write(msg);
      const [chunk] = (await once(long, 'data')) as [Buffer];
      return chunk.toString();
    };
    assert.equal(await echoOnce('before'), 'before');
    const oldSerial = (long.session!.socket as TLSSocket).getPeerX509Certificate()!.serialNumber;
    assert.equal(oldSerial, serverCreds.serial);
    const oldSession = long.session;

    serverCreds = await issue(ca, SERVER_ID);
    assert.notEqual(serverCreds.serial, oldSerial);
    const p2 = pool();
    const fresh = await p2.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
    assert.equal((fresh.session!.socket as TLSSocket).getPeerX509Certificate()!.serialNumber, serverCreds.serial);
    assert.equal(await roundTrip(fresh, Buffer.from('x')), expected(Buffer.from('x')));

    // The long-lived stream still flows, on its original connection and certificate.
    for (let i = 0; i < 5; i++) assert.equal(await echoOnce(`after-${i}`), `after-${i}`);
    assert.equal(long.session, oldSession);
    assert.notEqual(fresh.session, oldSession);
    assert.equal(oldSession!.destroyed, false);
    long.end();
    await readAll(long);
  });

  it('after GOAWAY, open streams finish and new streams go to a new connection', async () => {
    const p = pool();
    // Port 1 makes the server answer and then GOAWAY this connection.
    const draining = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: '127.0.0.1:1' });
    await waitFor(() => p.stats().connectionsUsable === 0, 'GOAWAY to take the connection out of the pool');
    assert.equal(p.stats().connectionsOpen, 1, 'the draining connection stays open for its stream');
    const s = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
    assert.equal(await roundTrip(s, Buffer.from('new')), expected(Buffer.from('new')));
    assert.equal(p.stats().connectionsOpened, 2);
    // The old stream (echoing on the server side) still works until it is ended.
    draining.write('still here');
    const [chunk] = (await once(draining, 'data')) as [Buffer];
    assert.equal(chunk.toString(), 'still here');
    draining.end();
    await readAll(draining);
  });

  it('opens its TCP sockets through the injected factory; a refused connect is WEFT_ERR_HBONE_CONNECT', async () => {
    const calls: [string, number, string | undefined][] = [];
    const p = new HbonePool({
      impl,
      credentials: async () => clientCreds,
      createSocket: (host, port, source) => {
        calls.push([host, port, source]);
        return netConnect({ host, port });
      },
    });
    pools.push(p);
    const s = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
    assert.equal(await roundTrip(s, Buffer.from('f')), expected(Buffer.from('f')));
    assert.deepEqual(calls, [['127.0.0.1', hbonePort, CLIENT_ID]]);

    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise((r) => closed.close(r));
    await assert.rejects(
      p.connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port: closedPort }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` }),
      (e) => isWeftError(e, 'WEFT_ERR_HBONE_CONNECT'),
    );
    assert.equal(p.stats().connectionsFailed, 1);
  });

  it('closes idle connections', async () => {
    const p = pool(undefined, { idleTimeoutMs: 20 });
    const s = await p.connect({ sourceIdentity: CLIENT_ID, destination: dest(), expectedIdentity: SERVER_ID, authority: `127.0.0.1:${backendPort}` });
    await roundTrip(s, Buffer.from('x'));
    assert.equal(p.stats().connectionsOpen, 1);
    await waitFor(() => p.stats().connectionsOpen === 0, 'the idle connection to close');
  });

  it('an independent HTTP/2 client (plain node:http2) opens a CONNECT stream; other methods get 405, bad authority 400', async () => {
    const session = h2connect(`https://127.0.0.1:${hbonePort}`, {
      key: clientCreds.keyPem,
      cert: clientCreds.certPem,
      ca: clientCreds.trustBundle,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    try {
      const req = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${backendPort}` }, { endStream: false });
      const [headers] = (await once(req, 'response')) as [Record<string, unknown>];
      assert.equal(headers[':status'], 200);
      assert.equal(await roundTrip(req, Buffer.from('plain')), expected(Buffer.from('plain')));

      const get = session.request({ ':method': 'GET', ':path': '/' });
      const [getHeaders] = (await once(get, 'response')) as [Record<string, unknown>];
      assert.equal(getHeaders[':status'], 405);
      get.resume();

      const bad = session.request({ ':method': 'CONNECT', ':authority': 'example.com:80' }, { endStream: false });
      const [badHeaders] = (await once(bad, 'response')) as [Record<string, unknown>];
      assert.equal(badHeaders[':status'], 400);
      bad.resume();
    } finally {
      session.close();
    }
  });
});
