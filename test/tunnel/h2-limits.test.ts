/**
 * The lean framer's answers to abuse and protocol errors, frame by frame: each is the GOAWAY or
 * RST_STREAM with the error code RFC 9113 (and nghttp2's limits) call for. The attack suite
 * (test/attack/) checks that the agent recovers from the same floods; this checks the codes.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, PROTOCOL_ERROR, REFUSED_STREAM } from '../../agent/tunnel/h2/constants.js';
import { CANCEL, FLAG, FRAME, PREFACE, connectHead, frame, literal, rstStream, settings } from '../attack/h2-frames.js';
import { id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');

interface Seen {
  goaway: number | undefined;
  /** RST_STREAM codes by stream. */
  resets: Map<number, number>;
  headers: Set<number>;
  closed: boolean;
}

/** A mutual-TLS connection speaking raw frames, recording GOAWAY and RST_STREAM codes. */
async function raw(port: number, creds: WorkloadCertificate): Promise<{ socket: TLSSocket; seen: Seen; send(b: Buffer): Promise<void> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, key: creds.keyPem, cert: creds.certPem + creds.chainPem.join(''), ca: creds.trustBundle, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  const seen: Seen = { goaway: undefined, resets: new Map(), headers: new Set(), closed: false };
  let buf = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      const sid = buf.readUInt32BE(5) & 0x7fffffff;
      if (type === FRAME.GOAWAY) seen.goaway = buf.readUInt32BE(13);
      if (type === FRAME.RST_STREAM) seen.resets.set(sid, buf.readUInt32BE(9));
      if (type === FRAME.HEADERS) seen.headers.add(sid);
      buf = buf.subarray(9 + len);
    }
  });
  socket.once('close', () => {
    seen.closed = true;
  });
  const send = (b: Buffer): Promise<void> => new Promise((resolve) => (socket.destroyed || socket.write(b) ? resolve() : socket.once('drain', () => resolve())));
  await send(Buffer.concat([PREFACE, settings()]));
  return { socket, seen, send };
}

describe('lean framer limits: the GOAWAY or RST_STREAM code for each abuse', () => {
  let server: HboneServer;
  let port: number;
  let creds: WorkloadCertificate;

  before(async () => {
    const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
    const serverCreds = await issue(ca, SERVER_ID);
    creds = await issue(ca, id('web', 'frontend'));
    // Streams are answered and never read: their windows stay where the client left them.
    server = createHboneServer({ impl: 'lean', credentials: () => serverCreds, onStream: (s) => s.respond({ ':status': 200 }) });
    port = (await server.listen(0, '127.0.0.1')).port;
  });
  after(() => server?.close({ timeoutMs: 100 }));

  const head = connectHead('127.0.0.1:9');

  /** Expects a GOAWAY with `code` and the connection closed. */
  async function expectGoaway(c: Awaited<ReturnType<typeof raw>>, code: number, what: string): Promise<void> {
    await waitFor(() => c.seen.closed, `${what}: connection closed`);
    assert.equal(c.seen.goaway, code, `${what}: GOAWAY code`);
  }

  it('rapid reset: 1,100 HEADERS+RST_STREAM at once is GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await raw(port, creds);
    const burst: Buffer[] = [];
    for (let i = 0; i < 1100; i++) burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, head), rstStream(1 + 2 * i, CANCEL));
    await c.send(Buffer.concat(burst));
    await expectGoaway(c, ENHANCE_YOUR_CALM, 'rapid reset');
  });

  it('CONTINUATION flood: HEADERS without END_HEADERS and 9 CONTINUATION frames is GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await raw(port, creds);
    const parts = [frame(FRAME.HEADERS, 0, 1, head)];
    for (let i = 0; i < 9; i++) parts.push(frame(FRAME.CONTINUATION, 0, 1, literal(`x-${i}`, 'v')));
    await c.send(Buffer.concat(parts));
    await expectGoaway(c, ENHANCE_YOUR_CALM, 'CONTINUATION flood');
  });

  it('a SETTINGS frame of 33 entries is GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await raw(port, creds);
    await c.send(settings(Array.from({ length: 33 }, () => [0x3, 100] as [number, number])));
    await expectGoaway(c, ENHANCE_YOUR_CALM, 'SETTINGS entries');
  });

  it('a header list above 16 KiB is RST_STREAM ENHANCE_YOUR_CALM; the connection serves on', async () => {
    const c = await raw(port, creds);
    const big = Buffer.concat([head, literal('x-big', 'v'.repeat(17 * 1024))]);
    await c.send(Buffer.concat([frame(FRAME.HEADERS, 0, 1, big.subarray(0, 16_000)), frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, big.subarray(16_000))]));
    await c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 3, head));
    await waitFor(() => c.seen.resets.has(1) && c.seen.headers.has(3), 'stream 1 reset, stream 3 answered');
    assert.equal(c.seen.resets.get(1), ENHANCE_YOUR_CALM);
    c.socket.destroy();
  });

  it('stream 101 while 100 are open is RST_STREAM REFUSED_STREAM', async () => {
    const c = await raw(port, creds);
    const burst: Buffer[] = [];
    for (let i = 0; i < 101; i++) burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, head));
    await c.send(Buffer.concat(burst));
    await waitFor(() => c.seen.resets.size + c.seen.headers.size >= 101, 'every stream answered or refused');
    assert.equal(c.seen.headers.size, 100);
    assert.deepEqual([...c.seen.resets], [[201, REFUSED_STREAM]]);
    c.socket.destroy();
  });

  it('window abuse: DATA past the stream window is RST_STREAM FLOW_CONTROL_ERROR; a stream window pushed past 2^31-1 too', async () => {
    const c = await raw(port, creds);
    await c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, head));
    // 4 MiB window + one more frame; the server's handler never reads, so nothing is credited back.
    const piece = frame(FRAME.DATA, 0, 1, Buffer.alloc(16 * 1024));
    for (let i = 0; i < 257; i++) await c.send(piece);
    await c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 3, head));
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(0x7fffffff);
    await c.send(frame(FRAME.WINDOW_UPDATE, 0, 3, inc));
    await waitFor(() => c.seen.resets.has(1) && c.seen.resets.has(3), 'both streams reset');
    assert.equal(c.seen.resets.get(1), FLOW_CONTROL_ERROR);
    assert.equal(c.seen.resets.get(3), FLOW_CONTROL_ERROR);
    c.socket.destroy();
  });

  it('the connection window pushed past 2^31-1 is GOAWAY FLOW_CONTROL_ERROR', async () => {
    const c = await raw(port, creds);
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(0x7fffffff);
    await c.send(frame(FRAME.WINDOW_UPDATE, 0, 0, inc));
    await expectGoaway(c, FLOW_CONTROL_ERROR, 'connection window overflow');
  });

  it('protocol errors: WINDOW_UPDATE of 0, PUSH_PROMISE, a frame above SETTINGS_MAX_FRAME_SIZE', async () => {
    const zero = await raw(port, creds);
    await zero.send(frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)));
    await expectGoaway(zero, PROTOCOL_ERROR, 'WINDOW_UPDATE 0');
    const push = await raw(port, creds);
    await push.send(frame(0x5, FLAG.END_HEADERS, 1, Buffer.alloc(4)));
    await expectGoaway(push, PROTOCOL_ERROR, 'PUSH_PROMISE');
    const big = await raw(port, creds);
    await big.send(frame(0x20, 0, 0, Buffer.alloc(1024 * 1024 + 1)));
    await expectGoaway(big, FRAME_SIZE_ERROR, 'frame above 1 MiB');
  });

  it('a malformed CONNECT (with :path) is RST_STREAM PROTOCOL_ERROR', async () => {
    const c = await raw(port, creds);
    await c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.concat([head, literal(':path', '/')])));
    await waitFor(() => c.seen.resets.has(1), 'stream 1 reset');
    assert.equal(c.seen.resets.get(1), PROTOCOL_ERROR);
    c.socket.destroy();
  });
});
