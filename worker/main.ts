/** Worker entry point. The SDK's runtime shuts the worker down gracefully on SIGINT/SIGTERM. */
import { createActivities } from '../activities';
import { loadServiceConfig } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { createWorker } from './create-worker';

async function main(): Promise<void> {
  const config = loadServiceConfig();
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-worker');
  const { worker, connection } = await createWorker({ temporal: config.temporal, activities: createActivities({ db: mongo.db }) });
  console.log(`worker polling task queue "${config.temporal.taskQueue}" in namespace "${config.temporal.namespace}"`);
  try {
    await worker.run();
  } finally {
    await connection.close();
    await mongo.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
