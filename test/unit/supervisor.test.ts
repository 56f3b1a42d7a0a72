/**
 * The local stack's supervisor, with fake processes: what dies is started again after its backoff, a halted
 * or stopped supervisor starts nothing more (Ctrl-C reaches every child at once), and a restart whose
 * restore fails is stopped and tried again, never left running untracked.
 */
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { ManagedProcess } from '../../infra/processes';
import { supervise } from '../../infra/supervisor';

interface FakeProcess extends ManagedProcess {
  die(signal?: NodeJS.Signals): void;
  alive(): boolean;
}

function fakeProcess(pid: number): FakeProcess {
  const child = Object.assign(new EventEmitter(), { pid, exitCode: null, signalCode: null });
  let alive = true;
  const exit = (signal: NodeJS.Signals) => {
    if (!alive) return;
    alive = false;
    child.emit('exit', null, signal);
  };
  return {
    name: 'fake',
    child: child as unknown as ChildProcess,
    logFile: 'fake.log',
    stop: async () => exit('SIGTERM'),
    die: (signal = 'SIGKILL') => exit(signal),
    alive: () => alive,
  };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function launcher() {
  const started: FakeProcess[] = [];
  return {
    started,
    start: async () => {
      const process = fakeProcess(started.length + 1);
      started.push(process);
      return process;
    },
  };
}

describe('the local stack supervisor', () => {
  it('starts a process that died again, after its backoff, and logs the exit and the restart', async () => {
    const { started, start } = launcher();
    const lines: string[] = [];
    const supervised = await supervise({ name: 'worker', start, log: (line) => lines.push(line), initialDelayMs: 20 });
    started[0]!.die();
    await wait(60);
    expect(started.map((p) => p.alive())).toEqual([false, true]);
    expect(supervised.current()).toBe(started[1]);
    expect(lines).toEqual([
      'worker running (pid 1)',
      'worker exited (SIGKILL); restarting in 0.02 s (see fake.log)',
      'worker restarted (restart 1, pid 2)',
    ]);
    await supervised.stop();
    expect(started.map((p) => p.alive())).toEqual([false, false]);
  });

  it('starts nothing once halted, even when the process dies after the halt', async () => {
    const { started, start } = launcher();
    const supervised = await supervise({ name: 'moto', start, log: () => undefined, initialDelayMs: 20 });
    supervised.halt();
    started[0]!.die('SIGINT');
    await wait(60);
    expect(started).toHaveLength(1);
  });

  it('cancels a restart that is waiting for its backoff when stopped', async () => {
    const { started, start } = launcher();
    const supervised = await supervise({ name: 'api', start, log: () => undefined, initialDelayMs: 50 });
    started[0]!.die();
    await supervised.stop();
    await wait(100);
    expect(started).toHaveLength(1);
  });

  it('stops a restart whose restore failed, and tries again with a longer backoff', async () => {
    const { started, start } = launcher();
    const lines: string[] = [];
    let restores = 0;
    const supervised = await supervise({
      name: 'moto',
      start,
      log: (line) => lines.push(line),
      initialDelayMs: 20,
      restored: async () => {
        restores += 1;
        if (restores === 1) throw new Error('queues not created');
      },
    });
    started[0]!.die();
    await wait(150);
    expect(started.map((p) => p.alive())).toEqual([false, false, true]);
    expect(lines).toContain('moto did not come back: queues not created; trying again in 0.04 s');
    expect(lines.filter((line) => line.includes('restarting in'))).toHaveLength(1);
    await supervised.stop();
    expect(started.every((p) => !p.alive())).toBe(true);
  });
});
