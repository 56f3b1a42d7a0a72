/**
 * The JSON logger of the worker, the poller and the processes' start-up (the
 * API and the sandbox log through Fastify's own pino): one line per event at
 * or above LOG_LEVEL, on standard output. Fields named like a secret are
 * redacted, at the top of a line's fields or one level down.
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const SECRET_NAMES = ['token', 'apiKey', 'password', 'secret', 'authorization', 'cookie', 'linkCode', 'signingKey'];
export const REDACTED_PATHS = SECRET_NAMES.flatMap((name) => [name, `*.${name}`, `*.headers.${name}`]);

export function createLogger(
  name: string,
  level: LevelWithSilent = 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}

/** For `main().catch(…)`: the reason a process cannot start or go on, as its last line, then exit 1. */
export function exitWithError(name: string): (error: unknown) => never {
  return (error) => {
    createLogger(name).fatal({ err: error }, error instanceof Error ? error.message : String(error));
    process.exit(1);
  };
}
