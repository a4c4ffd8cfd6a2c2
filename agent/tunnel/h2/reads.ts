/**
 * Reading a TLS socket into one reused buffer. net.Socket's `onread` option is what does this,
 * but TLSSocket ignores it when it wraps an existing socket (Node 20's _tls_wrap.js passes
 * `onread: null` then), and both ends of HBONE wrap one: the pool's socket is made inside the
 * pod's namespace, the server's comes from the listener. So the same three fields the option
 * would set are set after the handshake, and the TLSWrap handle is told to read into the buffer
 * (StreamBase's useUserBuffer, what `onread` calls). Where a Node version lacks any of them,
 * the socket is read the default way ('data', a new buffer per read): slower, same bytes.
 */
import type { TLSSocket } from 'node:tls';

export type ReadCallback = (nread: number, buffer: Buffer) => void;

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/** Returns whether reads now go into `buffer`; `onRead` is then called for each with the count. */
export function readIntoReusedBuffer(socket: TLSSocket, buffer: Buffer, onRead: ReadCallback): boolean {
  const symbols = Object.getOwnPropertySymbols(socket);
  const find = (name: string): symbol | undefined => symbols.find((s) => s.description === name);
  const kBuffer = find('kBuffer');
  const kBufferCb = find('kBufferCb');
  const kBufferGen = find('kBufferGen');
  // The handle is internal (TLSWrap); only its useUserBuffer method is used.
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined || typeof handle?.useUserBuffer !== 'function') return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  fields[kBuffer] = buffer;
  // Node calls it with the socket as `this`; the callback's return value false would stop reading.
  fields[kBufferCb] = (nread: number, buf: Buffer): boolean => {
    onRead(nread, buf);
    return true;
  };
  fields[kBufferGen] = null;
  handle.useUserBuffer(buffer);
  return true;
}
