/**
 * A small HTTP/2 frame writer (RFC 9113 section 4) and HPACK literal encoder (RFC 7541 section
 * 6.2.2) for the attack suite: node:http2's client refuses to misbehave (it will not send a
 * HEADERS without END_HEADERS followed by endless CONTINUATION, nor 10,000 unanswered PINGs), so
 * the attacks speak raw frames over a mutual-TLS socket.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import net from 'node:net';
import { once } from 'node:events';
import { ALPN_H2, TLS_VERSIONS } from '../../agent/tunnel/settings.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { createTcpSocket } from '../../native/index.js';
import { MESH_MARK } from '../../agent/config.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const CANCEL = 0x8;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (the first byte's high bits are `high`). */
function hpackInt(value: number, prefixBits: number, high = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const out = [high | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** "Literal Header Field without Indexing, New Name", no Huffman coding. */
export function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

export function connectHead(authority: string): Buffer {
  return Buffer.concat([literal(':method', 'CONNECT'), literal(':authority', authority)]);
}

export function settings(entries: readonly [number, number][] = []): Buffer {
  const p = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function rstStream(streamId: number, code = CANCEL): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export function ping(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n >>> 0, 4);
  return frame(FRAME.PING, 0, 0, p);
}

/** What the server sent, by frame type, and whether it closed the connection. */
export class FrameCounter {
  readonly byType = new Map<number, number>();
  goawayCode: number | undefined;
  #buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) break;
      const type = this.#buf[3]!;
      this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
      if (type === FRAME.GOAWAY && len >= 8) this.goawayCode = this.#buf.readUInt32BE(9 + 4);
      this.#buf = this.#buf.subarray(9 + len);
    }
  }

  count(type: number): number {
    return this.byType.get(type) ?? 0;
  }
}

export interface RawH2 {
  socket: TLSSocket;
  frames: FrameCounter;
  closed: Promise<void>;
  isClosed(): boolean;
  /** Writes and resolves when the socket took it (or the socket is gone). */
  write(b: Buffer): Promise<void>;
}

/**
 * A mutual-TLS HTTP/2 connection from inside `netnsFd` (the attacker's pod) to `host:port`,
 * with the mesh mark so the pod's own capture lets it pass as the agent's own traffic would:
 * the attacker is an authenticated mesh client talking to the server agent's 15008 directly.
 * Sends the preface and an empty SETTINGS; `read: false` leaves the server's frames unread (so
 * that the server's answers pile up on its side).
 */
export async function rawH2(netnsFd: number, host: string, port: number, creds: WorkloadCertificate, opts: { read?: boolean } = {}): Promise<RawH2> {
  const tcp = new net.Socket({ fd: createTcpSocket({ netnsFd, mark: MESH_MARK }), readable: true, writable: true });
  tcp.connect(port, host);
  await once(tcp, 'connect');
  const socket = tlsConnect({
    socket: tcp,
    ...TLS_VERSIONS,
    ALPNProtocols: [ALPN_H2],
    key: creds.keyPem,
    cert: [creds.certPem, ...creds.chainPem].join(''),
    ca: creds.trustBundle,
    // The server's SPIFFE identity is not what this attack is about.
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  const frames = new FrameCounter();
  let closed = false;
  const closedP = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  if (opts.read !== false) socket.on('data', (c: Buffer) => frames.feed(c));
  const write = (b: Buffer): Promise<void> =>
    new Promise((resolve) => {
      if (closed || socket.destroyed) return resolve();
      if (socket.write(b)) resolve();
      else {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.once('drain', done);
        socket.once('close', done);
      }
    });
  await write(Buffer.concat([PREFACE, settings()]));
  return { socket, frames, closed: closedP, isClosed: () => closed, write };
}
