/** Worker entry point. The SDK's runtime shuts the worker down gracefully on SIGINT/SIGTERM. */
import { Runtime } from '@temporalio/worker';
import { createActivities } from '../activities';
import { httpDeploymentControl } from '../activities/subscription/deployment-control';
import { createMeteringClient, createUsageMeteringClient } from '../lib/aws';
import { createLogger, exitWithError } from '../lib/logger';
import { connectMongo } from '../lib/mongo';
import { enforceProductionGuard } from '../lib/production-guard';
import { ensureIndexes } from '../lib/store/indexes';
import { ensureRetentionIndexes, retentionRules } from '../lib/store/retention';
import { startTracing } from '../lib/telemetry/tracing';
import { connectClient } from '../lib/temporal';
import { loadWorkerConfig } from './config';
import { createWorker } from './create-worker';
import { meteringCallsTaskQueue } from '../domain/task-queues';
import { runtimeLogging } from './logging';
import { prebuiltWorkflowBundle, workflowBundleKind } from './workflow-bundle';
import { ensureMeteringSchedule } from './metering-schedule';
import { ensureRetentionSchedule } from './retention-schedule';
import { registerWorkflowCounters } from './workflow-metrics';
import { migrateLegacyWorkflows } from '../infra/migrate-legacy-workflows';

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  const log = createLogger('worker', config.logLevel);
  enforceProductionGuard(process.env, 'worker', (line) => log.warn(line));
  // SDK metrics (workflow task failures, schedule-to-start latency, …) and the workflows' own counters, for alerts.
  const { host, port } = config.workerMetrics;
  const { logger, logging } = runtimeLogging(log, config.logLevel);
  Runtime.install({
    logger,
    telemetryOptions: { logging, ...(port ? { metrics: { prometheus: { bindAddress: `${host}:${port}` } } } : {}) },
  });
  if (port) registerWorkflowCounters(Runtime.instance().metricMeter, config.temporal);
  const tracing = await startTracing(config.tracing, 'marketplace-worker');
  // Before the store or Temporal is touched: a missing or stale bundle is a broken build.
  const workflowBundle = prebuiltWorkflowBundle(workflowBundleKind(tracing !== undefined));
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-worker');
  await ensureIndexes(mongo.db);
  const client = await connectClient(config.temporal, tracing?.temporalClient);
  if (config.metering.schedule.enabled) {
    const outcome = await ensureMeteringSchedule(
      client,
      config.temporal.taskQueue,
      config.metering.schedule.offsetMinutes,
    );
    log.info({ outcome }, `hourly metering schedule ${outcome}`);
  }
  const enforcement = await ensureRetentionIndexes(mongo.db, retentionRules(config.retention));
  log.info(
    { enforcement },
    `retention enforced by ${enforcement === 'ttl-indexes' ? "the store's TTL indexes and the schedule" : 'the schedule (the store has no TTL indexes)'}`,
  );
  if (config.retention.schedule) {
    const outcome = await ensureRetentionSchedule(client, config.temporal.taskQueue);
    log.info({ outcome }, `store retention schedule ${outcome}`);
  }
  // Runs of the replaced workflows are moved now, and every minute while an old poller may still start them.
  const migrate = async () => {
    const moved = await migrateLegacyWorkflows({
      temporal: client,
      db: mongo.db,
      taskQueue: config.temporal.taskQueue,
      settings: { syncTimeoutMs: config.linking.syncTimeoutMs, gracePeriodMs: config.cancellation.gracePeriodMs },
    });
    for (const line of moved) log.info(`legacy workflow ${line}`);
  };
  await migrate();
  const migration = setInterval(
    () => void migrate().catch((error: unknown) => log.error({ err: error }, 'moving legacy workflows failed')),
    60_000,
  );
  const metering = createMeteringClient(config.aws);
  const usageMetering = createUsageMeteringClient(config.aws);
  const activities = createActivities({
    db: mongo.db,
    metering,
    usageMetering,
    meteringConfig: config.metering,
    retention: config.retention,
    ...(config.deploymentsApi.url
      ? { deployments: httpDeploymentControl(config.deploymentsApi.url, config.deploymentsApi.token) }
      : {}),
  });
  const workerTracing = tracing?.temporalWorker();
  const workers = await createWorker({
    temporal: config.temporal,
    activities,
    meteringCalls: config.metering,
    tracing: workerTracing,
    workflowBundle,
    maxCachedWorkflows: config.maxCachedWorkflows,
  });
  log.info(
    {
      taskQueue: config.temporal.taskQueue,
      meteringCallsTaskQueue: meteringCallsTaskQueue(config.temporal.taskQueue),
      namespace: config.temporal.namespace,
    },
    'worker polling',
  );
  try {
    await workers.run();
  } finally {
    clearInterval(migration);
    await client.connection.close();
    metering.destroy();
    usageMetering.destroy();
    await workers.connection.close();
    await mongo.close();
    await tracing?.shutdown();
  }
}

main().catch(exitWithError('worker'));
