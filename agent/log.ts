import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One root logger per process. JSON lines to stdout (or to a file descriptor given by the
 * caller); level from WEFT_LOG_LEVEL. Modules take a child logger with a `component` binding.
 */
export function createLogger(bindings: Record<string, unknown> = {}, destination?: number | string): Logger {
  const level = process.env.WEFT_LOG_LEVEL ?? 'info';
  const dest = destination === undefined ? pino.destination({ fd: 1, sync: false }) : pino.destination(destination);
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** A logger that discards everything, for tests and library callers that do not log. */
export const silentLogger: Logger = pino({ level: 'silent' });
