/**
 * Starts the whole local stack on the embedded defaults (infra/local.env):
 * Temporal dev server with its UI, FerretDB, moto, the Marketplace sandbox, and
 * this service's API, worker and poller. Data lives in .local/data and survives
 * a restart (moto keeps its queues in memory; they are re-created at start, and
 * when moto itself is restarted). A process that dies is started again
 * (infra/supervisor.ts). "The stack is up" is printed once every process is
 * ready, every worker polling its task queue included. Ctrl-C stops everything
 * it started, in reverse order.
 *
 * With `--cluster`, it is shaped as production runs: the Temporal server on
 * PostgreSQL with its UI (infra/cluster-servers.ts) instead of the dev server,
 * and two replicas of the API (behind infra/load-balancer.ts on API_PORT), the
 * worker and the poller.
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
import {
  registerNamespace,
  setupTemporalSchema,
  startPostgres,
  startTemporalServer,
  startTemporalUi,
  temporalServerPorts,
  type PostgresSettings,
} from './cluster-servers';
import { localEnvValues, stackServiceEnv } from './stack-env';
import { apiEnvSchema } from '../api/config';

function loadLocalEnv(): Record<string, string> {
  return localEnvValues(readFileSync(join(repoRoot, 'infra', 'local.env'), 'utf8'), process.env);
}

const port = (address: string) => Number(address.split(':').pop());

/** A secret of the local stack (its session key, its PostgreSQL password): generated once into the data folder, never committed. */
function localSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

const portList = (value: string | undefined) => (value ?? '').split(',').filter(Boolean).map(Number);

/**
 * Each API replica's share of the limits the API applies in its own process (api/config.ts): the balancer
 * spreads a client's requests, and every buyer's ResolveCustomer call, over the replicas, so that the
 * cluster as a whole keeps the limits that are set (or their defaults), as the README advises operators.
 */
function perReplica(replicas: number, values: Record<string, string | undefined>): Record<string, string> {
  const limits = {
    RESOLVE_CUSTOMER_MAX_PER_SECOND: false,
    RATE_LIMIT_REGISTRATION_PER_MINUTE: true,
    RATE_LIMIT_SIGN_IN_PER_MINUTE: true,
    RATE_LIMIT_LINKS_PER_MINUTE: true,
  } as const;
  return Object.fromEntries(
    Object.entries(limits).map(([name, integer]) => {
      const whole = Number(values[name] || apiEnvSchema.properties[name as keyof typeof limits].default);
      const share = whole / replicas;
      return [name, String(integer ? Math.max(1, Math.ceil(share)) : share)];
    }),
  );
}

async function main(): Promise<void> {
  const cluster = process.argv.includes('--cluster');
  const env = loadLocalEnv();
  // Apart from the local mode's: the store's subscriptions belong with the workflows of the same Temporal.
  const dataDir = join(stackDir, cluster ? 'data-cluster' : 'data');
  const logDir = join(stackDir, cluster ? 'logs-cluster' : 'logs');
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
  // A closed terminal: PostgreSQL would take SIGHUP as "reload its settings" and outlive the stack.
  process.on('SIGHUP', () => void stopAll(0));

  const mongoPort = Number(new URL(env.MONGODB_URI!).port || 27017);
  const replicaPorts = {
    api: portList(env.CLUSTER_API_PORTS),
    worker: portList(env.CLUSTER_WORKER_METRICS_PORTS),
    poller: portList(env.CLUSTER_POLLER_METRICS_PORTS),
  };
  const log = (line: string) => !stopping && console.error(`[stack] ${line}`);
  try {
    const ports: [string, number][] = [
      ['Temporal', port(env.TEMPORAL_ADDRESS!)],
      ['Temporal UI', Number(env.TEMPORAL_UI_PORT)],
      ['FerretDB', mongoPort],
      ['moto', Number(env.MOTO_PORT)],
      ['sandbox', Number(env.SANDBOX_PORT)],
      ['API', Number(env.API_PORT)],
      ...(cluster
        ? ([
            ['PostgreSQL', Number(env.POSTGRES_PORT)],
            ...replicaPorts.api.map((p, i): [string, number] => [`API replica ${i + 1}`, p]),
            ...replicaPorts.worker.map((p, i): [string, number] => [`worker ${i + 1} metrics`, p]),
            ...replicaPorts.poller.map((p, i): [string, number] => [`poller ${i + 1} metrics`, p]),
          ] as [string, number][])
        : ([
            ['poller metrics', Number(env.POLLER_METRICS_PORT)],
            ['worker metrics', Number(env.WORKER_METRICS_PORT)],
          ] as [string, number][])),
    ];
    for (const [name, p] of ports) {
      if (!(Number.isInteger(p) && p > 0)) throw new Error(`${name}: no port set (infra/local.env)`);
      if (await portOpen(p))
        throw new Error(
          `port ${p} (${name}) is already in use: is another stack running?${
            name === 'PostgreSQL'
              ? ` A PostgreSQL left running stops with: pg_ctl -D ${join(dataDir, 'postgresql')} stop -m fast`
              : ''
          }`,
        );
    }
    if (cluster && Object.values(replicaPorts).some((list) => list.length < 2))
      throw new Error(
        'CLUSTER_API_PORTS, CLUSTER_WORKER_METRICS_PORTS, CLUSTER_POLLER_METRICS_PORTS: two ports or more each',
      );
    const queues = () =>
      ensureLocalAwsResources({
        endpoint: env.AWS_ENDPOINT_URL_SQS!,
        region: env.AWS_REGION!,
        queueName: env.SQS_QUEUE_NAME!,
        productCode: env.SANDBOX_PRODUCT_CODE!,
      });
    // Each one kept as soon as it is up, so that a failure of another still stops it.
    const kept = (started: Promise<Supervised>) => started.then((process) => (running.push(process), process));
    const postgres: PostgresSettings = {
      port: Number(env.POSTGRES_PORT),
      user: 'temporal',
      // Fixed when the data folder is made: a different one later is refused ("password authentication failed").
      get password() {
        return process.env.POSTGRES_PASSWORD || localSecret(dataDir, 'postgres-password');
      },
    };
    const temporalAddress = env.TEMPORAL_ADDRESS!;
    const clusterTemporal = async () => {
      await kept(
        supervise({
          name: 'postgresql',
          log,
          start: () => startPostgres({ ...postgres, dataDir: join(dataDir, 'postgresql'), logDir }),
        }),
      );
      await setupTemporalSchema(postgres);
      const serverPorts = await temporalServerPorts(
        port(temporalAddress),
        join(dataDir, 'temporal-ports.json'),
        ports.map(([, p]) => p),
      );
      await kept(
        supervise({
          name: 'temporal',
          log,
          start: () => startTemporalServer({ ports: serverPorts, postgres, logDir }),
        }),
      );
      await registerNamespace(temporalAddress, env.TEMPORAL_NAMESPACE!);
      await kept(
        supervise({
          name: 'temporal-ui',
          log,
          start: () =>
            startTemporalUi({
              port: Number(env.TEMPORAL_UI_PORT),
              temporalAddress,
              namespace: env.TEMPORAL_NAMESPACE!,
              configDir: join(dataDir, 'temporal-ui'),
              logDir,
            }),
        }),
      );
    };
    const devServer = () =>
      kept(
        supervise({
          name: 'temporal',
          log,
          start: () =>
            startTemporalDevServer({
              port: port(temporalAddress),
              uiPort: Number(env.TEMPORAL_UI_PORT),
              dbFile: join(dataDir, 'temporal.sqlite'),
              namespace: env.TEMPORAL_NAMESPACE!,
              logDir,
            }),
        }),
      );
    await Promise.all([
      cluster ? clusterTemporal() : devServer(),
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
      sessionKey: () => localSecret(dataDir, 'session-signing-key'),
    });
    const node = join(repoRoot, 'node_modules', '.bin', 'node');
    const program = (
      name: string,
      script: string,
      ready: (pid: number) => Promise<boolean>,
      // `ownEnv`: only its own variables (and the operator's environment), not the services' settings and secrets.
      options: { env?: Record<string, string>; readyTimeoutMs?: number; ownEnv?: boolean } = {},
    ) =>
      kept(
        supervise({
          name,
          log,
          start: () => {
            let pid = 0;
            return startProcess({
              name,
              command: node,
              args: [join(repoRoot, 'dist', script)],
              env: options.ownEnv ? { LOG_LEVEL: env.LOG_LEVEL!, ...options.env } : { ...serviceEnv, ...options.env },
              logFile: join(logDir, `${name}.log`),
              echo: true,
              ready: () => ready(pid),
              readyTimeoutMs: options.readyTimeoutMs,
              onSpawn: (child) => (pid = child.pid ?? 0),
            });
          },
        }),
      );
    await program('sandbox', 'sandbox/server.js', () => portOpen(Number(env.SANDBOX_PORT)));
    // Ready once Temporal sees this very process poll the task queue: its metrics port opens before its workers run.
    // Before it polls, a worker moves any legacy workflows: give it five minutes, not one.
    const workerPolling = (pid: number) =>
      pollingAs(temporalAddress, env.TEMPORAL_NAMESPACE!, env.TEMPORAL_TASK_QUEUE!, pid);
    const worker = { readyTimeoutMs: 300_000 };
    const publicBaseUrl = process.env.PUBLIC_BASE_URL || `http://localhost:${env.API_PORT}`;
    if (cluster) {
      for (const [i, p] of replicaPorts.worker.entries())
        await program(`worker-${i + 1}`, 'worker/main.js', workerPolling, {
          ...worker,
          env: { WORKER_METRICS_PORT: String(p) },
        });
      for (const [i, p] of replicaPorts.poller.entries())
        await program(`poller-${i + 1}`, 'poller/main.js', () => portOpen(p), {
          env: { POLLER_METRICS_PORT: String(p) },
        });
      for (const [i, p] of replicaPorts.api.entries())
        await program(`api-${i + 1}`, 'api/server.js', () => portOpen(p), {
          // Behind the load balancer: the public address is its, and the client is the one it forwards for.
          env: {
            API_PORT: String(p),
            PUBLIC_BASE_URL: publicBaseUrl,
            TRUST_PROXY: process.env.TRUST_PROXY || '1',
            ...perReplica(replicaPorts.api.length, { ...serviceEnv, ...process.env }),
          },
        });
      await program('load-balancer', 'infra/load-balancer.js', () => portOpen(Number(env.API_PORT)), {
        ownEnv: true,
        env: {
          LB_HOST: env.API_HOST!,
          LB_PORT: env.API_PORT!,
          LB_UPSTREAMS: replicaPorts.api.map((p) => `http://127.0.0.1:${p}`).join(','),
        },
      });
    } else {
      await program('worker', 'worker/main.js', workerPolling, worker);
      await program('poller', 'poller/main.js', () => portOpen(Number(env.POLLER_METRICS_PORT)));
      await program('api', 'api/server.js', () => portOpen(Number(env.API_PORT)));
    }

    const metrics = (ports: number[]) => ports.map((p) => `http://localhost:${p}/metrics`).join('  ');
    console.log(`
The stack is up${cluster ? ' in cluster mode' : ''} (logs in ${logDir}, data in ${dataDir}):
  API            http://localhost:${env.API_PORT}        (index, /billing, /openapi.json, /health, /ready)${
    cluster
      ? `\n  API replicas   ${replicaPorts.api.map((p) => `http://localhost:${p}`).join('  ')}  (behind the load balancer)`
      : ''
  }
  Temporal UI    http://localhost:${env.TEMPORAL_UI_PORT}  (namespace "${env.TEMPORAL_NAMESPACE}")
  Sandbox        http://localhost:${env.SANDBOX_PORT}    (AWS Marketplace buyer page: click "Subscribe" to walk the journey)
  Sign in        alice@example.com / demo-password (see the README for the other demo accounts)
  Temporal gRPC  ${temporalAddress}${cluster ? ` (server on PostgreSQL 127.0.0.1:${env.POSTGRES_PORT})` : ''}   MongoDB ${env.MONGODB_URI}   SQS/SNS ${env.AWS_ENDPOINT_URL_SQS}
  Queue          ${serviceEnv.SQS_QUEUE_URL}   (dead letters: ${aws.deadLetterQueueUrl})
  Events queue   ${serviceEnv.SQS_EVENTBRIDGE_QUEUE_URL}   (dead letters: ${aws.eventBridgeDeadLetterQueueUrl})
  Poller metrics ${metrics(cluster ? replicaPorts.poller : [Number(env.POLLER_METRICS_PORT)])}
  Worker metrics ${metrics(cluster ? replicaPorts.worker : [Number(env.WORKER_METRICS_PORT)])}
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
