/**
 * How a long-running command (agent, waypoint, gateway) ends on SIGTERM or SIGINT: log, stop
 * once (a second signal is ignored while stopping), flush the log, exit 0, or 1 when stopping failed.
 */
import type { Logger } from 'pino';

export function exitOnStopSignals(
  logger: Logger,
  stop: (signal: 'SIGTERM' | 'SIGINT') => Promise<void>,
  logFields: (signal: 'SIGTERM' | 'SIGINT') => Record<string, unknown> = () => ({}),
): void {
  let stopping = false;
  const onSignal = (signal: 'SIGTERM' | 'SIGINT'): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, ...logFields(signal) }, 'stopping');
    stop(signal).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
