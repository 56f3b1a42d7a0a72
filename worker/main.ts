/** Worker entry point. The SDK's runtime shuts the worker down gracefully on SIGINT/SIGTERM. */
import { createActivities } from '../activities';
import { createMeteringClient } from '../lib/aws';
import { loadServiceConfig } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { createWorker } from './create-worker';

async function main(): Promise<void> {
  const config = loadServiceConfig();
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-worker');
  await ensureIndexes(mongo.db);
  const metering = createMeteringClient(config.aws);
  const { worker, connection } = await createWorker({ temporal: config.temporal, activities: createActivities({ db: mongo.db, metering }) });
  console.log(`worker polling task queue "${config.temporal.taskQueue}" in namespace "${config.temporal.namespace}"`);
  try {
    await worker.run();
  } finally {
    metering.destroy();
    await connection.close();
    await mongo.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
