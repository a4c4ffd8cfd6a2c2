/**
 * The live-attack suite of issue 10 (point 9): an in-process two-pod topology with mutual TLS
 * (test/helpers/two-pods.ts; the agent runs in this process), attacked from pod A by an
 * authenticated mesh client (a certificate for A's own identity) speaking raw HTTP/2 frames to
 * the agent's HBONE port in pod B, or by a process inside a pod connecting to the agent's ports.
 *
 * After each attack (each bounded in frames, streams or connections, not in time):
 *   - the agent is alive and a normal request from A to the service in B still gets its answer;
 *   - this process's descriptors (/proc/self/fd) come back to at most baseline + FD_BOUND;
 *   - its heap after a full GC comes back to at most baseline + HEAP_BOUND_MB;
 *   - the agent's open connection records come back to the baseline.
 * "Come back" is polled (test/helpers/wait.ts) with a deadline; the bounds are on resources.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import net from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';
import { waitFor } from '../helpers/wait.js';
import { requestCertificate, type WorkloadCertificate } from '../../agent/identity/manager.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { ALPN_H2, TLS_VERSIONS } from '../../agent/tunnel/settings.js';
import { defaultHboneImpl, setDefaultHboneImpl, type HboneImpl } from '../../agent/tunnel/impl.js';
import { createTcpSocket } from '../../native/index.js';
import { MESH_MARK } from '../../agent/config.js';
import { CANCEL, FLAG, FRAME, connectHead, frame, literal, ping, rawH2, rstStream, settings } from './h2-frames.js';

/** Descriptors this process may hold above the baseline after an attack (pooled sessions, timers' fds). */
const FD_BOUND = 16;
/** Heap (after a full GC) above the baseline after an attack. */
const HEAP_BOUND_MB = 24;
const HBONE = 15008;
const APP_PORT = 9080;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Attacks whose trigger is a finding another branch fixes (wip/sec): skipped until that fix is
 * merged, since on the old code they take this process's descriptors to its limit. Remove the
 * entry with the merge.
 */
const PENDING: Readonly<Record<string, string>> = {};
const pending = (finding: string): { skip?: string } => (PENDING[finding] === undefined ? {} : { skip: PENDING[finding]! });

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** Each HBONE implementation the agent can run (agent/tunnel/impl.ts), in a topology of its own. */
const TOPOLOGIES: readonly { impl: HboneImpl; tag: string; subnet: number }[] = [
  { impl: 'node', tag: 'fuzza', subnet: 240 },
  { impl: 'lean', tag: 'h2atk', subnet: 136 },
];

for (const { impl, tag, subnet } of TOPOLOGIES) describe(`live attacks on the agent (in-process two-pod topology, mutual TLS, HBONE ${impl})`, { concurrency: false }, () => {
  const previousImpl = defaultHboneImpl();
  let t: TwoPods;
  let creds: WorkloadCertificate;
  let baseFds = 0;
  let baseHeap = 0;
  let baseRecords = 0;
  const records = (): number => t.agent.inputs.connections.openConnections().length;

  const normalRequest = async (): Promise<void> => {
    assert.equal(await t.request(t.VIP, 80, 'ping'), `${t.IP_A}|ping`);
  };

  /** Alive, serving, and resources back within the bounds. */
  async function assertRecovered(what: string): Promise<void> {
    await normalRequest();
    await waitFor(() => records() <= baseRecords, `${what}: connection records back to ${baseRecords} (now ${records()})`);
    await waitFor(() => fdCount() <= baseFds + FD_BOUND, `${what}: descriptors back within ${FD_BOUND} of ${baseFds} (now ${fdCount()})`);
    await waitFor(() => heapMb() <= baseHeap + HEAP_BOUND_MB, `${what}: heap back within ${HEAP_BOUND_MB} MB of ${baseHeap.toFixed(1)} MB (now ${heapMb().toFixed(1)} MB)`);
    await normalRequest();
  }

  const attacker = (read = true) => rawH2(t.fdA, t.IP_B, HBONE, creds, { read });

  before(async () => {
    // The agent's pools and HBONE servers are made while it captures the pods, with the process default.
    setDefaultHboneImpl(impl);
    t = await setupTwoPods(tag, subnet);
    await waitFor(() => t.agent.ready, 'agent ready');
    await waitFor(async () => (await t.request(t.VIP, 80, 'ping').catch(() => '')) === `${t.IP_A}|ping`, 'first meshed request');
    creds = await requestCertificate(new InProcessCaClient(t.ca!, 'node-1'), 'spiffe://cluster.local/ns/shop/sa/client');
    // Warm: a pooled HBONE session and the attacker's TLS path exist before the baseline.
    const warm = await attacker();
    warm.socket.destroy();
    await normalRequest();
    baseRecords = records();
    await waitFor(() => fdCount() > 0, 'fd count');
    baseFds = fdCount();
    baseHeap = heapMb();
  });

  after(async () => {
    await t?.cleanup();
    setDefaultHboneImpl(previousImpl);
  });

  it('F1: CONNECT to the pod\'s own 15001, 15006 and 15008, and plaintext to 127.0.0.1:15001 inside a pod, are refused without a loop', pending('F1'), async () => {
    const a = await attacker();
    let id = 1;
    for (const port of [15001, 15006, 15008]) {
      await a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, connectHead(`${t.IP_B}:${port}`)));
      id += 2;
    }
    a.socket.destroy();
    // From inside pod A, a process connects to its agent's outbound port directly (not redirected).
    for (const port of [15001, 15006]) {
      const s = new net.Socket({ fd: createTcpSocket({ netnsFd: t.fdA }), readable: true, writable: true });
      s.on('error', () => undefined);
      // Refused or reset by the agent (WEFT_ERR_SELF_CALL), never relayed to itself.
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.connect(port, '127.0.0.1');
      await closed;
    }
    await assertRecovered('F1');
  });

  it('F2: 20 connections x 50 open streams, each client closing with a FIN', pending('F2'), async () => {
    for (let c = 0; c < 20; c++) {
      const a = await attacker();
      const head = connectHead(`${t.IP_B}:${APP_PORT}`);
      for (let i = 0; i < 50; i++) await a.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, head));
      await waitFor(() => a.frames.count(FRAME.HEADERS) >= 50 || a.isClosed(), 'streams answered');
      a.socket.end();
    }
    await assertRecovered('F2');
  });

  it('F3: a protocol error from an authenticated client closes its socket', pending('F3'), async () => {
    const a = await attacker();
    // WINDOW_UPDATE with a 0 increment on the connection: a connection error (RFC 9113 6.9).
    await a.write(frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)));
    await a.closed;
    await assertRecovered('F3');
  });

  it('F4: 2,000 streams opened and reset at once (HEADERS then RST_STREAM) leave no connection records', pending('F4'), async () => {
    const a = await attacker();
    const head = connectHead(`${t.IP_B}:${APP_PORT}`);
    for (let i = 0; i < 2000 && !a.isClosed(); i++) {
      const id = 1 + 2 * i;
      await a.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, id, head), rstStream(id)]));
    }
    a.socket.destroy();
    await assertRecovered('F4');
  });

  it('rapid-reset flood: 5 connections x 4,000 HEADERS+RST_STREAM', pending('F4'), async () => {
    const head = connectHead(`${t.IP_B}:${APP_PORT}`);
    for (let c = 0; c < 5; c++) {
      const a = await attacker();
      for (let i = 0; i < 4000 && !a.isClosed(); i += 100) {
        const burst: Buffer[] = [];
        for (let j = i; j < i + 100; j++) burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * j, head), rstStream(1 + 2 * j, CANCEL));
        await a.write(Buffer.concat(burst));
      }
      a.socket.destroy();
    }
    await assertRecovered('rapid reset');
  });

  it('CONTINUATION flood: one HEADERS without END_HEADERS and 8 MB of CONTINUATION frames', async () => {
    const a = await attacker();
    await a.write(frame(FRAME.HEADERS, 0, 1, connectHead(`${t.IP_B}:${APP_PORT}`)));
    const junk = Buffer.concat(Array.from({ length: 16 }, (_, i) => literal(`x-junk-${i}`, 'v'.repeat(60))));
    let sent = 0;
    while (sent < 8 * 1024 * 1024 && !a.isClosed()) {
      await a.write(frame(FRAME.CONTINUATION, 0, 1, junk));
      sent += junk.length + 9;
    }
    // The server must refuse a header block this large (its header list limit) by closing.
    await a.closed;
    await assertRecovered('CONTINUATION flood');
  });

  it('SETTINGS flood: 20,000 SETTINGS frames whose ACKs the client never reads', async () => {
    const a = await attacker(false);
    for (let i = 0; i < 20_000 && !a.isClosed(); i += 500) {
      await a.write(Buffer.concat(Array.from({ length: 500 }, () => settings([[0x3, 100]]))));
    }
    a.socket.destroy();
    await assertRecovered('SETTINGS flood');
  });

  it('PING flood: 50,000 PING frames whose ACKs the client never reads', async () => {
    const a = await attacker(false);
    for (let i = 0; i < 50_000 && !a.isClosed(); i += 1000) {
      await a.write(Buffer.concat(Array.from({ length: 1000 }, (_, j) => ping(i + j))));
    }
    a.socket.destroy();
    await assertRecovered('PING flood');
  });

  it('1,000 streams at once on one connection (10 x the concurrency limit), then the client goes away', pending('F2'), async () => {
    const a = await attacker();
    const head = connectHead(`${t.IP_B}:${APP_PORT}`);
    const burst: Buffer[] = [];
    for (let i = 0; i < 1000; i++) burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, head));
    await a.write(Buffer.concat(burst));
    // Streams beyond the limit are refused (RST_STREAM) or the connection closed; never all served.
    await waitFor(() => a.isClosed() || a.frames.count(FRAME.RST_STREAM) + a.frames.count(FRAME.HEADERS) >= 1000, 'every stream answered or refused');
    a.socket.destroy();
    await assertRecovered('1,000 streams at once');
  });

  it('1,000 streams over the life of one connection (node:http2 client, 100 at a time), each a round trip to the app', async () => {
    const tcp = new net.Socket({ fd: createTcpSocket({ netnsFd: t.fdA, mark: MESH_MARK }), readable: true, writable: true });
    tcp.connect(HBONE, t.IP_B);
    await once(tcp, 'connect');
    const session: ClientHttp2Session = h2connect(`https://${t.IP_B}:${HBONE}`, {
      // node:tls over the already connected, marked socket (the pod's capture must not take it).
      createConnection: () =>
        tlsConnect({
          socket: tcp,
          ...TLS_VERSIONS,
          ALPNProtocols: [ALPN_H2],
          key: creds.keyPem,
          cert: [creds.certPem, ...creds.chainPem].join(''),
          ca: creds.trustBundle,
          checkServerIdentity: () => undefined,
        }),
    });
    session.on('error', () => undefined);
    let ok = 0;
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const s = session.request({ ':method': 'CONNECT', ':authority': `${t.IP_B}:${APP_PORT}` });
          s.end('x');
          const chunks: Buffer[] = [];
          for await (const c of s) chunks.push(c as Buffer);
          if (Buffer.concat(chunks).toString().endsWith('|x')) ok++;
        }),
      );
    }
    assert.equal(ok, 1000);
    session.close();
    await assertRecovered('1,000 streams on one connection');
  });
});
