/**
 * A deadline on an upstream socket's TCP connect (issue 10, point 7): a destination that drops
 * SYNs would otherwise hold the client for the kernel's retries (about two minutes). Listeners
 * are shared functions (no closure per connection); the idle timer is off once connected.
 */
import type { Socket } from 'node:net';
import { UPSTREAM_CONNECT_TIMEOUT_MS } from '../config.js';
import { WeftError } from '../errors.js';

export function armConnectTimeout(socket: Socket, timeoutMs: number = UPSTREAM_CONNECT_TIMEOUT_MS): void {
  socket.setTimeout(timeoutMs);
  socket.on('timeout', onConnectTimeout);
  socket.on('connect', onConnected);
}

function onConnectTimeout(this: Socket): void {
  this.off('timeout', onConnectTimeout);
  this.off('connect', onConnected);
  if (this.connecting) this.destroy(new WeftError('WEFT_ERR_CONNECT_TIMEOUT', `TCP connect to ${this.remoteAddress ?? 'upstream'} took too long`));
}

function onConnected(this: Socket): void {
  this.setTimeout(0);
  this.off('timeout', onConnectTimeout);
  this.off('connect', onConnected);
}
