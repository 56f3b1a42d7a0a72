/**
 * bench/chaos's handle on the cluster-mode stack (`node dist/infra/stack.js
 * --cluster`), started as test/cluster-stack.test.ts starts it: on free ports,
 * in a temporary STACK_DIR, detached in its own process group. It keeps the
 * stack's output, reads each supervised process's current pid from the
 * supervisor's lines (and every pid a restart reported, every exit), tells
 * whether a pid is in the stack's process group (/proc/<pid>/stat), and stops
 * the whole group with SIGINT (SIGCONT first, for a store left stopped), then
 * SIGKILL after 90 s: by the group's id, so the replicas are stopped even if
 * the stack's own process already died.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../infra/processes';
import { freeStackPorts, stackPortsEnv, type StackPorts } from '../infra/stack-ports';
import { supervisedPid, supervisorEvents } from '../infra/supervisor';
import { repoRoot } from '../infra/paths';

export interface ClusterStack {
  ports: StackPorts;
  dir: string;
  /** The sandbox's SNS signing key and certificate (SANDBOX_SNS_SIGNING_DIR). */
  signingDir: string;
  child: ChildProcess;
  alive(): boolean;
  output(): string;
  /** The pid the supervisor last reported for `name` (`worker-1`, `temporal`, `ferretdb`, …), or undefined. */
  pidOf(name: string): number | undefined;
  /** How many times the supervisor reported `name` restarted. */
  restartsOf(name: string): number;
  /** The pids the supervisor reported for `name`'s restarts, in order. */
  restartPidsOf(name: string): number[];
  /** How many times the supervisor reported `name` exited (each exit it did not cause). */
  exitsOf(name: string): number;
  /** Every name the supervisor reported running. */
  supervisedNames(): string[];
  /** Whether `pid` is in the stack's process group. */
  inGroup(pid: number): boolean;
  /** The main queue and dead-letter queue URLs the stack printed. */
  queues(): { queueUrl: string; deadLetterQueueUrl: string; eventsQueueUrl: string; eventsDeadLetterQueueUrl: string };
  /** Stops the whole group; the run directory (logs, data) is kept when `keep` is set, for a failed run. */
  stop(keep?: boolean): Promise<number | null>;
}

/** What /proc says the process runs (its command line), to be sure a signal goes where it is meant. */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat, after the command's parenthesised name), or undefined. */
function processGroupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return pgrp > 0 ? pgrp : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals the whole group; false when there is no such group any more. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the stack; `onSpawn` gets the handle as soon as the process exists, so that a SIGINT during the start-up
 * can stop it too.
 */
export async function startClusterStack(
  extraEnv: Record<string, string>,
  timeoutMs = 420_000,
  onSpawn?: (stack: ClusterStack) => void,
): Promise<ClusterStack> {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-cluster-'));
  const ports = await freeStackPorts({ cluster: true });
  const env: Record<string, string | undefined> = {
    ...process.env,
    STACK_DIR: dir,
    ...stackPortsEnv(ports),
    SANDBOX_REGISTRATION_URL: `http://localhost:${ports.api}/marketplace/register`,
    PUBLIC_BASE_URL: `http://127.0.0.1:${ports.api}`,
    // Where the sandbox keeps its SNS signing key: the bench signs envelopes of its own with it.
    SANDBOX_SNS_SIGNING_DIR: join(dir, 'sns-signing'),
    ...extraEnv,
  };
  const child = spawn(
    join(repoRoot, 'node_modules', '.bin', 'node'),
    [join(repoRoot, 'dist', 'infra', 'stack.js'), '--cluster'],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let output = '';
  // Only the supervisor's lines and the banner are kept: the replicas' own log lines would grow without bound.
  const keeper = () => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.startsWith('[stack]') || !line.startsWith('[')) output += `${line}\n`;
    };
  };
  child.stdout.on('data', keeper());
  child.stderr.on('data', keeper());
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stack: ClusterStack = {
    ports,
    dir,
    signingDir: join(dir, 'sns-signing'),
    child,
    alive,
    output: () => output,
    pidOf: (name) => supervisedPid(output, name),
    restartsOf(name) {
      return stack.restartPidsOf(name).length;
    },
    restartPidsOf(name) {
      return supervisorEvents(output).flatMap((e) => (e.name === name && e.event === 'restarted' ? [e.pid!] : []));
    },
    exitsOf(name) {
      return supervisorEvents(output).filter((e) => e.name === name && e.event === 'exited').length;
    },
    supervisedNames() {
      return [...new Set(supervisorEvents(output).flatMap((e) => (e.event === 'running' ? [e.name] : [])))];
    },
    inGroup(pid) {
      return child.pid !== undefined && processGroupOf(pid) === child.pid;
    },
    queues() {
      const queue = /Queue\s+(\S+)\s+\(dead letters: (\S+)\)/.exec(output);
      const events = /Events queue\s+(\S+)\s+\(dead letters: (\S+)\)/.exec(output);
      if (!queue || !events) throw new Error('the stack did not print its queues');
      return {
        queueUrl: queue[1]!,
        deadLetterQueueUrl: queue[2]!,
        eventsQueueUrl: events[1]!,
        eventsDeadLetterQueueUrl: events[2]!,
      };
    },
    stop(keep = false) {
      stopping ??= stopGroup(keep);
      return stopping;
    },
  };
  let stopping: Promise<number | null> | undefined;
  const stopGroup = async (keep: boolean) => {
    const pgid = child.pid!;
    // A store left stopped would never answer the stack's shutdown: every process of the group is continued first.
    signalGroup(pgid, 'SIGCONT');
    // By the group, not the stack's process: if that one died, its replicas still run in the group.
    signalGroup(pgid, 'SIGINT');
    let hardDone = false;
    const hard = setTimeout(() => {
      hardDone = true;
      signalGroup(pgid, 'SIGKILL');
    }, 90_000);
    if (alive()) await exited;
    // The stack's process is gone; anything of its group still running gets the rest of the 90 s, then SIGKILL.
    while (signalGroup(pgid, 0) && !hardDone) await new Promise((resolve) => setTimeout(resolve, 250));
    clearTimeout(hard);
    if (!keep) rmSync(dir, { recursive: true, force: true });
    return child.exitCode;
  };
  onSpawn?.(stack);
  try {
    await waitFor(
      'the cluster stack',
      async () => output.includes('The stack is up in cluster mode'),
      timeoutMs,
      alive,
    );
  } catch (error) {
    const tail = output.split('\n').slice(-60).join('\n');
    await stack.stop();
    throw new Error(`${(error as Error).message}\n--- stack output (last lines) ---\n${tail}`, { cause: error });
  }
  return stack;
}
