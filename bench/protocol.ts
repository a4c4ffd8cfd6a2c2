/**
 * The benchmark's request/response framing, shared by the server pod (server.ts) and the load
 * generator (loadgen.ts). A request is `[u32 BE request length][u32 BE response length]` followed
 * by padding up to the request length (the header counts); the server answers with exactly
 * `response length` bytes. Responses come back in request order, so a client with several
 * requests in flight on one connection matches them by counting bytes.
 */

export const HEADER_BYTES = 8;
/** Ports inside the server pod. */
export const RR_PORT = 7000;
export const SINK_PORT = 7001;
export const IPERF_PORT = 5201;
/** HTTP/1.1 (keep-alive) request/response server of the l7 and ingress scenarios. */
export const HTTP_PORT = 7080;
/** h2c (prior knowledge) gRPC-like server of the l7 scenario. */
export const H2_PORT = 7090;
/** The l7 and ingress scenarios' request and response message size. */
export const HTTP_MESSAGE_BYTES = 1024;
/** The path of the gRPC-like call (a unary method, as gRPC names them). */
export const GRPC_PATH = '/weft.bench.Echo/Call';

/**
 * A gRPC length-prefixed message (gRPC over HTTP/2: 1 byte compressed flag, 4 bytes big-endian
 * length, the message), `messageBytes` of payload. Built once, written many times.
 */
export function grpcFrame(messageBytes: number): Buffer {
  const buf = Buffer.alloc(5 + messageBytes, 0x63);
  buf.writeUInt8(0, 0);
  buf.writeUInt32BE(messageBytes, 1);
  return buf;
}
/** A request or response larger than this is refused: a corrupt header must not allocate GBs. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A ready-to-send request (built once per size, reused for every request). */
export function buildRequest(requestBytes: number, responseBytes: number): Buffer {
  if (requestBytes < HEADER_BYTES) throw new RangeError(`a request is at least ${HEADER_BYTES} bytes (got ${requestBytes})`);
  if (requestBytes > MAX_MESSAGE_BYTES || responseBytes > MAX_MESSAGE_BYTES || responseBytes < 1) {
    throw new RangeError(`message sizes must be 1..${MAX_MESSAGE_BYTES} bytes`);
  }
  const buf = Buffer.alloc(requestBytes, 0x61);
  buf.writeUInt32BE(requestBytes, 0);
  buf.writeUInt32BE(responseBytes, 4);
  return buf;
}

/**
 * Incremental parser of a request stream: feed chunks, get called once per complete request
 * with its response size. Keeps only the (at most 8-byte) header across chunks.
 */
export class RequestParser {
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerFill = 0;
  /** Body bytes still to skip for the current request. */
  #remaining = 0;
  #responseBytes = 0;
  readonly #onRequest: (responseBytes: number) => void;

  constructor(onRequest: (responseBytes: number) => void) {
    this.#onRequest = onRequest;
  }

  /** Throws RangeError on a malformed header (the caller drops the connection). */
  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.#headerFill < HEADER_BYTES) {
        const take = Math.min(HEADER_BYTES - this.#headerFill, len - off);
        chunk.copy(this.#header, this.#headerFill, off, off + take);
        this.#headerFill += take;
        off += take;
        if (this.#headerFill < HEADER_BYTES) return;
        const total = this.#header.readUInt32BE(0);
        this.#responseBytes = this.#header.readUInt32BE(4);
        if (total < HEADER_BYTES || total > MAX_MESSAGE_BYTES || this.#responseBytes < 1 || this.#responseBytes > MAX_MESSAGE_BYTES) {
          throw new RangeError(`malformed request header (length ${total}, response ${this.#responseBytes})`);
        }
        this.#remaining = total - HEADER_BYTES;
      }
      const skip = Math.min(this.#remaining, len - off);
      this.#remaining -= skip;
      off += skip;
      if (this.#remaining === 0) {
        this.#headerFill = 0;
        this.#onRequest(this.#responseBytes);
      }
    }
  }
}
