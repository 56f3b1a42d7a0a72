/**
 * The README's start command, for real: the stack comes up on its ports (moved to
 * free ones so it can't collide with a running stack), the Temporal UI and the
 * sandbox page answer, the API is ready, a process killed with SIGKILL (the
 * worker, moto) is started again, with moto's queues re-created, and SIGINT stops
 * every process it started.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { waitFor } from '../infra/processes';
import { freeStackPorts, stackPortsEnv } from '../infra/stack-ports';
import { supervisedPid } from '../infra/supervisor';
import { createSqsClient } from '../lib/aws';

const root = join(__dirname, '..');
const stackScript = join(root, 'dist', 'infra', 'stack.js');

describe('local stack (infra/start.sh)', () => {
  jest.setTimeout(300_000);

  it('starts everything, answers on its ports, restarts what dies, and stops everything on Ctrl-C', async () => {
    if (!existsSync(stackScript)) throw new Error('dist/ is missing: infra/test.sh builds before running the tests');
    const localDir = mkdtempSync(join(tmpdir(), 'stack-'));
    const ports = await freeStackPorts();
    const { temporal, ui, mongo, moto, sandbox, api } = ports;
    const [metrics] = ports.pollerMetrics as [number];
    const [workerMetrics] = ports.workerMetrics as [number];
    const env = {
      ...process.env,
      STACK_DIR: localDir,
      ...stackPortsEnv(ports),
      LOG_LEVEL: 'warn',
    };
    const child = spawn(join(root, 'node_modules', '.bin', 'node'), [stackScript], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that Ctrl-C can reach it as a terminal's does: every process of the group at once.
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(
        'the stack',
        async () => output.includes('The stack is up'),
        150_000,
        () => child.exitCode === null,
      );
      expect((await fetch(`http://127.0.0.1:${ui}/`)).status).toBe(200);
      const page = await fetch(`http://127.0.0.1:${sandbox}/`);
      expect(await page.text()).toContain('AWS Marketplace sandbox');
      const ready = await fetch(`http://127.0.0.1:${api}/ready`);
      expect(await ready.json()).toEqual({ status: 'ok', checks: { mongodb: 'ok', temporal: 'ok' } });
      expect(output).toContain(`http://localhost:${ui}`);
      // The poller is up, trusting the sandbox's signing certificate, and reports on its metrics port.
      const pollerMetrics = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
      expect(pollerMetrics).toContain('# TYPE marketplace_notifications_received_total counter');
      // The worker exports the Temporal SDK's metrics, which operators alert on (workflow task failures, overdue waits).
      const sdkMetrics = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
      expect(sdkMetrics).toMatch(/^temporal_\w+/m);
      const certificate = await fetch(`http://127.0.0.1:${sandbox}/sns/signing-certificate.pem`);
      expect(await certificate.text()).toContain('-----BEGIN CERTIFICATE-----');

      // kill -9 the worker, then moto: each is started again, the stack keeps running, nothing else restarts.
      const pidOf = (name: string) => Number(supervisedPid(output, name));
      for (const name of ['worker', 'moto']) {
        const pid = pidOf(name);
        expect(pid).toBeGreaterThan(0);
        process.kill(pid, 'SIGKILL');
        await waitFor(
          `${name} to be restarted`,
          async () => output.includes(`[stack] ${name} restarted (restart 1, pid `),
          90_000,
          () => child.exitCode === null,
        );
        expect(output).toContain(`[stack] ${name} exited (SIGKILL); restarting in 1 s`);
        expect(pidOf(name)).not.toBe(pid);
      }
      expect(output.match(/\[stack\] \w+ restarted/g)).toHaveLength(2);
      // The restarted moto has the stack's queue again, and the restarted worker polls (its readiness says so).
      const sqs = createSqsClient({ region: 'us-east-1', endpoints: { sqs: `http://127.0.0.1:${moto}` } });
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'marketplace-notifications' }));
      expect(QueueUrl).toContain('marketplace-notifications');
      sqs.destroy();
      expect(await (await fetch(`http://127.0.0.1:${api}/ready`)).json()).toEqual({
        status: 'ok',
        checks: { mongodb: 'ok', temporal: 'ok' },
      });
      expect(child.exitCode).toBeNull();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- stack output ---\n${output}`, { cause: error });
    } finally {
      // As Ctrl-C in a terminal: the stack and every child get SIGINT together, and none may come back meanwhile.
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      rmSync(localDir, { recursive: true, force: true });
    }
    for (const port of [temporal, mongo, moto, sandbox, api, metrics, workerMetrics]) {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    }
  });
});
