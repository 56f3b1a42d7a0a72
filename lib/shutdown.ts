import type { Logger } from './logger';

/** Runs `close` once on SIGINT or SIGTERM, then exits; a second signal exits at once. */
export function onShutdown(close: () => Promise<unknown>, log: Pick<Logger, 'info' | 'error'>): void {
  let closing = false;
  const handle = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    log.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
