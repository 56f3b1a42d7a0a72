/**
 * Issue 12, point 9: unsafe production settings. With real AWS endpoints or an
 * https public URL, the api, the worker and the poller refuse to start with a
 * setting that is only safe locally, and name every one of them; the local
 * stack's settings (infra/local.env) still start all three. The guard's
 * rules themselves are unit-tested in test/unit/security/.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureLocalAwsResources } from '../../infra/servers';
import { freePort, portOpen, startProcess, type ManagedProcess } from '../../infra/processes';
import { localEnvValues, stackServiceEnv } from '../../infra/stack-env';
import type { ServiceRole } from '../../lib/production-guard';
import { TEST_ENV, testServers, uniqueName } from '../helpers/test-env';
import {
  LOCAL_ENDPOINTS as local,
  STRONG_KEY,
  UNSAFE_NAMES,
  UNSAFE_ON_REAL_AWS,
} from '../fixtures/production-settings';

const root = join(__dirname, '..', '..');
const node = join(root, 'node_modules', '.bin', 'node');
const scripts: Record<ServiceRole, string> = {
  api: 'api/server.js',
  worker: 'worker/main.js',
  poller: 'poller/main.js',
};

/** Runs a built program to its exit (it must exit on its own) and returns its exit code and output. */
function runToExit(
  role: ServiceRole,
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; output: string }> {
  const script = join(root, 'dist', scripts[role]);
  if (!existsSync(script))
    throw new Error(`dist/${scripts[role]} is missing: run \`npm run build\` (infra/test.sh does)`);
  return new Promise((resolve, reject) => {
    // Only what is given: no test-server variables leak in, and nothing reaches AWS before the guard.
    const child = spawn(node, [script], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} did not exit within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('issue 12 point 9: production guard (the real processes)', () => {
  jest.setTimeout(120_000);
  // Nothing listens here: a process that got past the guard would fail on the store instead, without the names.
  const unreachableStore = {
    MONGODB_URI: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500',
    TEMPORAL_ADDRESS: '127.0.0.1:9',
  };

  it.each(['api', 'worker', 'poller'] as const)(
    '%s refuses to start with unsafe settings against real AWS, naming each',
    async (role) => {
      const { code, output } = await runToExit(role, { ...UNSAFE_ON_REAL_AWS, ...unreachableStore });
      expect(code).not.toBe(0);
      const expected = role === 'api' ? [...UNSAFE_NAMES, 'PUBLIC_BASE_URL'] : UNSAFE_NAMES;
      for (const name of expected) expect(output).toContain(name);
      expect(output).not.toContain('changeme');
    },
  );

  it('the api refuses demo accounts behind an https URL even with local AWS endpoints', async () => {
    const { code, output } = await runToExit('api', {
      ...local,
      ...unreachableStore,
      PUBLIC_BASE_URL: 'https://billing.example.com',
      DEMO_ACCOUNTS: 'true',
      SESSION_SIGNING_KEY: STRONG_KEY,
    });
    expect(code).not.toBe(0);
    expect(output).toMatch(/PUBLIC_BASE_URL is https/);
    expect(output).toContain('DEMO_ACCOUNTS');
  });

  describe("the local stack's settings (infra/local.env)", () => {
    const running: ManagedProcess[] = [];
    afterAll(async () => {
      for (const p of running.reverse()) await p.stop();
    });

    it('still start the api, the worker and the poller', async () => {
      const [apiPort, pollerMetrics, workerMetrics, sandboxPort] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
        freePort(),
      ]);
      const temporal = testServers.temporal(uniqueName('guard'));
      // The file as the stack reads it, pointed at this run's servers the way the local-stack test does.
      const fileEnv = localEnvValues(readFileSync(join(root, 'infra', 'local.env'), 'utf8'), {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        TEMPORAL_TASK_QUEUE: temporal.taskQueue,
        MONGODB_URI: testServers.mongoUri(),
        MONGODB_DATABASE: uniqueName('guard'),
        AWS_ENDPOINT_URL_SQS: testServers.awsEndpoint(),
        AWS_ENDPOINT_URL_SNS: testServers.awsEndpoint(),
        SANDBOX_PORT: String(sandboxPort),
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: `http://127.0.0.1:${sandboxPort}`,
        API_PORT: String(apiPort),
        POLLER_METRICS_PORT: String(pollerMetrics),
        WORKER_METRICS_PORT: String(workerMetrics),
        SQS_QUEUE_NAME: uniqueName('guard-queue'),
      });
      expect(fileEnv.DEMO_ACCOUNTS).toBe('true');
      const resources = await ensureLocalAwsResources({
        endpoint: fileEnv.AWS_ENDPOINT_URL_SQS!,
        region: fileEnv.AWS_REGION!,
        queueName: fileEnv.SQS_QUEUE_NAME!,
        productCode: fileEnv.SANDBOX_PRODUCT_CODE!,
      });
      const env = {
        ...stackServiceEnv({
          localEnv: fileEnv,
          environment: {},
          resources,
          dataDir: join(process.env[TEST_ENV.runDir]!, 'guard'),
          sessionKey: () => STRONG_KEY,
        }),
        // Schedules are namespace-wide: this run must not replace the ones other tests create.
        METERING_SCHEDULE: 'false',
        RETENTION_SCHEDULE: 'false',
        LOG_LEVEL: 'warn',
      };
      const logDir = join(process.env[TEST_ENV.runDir]!, 'logs');
      const start = (role: ServiceRole, ready: () => Promise<boolean>) =>
        startProcess({
          name: `guard-${role}`,
          command: node,
          args: [join(root, 'dist', scripts[role])],
          env,
          logFile: join(logDir, `guard-${role}.log`),
          ready,
          readyTimeoutMs: 60_000,
        });
      running.push(await start('worker', () => portOpen(workerMetrics)));
      running.push(await start('poller', () => portOpen(pollerMetrics)));
      running.push(await start('api', () => portOpen(apiPort)));
      const ready = await fetch(`http://127.0.0.1:${apiPort}/ready`);
      expect(await ready.json()).toEqual({ status: 'ok', checks: { mongodb: 'ok', temporal: 'ok' } });
      for (const p of running) expect(p.child.exitCode).toBeNull();
    });
  });
});
