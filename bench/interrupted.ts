/**
 * A bench stopped by Ctrl-C or SIGTERM stops what it started: a worker left
 * polling a dead server, or FerretDB left holding its port, would skew the
 * next run's figures.
 */
import type { ChildProcess } from 'node:child_process';
import type { ManagedProcess } from '../infra/processes';

const started = new Set<ChildProcess | ManagedProcess>();
let installed = false;

/** SIGTERM, then SIGKILL after 10 s: a worker's graceful shutdown never ends while an activity waits on a dead store. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function stopAll(): Promise<void> {
  // Our own processes first, then the servers they talk to (each server's stop() escalates likewise).
  const all = [...started].reverse();
  await Promise.allSettled(all.flatMap((p) => ('stop' in p ? [] : [stopChild(p)])));
  await Promise.allSettled(all.flatMap((p) => ('stop' in p ? [p.stop()] : [])));
}

/** Stops `process` with the bench when the bench is interrupted; returns it. */
export function stopWhenInterrupted<T extends ChildProcess | ManagedProcess>(child: T): T {
  started.add(child);
  if (!installed) {
    installed = true;
    const interrupted = () => void stopAll().finally(() => process.exit(130));
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
  }
  return child;
}
