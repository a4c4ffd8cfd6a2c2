/**
 * The lean HBONE framer (agent/tunnel/h2/) against independent HTTP/2 implementations:
 * node:http2 (nghttp2) as client of the lean server and as server of the lean client, with bulk
 * data both ways (past every flow-control window) and many streams; Debian's python3-h2 as a
 * client opening CONNECT streams through the lean server; curl (nghttp2 inside) speaking HTTP/2
 * to it (curl 7.88 has no HTTP/2 to a proxy, so a GET, answered 405).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect as h2connect, type ClientHttp2Stream, type ServerHttp2Stream } from 'node:http2';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import type { HboneImpl } from '../../agent/tunnel/impl.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { createHboneServer, type HboneServer, type HboneStreamInfo } from '../../agent/tunnel/server.js';
import { id, issue, TD, testCa } from './fixtures.js';
import { pythonWith } from '../helpers/python.js';

const SERVER_ID = id('shop', 'cart');
const CLIENT_ID = id('web', 'frontend');
/** Past the stream window (4 MiB) and the connection window (16 MiB). */
const BULK_BYTES = 24 * 1024 * 1024;
const STREAMS = 300;
const PYTHON_H2 = pythonWith('h2');

async function readAll(s: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** App: `up:N` reads until the client's FIN and answers size and hash; `down:N` sends N bytes of a pattern, then FIN. */
function appServer(): Server {
  return createServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', () => sock.destroy());
    const hash = createHash('sha256');
    let n = 0;
    let mode: 'summary' | 'source' | undefined;
    sock.on('data', (c: Buffer) => {
      if (mode === undefined && c.subarray(0, 5).toString() === 'down:') {
        mode = 'source';
        const total = Number(c.subarray(5).toString());
        const block = Buffer.alloc(64 * 1024);
        for (let i = 0; i < block.length; i++) block[i] = i % 251;
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            const piece = block.subarray(0, Math.min(block.length, total - sent));
            sent += piece.length;
            if (!sock.write(piece)) {
              sock.once('drain', pump);
              return;
            }
          }
          sock.end();
        };
        pump();
        return;
      }
      mode = 'summary';
      n += c.length;
      hash.update(c);
    });
    sock.on('end', () => {
      if (mode !== 'source') sock.end(`got:${n}:${hash.digest('hex')}`);
    });
  });
}

function expectedDown(total: number): string {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  const h = createHash('sha256');
  for (let sent = 0; sent < total; sent += block.length) h.update(block.subarray(0, Math.min(block.length, total - sent)));
  return h.digest('hex');
}

/** The agent's inbound handler in small: connect to the app, 200, pipe both ways. */
function relayToApp(stream: ServerHttp2Stream, info: HboneStreamInfo): void {
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

describe('lean HBONE framer interop', () => {
  const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
  let serverCreds: WorkloadCertificate;
  let clientCreds: WorkloadCertificate;
  let app: Server;
  let appPort: number;
  const servers = new Map<HboneImpl, { server: HboneServer; port: number }>();
  const pools: HbonePool[] = [];
  let dir: string;

  before(async () => {
    serverCreds = await issue(ca, SERVER_ID);
    clientCreds = await issue(ca, CLIENT_ID);
    app = appServer();
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appPort = (app.address() as AddressInfo).port;
    for (const impl of ['node', 'lean'] as const) {
      const server = createHboneServer({ impl, credentials: () => serverCreds, onStream: relayToApp });
      servers.set(impl, { server, port: (await server.listen(0, '127.0.0.1')).port });
    }
    dir = mkdtempSync(join(tmpdir(), 'weft-h2-interop-'));
    writeFileSync(join(dir, 'cert.pem'), clientCreds.certPem + clientCreds.chainPem.join(''));
    writeFileSync(join(dir, 'key.pem'), clientCreds.keyPem);
    writeFileSync(join(dir, 'ca.pem'), clientCreds.trustBundle.join(''));
  });

  after(async () => {
    for (const p of pools) p.destroy();
    for (const { server } of servers.values()) await server.close({ timeoutMs: 100 });
    app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pool = (impl: HboneImpl): HbonePool => {
    const p = new HbonePool({ impl, credentials: async () => clientCreds });
    pools.push(p);
    return p;
  };

  /** Bulk both ways and STREAMS concurrent round trips, from a pool of `client` to a server of `server`. */
  for (const [client, server] of [
    ['lean', 'node'],
    ['node', 'lean'],
  ] as const) {
    it(`${client} client (pool) -> ${server} server: ${BULK_BYTES >> 20} MiB up, ${BULK_BYTES >> 20} MiB down, ${STREAMS} concurrent streams`, async () => {
      const p = pool(client);
      const port = servers.get(server)!.port;
      const open = (): Promise<ClientHttp2Stream> => p.connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${appPort}` });

      const up = await open();
      const payload = Buffer.alloc(BULK_BYTES);
      for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32BE(i, i);
      up.end(payload);
      assert.equal((await readAll(up)).toString(), `got:${BULK_BYTES}:${digest(payload)}`);

      const down = await open();
      down.end(`down:${BULK_BYTES}`);
      const got = await readAll(down);
      assert.equal(got.length, BULK_BYTES);
      assert.equal(digest(got), expectedDown(BULK_BYTES));

      const results = await Promise.all(
        Array.from({ length: STREAMS }, async (_, i) => {
          const s = await open();
          const msg = Buffer.from(`stream-${i}-`.repeat(50));
          s.end(msg);
          return (await readAll(s)).toString() === `got:${msg.length}:${digest(msg)}`;
        }),
      );
      assert.equal(results.filter(Boolean).length, STREAMS);
      assert.equal(p.stats().streamsFailed, 0);
    });
  }

  it('node:http2 as a plain client of the lean server: bulk both ways and 300 concurrent CONNECTs on one session (it queues past 100)', async () => {
    const session = h2connect(`https://127.0.0.1:${servers.get('lean')!.port}`, {
      key: clientCreds.keyPem,
      cert: clientCreds.certPem + clientCreds.chainPem.join(''),
      ca: clientCreds.trustBundle,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
      // node:http2 counts what it has queued to send against this (default 10 MB): the 24 MiB upload.
      maxSessionMemory: 64,
    });
    session.on('error', () => undefined);
    try {
      const connect = (): ClientHttp2Stream => session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${appPort}` }, { endStream: false });
      const payload = Buffer.alloc(BULK_BYTES, 3);
      const up = connect();
      up.end(payload);
      assert.equal((await readAll(up)).toString(), `got:${BULK_BYTES}:${digest(payload)}`);
      const down = connect();
      down.end(`down:${BULK_BYTES}`);
      assert.equal(digest(await readAll(down)), expectedDown(BULK_BYTES));
      const ok = await Promise.all(
        Array.from({ length: STREAMS }, async (_, i) => {
          const s = connect();
          s.end(`n${i}`);
          return (await readAll(s)).toString() === `got:${`n${i}`.length}:${digest(Buffer.from(`n${i}`))}`;
        }),
      );
      assert.equal(ok.filter(Boolean).length, STREAMS);
    } finally {
      session.close();
    }
  });

  it('python h2 (Debian python3-h2, or h2 from pip) opens CONNECT streams through the lean server', { skip: PYTHON_H2 !== undefined ? false : 'no python3 with h2 (scripts/setup.sh installs python3-h2, or h2 with pip)' }, async () => {
    const script = join(dir, 'client.py');
    writeFileSync(
      script,
      `
import json, socket, ssl, sys
import h2.config, h2.connection, h2.events
host, port, cert, key, ca, authority, count = sys.argv[1:8]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.check_hostname = False
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection((host, int(port))))
assert s.selected_alpn_protocol() == 'h2'
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
conn.initiate_connection()
sent, pending = {}, {}
for i in range(int(count)):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(':method', 'CONNECT'), (':authority', authority)])
    sent[sid] = pending[sid] = (b'py-%d-' % i) * 2000

def send_pending():
    # Only what the peer's windows allow: the rest waits for its WINDOW_UPDATEs (RFC 9113 6.9).
    for sid in list(pending):
        body = pending[sid]
        n = min(len(body), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if n <= 0:
            continue
        conn.send_data(sid, body[:n], end_stream=(n == len(body)))
        if n == len(body):
            del pending[sid]
        else:
            pending[sid] = body[n:]

send_pending()
s.sendall(conn.data_to_send())
status, bodies, done = {}, {sid: b'' for sid in sent}, set()
while len(done) < len(sent):
    data = s.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            status[ev.stream_id] = dict(ev.headers)[':status']
        elif isinstance(ev, h2.events.DataReceived):
            bodies[ev.stream_id] += ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
            done.add(ev.stream_id)
    send_pending()
    s.sendall(conn.data_to_send())
conn.close_connection()
s.sendall(conn.data_to_send())
import hashlib
print(json.dumps([{'status': status.get(sid), 'ok': bodies[sid].decode() == 'got:%d:%s' % (len(b), hashlib.sha256(b).hexdigest())} for sid, b in sent.items()]))
`,
    );
    const out = await new Promise<string>((resolve, reject) =>
      execFile(PYTHON_H2!, [script, '127.0.0.1', String(servers.get('lean')!.port), join(dir, 'cert.pem'), join(dir, 'key.pem'), join(dir, 'ca.pem'), `127.0.0.1:${appPort}`, '50'], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    const results = JSON.parse(out) as { status: string; ok: boolean }[];
    assert.equal(results.length, 50);
    assert.deepEqual(
      results.filter((r) => r.status !== '200' || !r.ok),
      [],
    );
  });

  it('curl (HTTP/2 with client certificate) gets 405 for a GET from the lean server', { skip: existsSync('/usr/bin/curl') ? false : 'no curl' }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'curl',
        ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--http2', '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '--cacert', join(dir, 'ca.pem'), '-k', `https://127.0.0.1:${servers.get('lean')!.port}/`],
        { timeout: 30_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    assert.equal(out, '2 405');
  });
});
