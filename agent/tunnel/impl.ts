/**
 * Which HTTP/2 implementation carries HBONE: `node` (node:http2, nghttp2) or `lean` (Weft's own
 * framer, agent/tunnel/h2/). The pool and the server take it as an option; without one they use
 * the process default, which `weft agent --hbone-impl` sets (and WEFT_HBONE_IMPL, so that the lab's
 * agents and tests can be switched without new flags on every command); without either, lean
 * (config.ts DEFAULT_HBONE_IMPL).
 */
import { WeftError } from '../errors.js';
import { CONNECTION_WINDOW_BYTES, DEFAULT_HBONE_IMPL, MAX_FRAME_BYTES, MAX_HEADER_LIST_BYTES, MAX_STREAMS_PER_CONNECTION, STREAM_WINDOW_BYTES } from '../config.js';
import type { LeanSessionOptions } from './h2/session.js';

export const HBONE_IMPLS = ['node', 'lean'] as const;
export type HboneImpl = (typeof HBONE_IMPLS)[number];

export function parseHboneImpl(value: string): HboneImpl {
  if ((HBONE_IMPLS as readonly string[]).includes(value)) return value as HboneImpl;
  throw new WeftError('WEFT_ERR_CONFIG', `--hbone-impl must be one of ${HBONE_IMPLS.join(', ')}, got ${JSON.stringify(value)}`);
}

const fromEnv = process.env['WEFT_HBONE_IMPL'];
let processDefault: HboneImpl = fromEnv === undefined || fromEnv === '' ? DEFAULT_HBONE_IMPL : parseHboneImpl(fromEnv);

export function defaultHboneImpl(): HboneImpl {
  return processDefault;
}

export function setDefaultHboneImpl(impl: HboneImpl): void {
  processDefault = impl;
}

/** The lean sessions' settings: the same reference numbers node:http2 is given (settings.ts). */
export function leanSessionOptions(isServer: boolean): LeanSessionOptions {
  return {
    isServer,
    maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION,
    initialWindowSize: STREAM_WINDOW_BYTES,
    connectionWindowSize: CONNECTION_WINDOW_BYTES,
    maxFrameSize: MAX_FRAME_BYTES,
    maxHeaderListSize: MAX_HEADER_LIST_BYTES,
  };
}
