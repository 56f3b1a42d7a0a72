/** Worker entry point. The SDK's runtime shuts the worker down gracefully on SIGINT/SIGTERM. */
import { Runtime } from '@temporalio/worker';
import { createActivities } from '../activities';
import { httpDeploymentControl } from '../activities/deployment-control';
import { createMeteringClient, createUsageMeteringClient } from '../lib/aws';
import { loadServiceConfig } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { enforceProductionGuard } from '../lib/production-guard';
import { ensureIndexes } from '../lib/store/indexes';
import { ensureRetentionIndexes, retentionRules } from '../lib/store/retention';
import { connectClient } from '../lib/temporal';
import { createWorker } from './create-worker';
import { ensureMeteringSchedule } from './metering-schedule';
import { ensureRetentionSchedule } from './retention-schedule';
import { migrateLegacyWorkflows } from '../infra/migrate-legacy-workflows';

async function main(): Promise<void> {
  const config = loadServiceConfig();
  enforceProductionGuard(process.env, 'worker');
  // SDK metrics (workflow task failures, schedule-to-start latency, …) and the workflows' own counters, for alerts.
  const { host, port } = config.workerMetrics;
  if (port) Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${port}` } } } });
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-worker');
  await ensureIndexes(mongo.db);
  const client = await connectClient(config.temporal);
  if (config.metering.schedule.enabled) {
    const outcome = await ensureMeteringSchedule(client, config.temporal.taskQueue, config.metering.schedule.offsetMinutes);
    console.log(`hourly metering schedule ${outcome}`);
  }
  const enforcement = await ensureRetentionIndexes(mongo.db, retentionRules(config.retention));
  console.log(`retention enforced by ${enforcement === 'ttl-indexes' ? "the store's TTL indexes and the schedule" : 'the schedule (the store has no TTL indexes)'}`);
  if (config.retention.schedule) console.log(`store retention schedule ${await ensureRetentionSchedule(client, config.temporal.taskQueue)}`);
  // Runs of the replaced workflows are moved now, and every minute while an old poller may still start them.
  const migrate = async () => {
    const moved = await migrateLegacyWorkflows({
      temporal: client,
      db: mongo.db,
      taskQueue: config.temporal.taskQueue,
      settings: { syncTimeoutMs: config.linking.syncTimeoutMs, gracePeriodMs: config.cancellation.gracePeriodMs },
    });
    for (const line of moved) console.log(`legacy workflow ${line}`);
  };
  await migrate();
  const migration = setInterval(() => void migrate().catch((error: unknown) => console.error(`moving legacy workflows failed: ${(error as Error).message}`)), 60_000);
  const metering = createMeteringClient(config.aws);
  const usageMetering = createUsageMeteringClient(config.aws);
  const { worker, connection } = await createWorker({
    temporal: config.temporal,
    activities: createActivities({
      db: mongo.db,
      metering,
      usageMetering,
      meteringConfig: config.metering,
      retention: config.retention,
      ...(config.deploymentsApi.url ? { deployments: httpDeploymentControl(config.deploymentsApi.url, config.deploymentsApi.token) } : {}),
    }),
  });
  console.log(`worker polling task queue "${config.temporal.taskQueue}" in namespace "${config.temporal.namespace}"`);
  try {
    await worker.run();
  } finally {
    clearInterval(migration);
    await client.connection.close();
    metering.destroy();
    usageMetering.destroy();
    await connection.close();
    await mongo.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
