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
  /** No more restarts from now on: the stack calls it on every process before it stops any (Ctrl-C reaches them all). */
  halt(): void;
  /** Halts, then stops the process, and any restart still starting. */
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
  let launching: Promise<ManagedProcess> | undefined;
  let retired: ManagedProcess | undefined;

  const watch = (process: ManagedProcess) =>
    process.child.once('exit', (code, signal) => {
      if (stopped || process !== current || process === retired) return;
      if (Date.now() - startedAt >= HEALTHY_AFTER_MS) delayMs = initialDelayMs;
      log(`${name} exited (${signal ?? `code ${code}`}); restarting in ${delayMs / 1000} s (see ${process.logFile})`);
      schedule();
    });

  const schedule = () => {
    // One restart at a time: a process that dies while its restore fails is one reason, not two.
    if (pending || stopped) return;
    const delay = delayMs;
    delayMs = Math.min(delayMs * 2, maxDelayMs);
    pending = setTimeout(() => void restart(), delay);
  };

  const restart = async () => {
    pending = undefined;
    if (stopped) return;
    let next: ManagedProcess | undefined;
    try {
      launching = options.start();
      next = await launching;
      if (stopped) return void (await next.stop());
      current = next;
      startedAt = Date.now();
      restarts += 1;
      // Watched from here on: an exit while it is being restored schedules the next restart.
      watch(next);
      await options.restored?.();
      log(`${name} restarted (restart ${restarts}, pid ${next.child.pid})`);
    } catch (error) {
      if (stopped) return;
      log(`${name} did not come back: ${(error as Error).message}; trying again in ${delayMs / 1000} s`);
      if (next) {
        // Stopped on purpose: its exit is not a second reason to restart.
        retired = next;
        await next.stop();
      }
      schedule();
    } finally {
      launching = undefined;
    }
  };

  watch(current);
  const halt = () => {
    stopped = true;
    clearTimeout(pending);
  };
  return {
    name,
    current: () => current,
    halt,
    async stop() {
      halt();
      const starting = launching;
      await current.stop();
      await starting?.then(
        (started) => started.stop(),
        () => undefined,
      );
    },
  };
}

export interface SupervisorEvent {
  name: string;
  event: 'running' | 'exited' | 'restarted' | 'did not come back';
  /** On `running` and `restarted`: the new process. */
  pid?: number;
}

/** The supervisor's lines (the `log` calls above, as the stack prints them after `[stack] `), in order, wherever they are in `output`. */
export function supervisorEvents(output: string): SupervisorEvent[] {
  return [
    ...output.matchAll(
      /\[stack\] (\S+) (running|exited|restarted|did not come back)\b(?: \((?:restart \d+, )?pid (\d+)\))?/g,
    ),
  ].map(([, name, event, pid]) => ({
    name: name!,
    event: event as SupervisorEvent['event'],
    ...(pid ? { pid: Number(pid) } : {}),
  }));
}

/** The pid the stack's output last gave `name` (its `running` or `restarted` line), if any. */
export function supervisedPid(output: string, name: string): number | undefined {
  return supervisorEvents(output).findLast((e) => e.name === name && e.pid !== undefined)?.pid;
}
