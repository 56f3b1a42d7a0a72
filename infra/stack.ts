/**
 * Starts the whole local stack on the embedded defaults (infra/local.env):
 * Temporal dev server with its UI, FerretDB, moto, the Marketplace sandbox, and
 * this service's API, worker and poller. Data lives in .local/data and survives
 * a restart (moto keeps its queues in memory; they are re-created at start, and
 * when moto itself is restarted). A process that dies is started again
 * (infra/supervisor.ts). "The stack is up" is printed once every process is
 * ready, the worker polling its task queue included. Ctrl-C stops everything it
 * started, in reverse order.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, stackDir } from './paths';
import { portOpen, startProcess } from './processes';
import { supervise, type Supervised } from './supervisor';
import { ensureLocalAwsResources, startFerretDb, startMoto, startTemporalDevServer } from './servers';
import { localEnvValues, stackServiceEnv } from './stack-env';

function loadLocalEnv(): Record<string, string> {
  return localEnvValues(readFileSync(join(repoRoot, 'infra', 'local.env'), 'utf8'), process.env);
}

const port = (address: string) => Number(address.split(':').pop());

/** The local stack's session key: generated once into the data folder, never committed. */
function localSessionKey(dataDir: string): string {
  const file = join(dataDir, 'session-signing-key');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

async function main(): Promise<void> {
  const env = loadLocalEnv();
  const dataDir = join(stackDir, 'data');
  const logDir = join(stackDir, 'logs');
  const running: Supervised[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the stack…');
    // Ctrl-C reaches every child at once: none may be restarted while the others are being stopped.
    for (const p of running) p.halt();
    for (const p of [...running].reverse()) await p.stop().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const mongoPort = Number(new URL(env.MONGODB_URI!).port || 27017);
  const log = (line: string) => !stopping && console.error(`[stack] ${line}`);
  try {
    for (const [name, p] of [
      ['Temporal', port(env.TEMPORAL_ADDRESS!)],
      ['Temporal UI', Number(env.TEMPORAL_UI_PORT)],
      ['FerretDB', mongoPort],
      ['moto', Number(env.MOTO_PORT)],
      ['sandbox', Number(env.SANDBOX_PORT)],
      ['API', Number(env.API_PORT)],
      ['poller metrics', Number(env.POLLER_METRICS_PORT)],
      ['worker metrics', Number(env.WORKER_METRICS_PORT)],
    ] as const) {
      if (await portOpen(p)) throw new Error(`port ${p} (${name}) is already in use: is another stack running?`);
    }
    const queues = () =>
      ensureLocalAwsResources({
        endpoint: env.AWS_ENDPOINT_URL_SQS!,
        region: env.AWS_REGION!,
        queueName: env.SQS_QUEUE_NAME!,
        productCode: env.SANDBOX_PRODUCT_CODE!,
      });
    // Each one kept as soon as it is up, so that a failure of another still stops it.
    const kept = (started: Promise<Supervised>) => started.then((process) => (running.push(process), process));
    await Promise.all([
      kept(
        supervise({
          name: 'temporal',
          log,
          start: () =>
            startTemporalDevServer({
              port: port(env.TEMPORAL_ADDRESS!),
              uiPort: Number(env.TEMPORAL_UI_PORT),
              dbFile: join(dataDir, 'temporal.sqlite'),
              namespace: env.TEMPORAL_NAMESPACE!,
              logDir,
            }),
        }),
      ),
      kept(
        supervise({
          name: 'ferretdb',
          log,
          start: () => startFerretDb({ port: mongoPort, dataDir: join(dataDir, 'ferretdb'), logDir }),
        }),
      ),
      // A restarted moto has lost its queues: they come back empty, at the same URLs.
      kept(
        supervise({
          name: 'moto',
          log,
          start: () => startMoto({ port: Number(env.MOTO_PORT), logDir }),
          restored: async () => void (await queues()),
        }),
      ),
    ]);
    const aws = await queues();
    const serviceEnv = stackServiceEnv({
      localEnv: env,
      environment: process.env,
      resources: aws,
      dataDir,
      sessionKey: () => localSessionKey(dataDir),
    });
    const node = join(repoRoot, 'node_modules', '.bin', 'node');
    const program = (name: string, script: string, ready: (pid: number) => Promise<boolean>, readyTimeoutMs?: number) =>
      supervise({
        name,
        log,
        start: () => {
          let pid = 0;
          return startProcess({
            name,
            command: node,
            args: [join(repoRoot, 'dist', script)],
            env: serviceEnv,
            logFile: join(logDir, `${name}.log`),
            echo: true,
            ready: () => ready(pid),
            readyTimeoutMs,
            onSpawn: (child) => (pid = child.pid ?? 0),
          });
        },
      });
    running.push(await program('sandbox', 'sandbox/server.js', () => portOpen(Number(env.SANDBOX_PORT))));
    const temporalAddress = env.TEMPORAL_ADDRESS!;
    const workerPolling = (pid: number) =>
      pollingAs(temporalAddress, env.TEMPORAL_NAMESPACE!, env.TEMPORAL_TASK_QUEUE!, pid);
    // Ready once Temporal sees this very process poll the task queue: its metrics port opens before its workers run.
    // Before it polls, a worker moves any legacy workflows: give it five minutes, not one.
    running.push(await program('worker', 'worker/main.js', workerPolling, 300_000));
    running.push(await program('poller', 'poller/main.js', () => portOpen(Number(env.POLLER_METRICS_PORT))));
    running.push(await program('api', 'api/server.js', () => portOpen(Number(env.API_PORT))));

    console.log(`
The stack is up (logs in ${logDir}, data in ${dataDir}):
  API            http://localhost:${env.API_PORT}        (index, /billing, /openapi.json, /health, /ready)
  Temporal UI    http://localhost:${env.TEMPORAL_UI_PORT}  (namespace "${env.TEMPORAL_NAMESPACE}")
  Sandbox        http://localhost:${env.SANDBOX_PORT}    (AWS Marketplace buyer page: click "Subscribe" to walk the journey)
  Sign in        alice@example.com / demo-password (see the README for the other demo accounts)
  Temporal gRPC  ${env.TEMPORAL_ADDRESS}   MongoDB ${env.MONGODB_URI}   SQS/SNS ${env.AWS_ENDPOINT_URL_SQS}
  Queue          ${serviceEnv.SQS_QUEUE_URL}   (dead letters: ${aws.deadLetterQueueUrl})
  Events queue   ${serviceEnv.SQS_EVENTBRIDGE_QUEUE_URL}   (dead letters: ${aws.eventBridgeDeadLetterQueueUrl})
  Poller metrics http://localhost:${env.POLLER_METRICS_PORT}/metrics
  Worker metrics http://localhost:${env.WORKER_METRICS_PORT}/metrics
Press Ctrl-C to stop everything.`);
  } catch (error) {
    console.error(`could not start the stack: ${(error as Error).message}`);
    await stopAll(1);
  }
}

/** Whether the worker with this pid polls the task queue for workflow tasks, by its default identity `<pid>@<host>`. */
async function pollingAs(address: string, namespace: string, taskQueue: string, pid: number): Promise<boolean> {
  if (!pid) return false;
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    // A server that accepts the connection and then stalls must not stall the stack's start.
    const { pollers } = await connection.withDeadline(Date.now() + 2000, () =>
      connection.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    return (pollers ?? []).some((poller) => poller.identity === `${pid}@${hostname()}`);
  } finally {
    await connection.close();
  }
}

if (!existsSync(join(repoRoot, 'dist'))) {
  console.error('dist/ is missing: run infra/start.sh, which builds first');
  process.exit(1);
}
void main();
