/**
 * Copies bytes both ways between two sockets until both directions are done. A FIN travels as a
 * FIN (half-close: both sockets must be allowHalfOpen), a reset or error on one side resets the
 * other, and `done` is called exactly once, after both sockets closed, with the byte counts.
 */
import type { Socket } from 'node:net';

export interface RelayResult {
  /** Bytes received from the downstream (client side) and sent on upstream. */
  bytesFromDownstream: number;
  /** Bytes received from the upstream and sent to the downstream. */
  bytesFromUpstream: number;
  error: Error | undefined;
}

export type RelayDone = (result: RelayResult) => void;

export function relay(downstream: Socket, upstream: Socket, done: RelayDone): void {
  let closed = 0;
  let error: Error | undefined;
  const onError = (side: Socket, other: Socket, err: Error): void => {
    error ??= err;
    // Mirror an abort as an abort: the peer must see a reset, not a clean end.
    if (!other.destroyed) other.resetAndDestroy();
    if (!side.destroyed) side.destroy();
  };
  const onClose = (): void => {
    if (++closed === 2) done({ bytesFromDownstream: downstream.bytesRead, bytesFromUpstream: upstream.bytesRead, error });
  };
  downstream.on('error', (err) => onError(downstream, upstream, err));
  upstream.on('error', (err) => onError(upstream, downstream, err));
  downstream.on('close', onClose);
  upstream.on('close', onClose);
  downstream.pipe(upstream);
  upstream.pipe(downstream);
}
