/**
 * Keeps one process of the local stack running: when it dies while the stack
 * runs (a crash, an OOM kill, an operator's `kill -9`), it is started again
 * after a backoff, and every exit and restart is logged. Without this, one
 * dead process stopped the whole stack, and moto's in-memory queues with it.
 */
import type { ManagedProcess } from './processes';

export interface SupervisorOptions {
  name: string;
  start: () => Promise<ManagedProcess>;
  /** After a restart, before the process counts as back: re-creating moto's queues, say. */
  restored?: () => Promise<void>;
  log: (line: string) => void;
  /** First delay before a restart; doubles while restarts keep failing or dying young, up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface Supervised {
  readonly name: string;
  current(): ManagedProcess;
  restarts(): number;
  stop(): Promise<void>;
}

/** A process that lived this long was healthy: its next restart starts from the initial delay again. */
const HEALTHY_AFTER_MS = 60_000;

export async function supervise(options: SupervisorOptions): Promise<Supervised> {
  const { name, log } = options;
  const initialDelayMs = options.initialDelayMs ?? 1_000;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  let current = await options.start();
  log(`${name} running (pid ${current.child.pid})`);
  let startedAt = Date.now();
  let restarts = 0;
  let delayMs = initialDelayMs;
  let stopped = false;
  let pending: NodeJS.Timeout | undefined;

  const watch = (process: ManagedProcess) =>
    process.child.once('exit', (code, signal) => {
      if (stopped || process !== current) return;
      if (Date.now() - startedAt >= HEALTHY_AFTER_MS) delayMs = initialDelayMs;
      log(`${name} exited (${signal ?? `code ${code}`}); restarting in ${delayMs / 1000} s (see ${process.logFile})`);
      schedule();
    });

  const schedule = () => {
    const delay = delayMs;
    delayMs = Math.min(delayMs * 2, maxDelayMs);
    pending = setTimeout(() => void restart(), delay);
  };

  const restart = async () => {
    pending = undefined;
    if (stopped) return;
    try {
      const next = await options.start();
      if (stopped) return void (await next.stop());
      current = next;
      startedAt = Date.now();
      restarts += 1;
      await options.restored?.();
      watch(next);
      log(`${name} restarted (restart ${restarts}, pid ${next.child.pid})`);
      // It may have died while being restored: then its exit went unwatched.
      if (next.child.exitCode !== null || next.child.signalCode !== null) schedule();
    } catch (error) {
      if (stopped) return;
      log(`${name} did not come back: ${(error as Error).message}; trying again in ${delayMs / 1000} s`);
      schedule();
    }
  };

  watch(current);
  return {
    name,
    current: () => current,
    restarts: () => restarts,
    async stop() {
      stopped = true;
      clearTimeout(pending);
      await current.stop();
    },
  };
}
