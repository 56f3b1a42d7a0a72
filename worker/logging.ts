/**
 * The worker logs through pino, the SDK included: the Runtime's logger
 * receives the SDK's own messages, the workflows' and activities' context
 * loggers, and (forwarded) the native Core's, filtered at LOG_LEVEL.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { LevelWithSilent } from 'pino';
import type { RuntimeOptions } from '@temporalio/worker';
import type { Logger } from '../lib/logger';

const PINO_LEVEL = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
} as const satisfies Record<LogLevel, string>;
const CORE_LEVEL: Record<LevelWithSilent, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** The SDK puts an error under `error`; pino serializes one (message, stack) only under `err`. */
function fieldsOf(meta: LogMetadata | undefined): object {
  if (!meta) return {};
  const { error, ...rest } = meta as { error?: unknown };
  return error instanceof Error ? { ...rest, err: error } : meta;
}

export function temporalLogger(log: Logger): TemporalLogger {
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) =>
    log[PINO_LEVEL[level]](fieldsOf(meta), message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

/** The Runtime's logging options: everything to `log`, the native Core's messages forwarded at LOG_LEVEL. */
export function runtimeLogging(
  log: Logger,
  level: LevelWithSilent,
): Pick<RuntimeOptions, 'logger'> & { logging: NonNullable<RuntimeOptions['telemetryOptions']>['logging'] } {
  return { logger: temporalLogger(log), logging: { filter: { core: CORE_LEVEL[level] }, forward: {} } };
}
