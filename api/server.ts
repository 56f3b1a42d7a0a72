/** API entry point: configuration, connections, listen, graceful shutdown. Nothing else. */
import { loadServiceConfig } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { onShutdown } from '../lib/shutdown';
import { connectClient } from '../lib/temporal';
import { buildApp } from './app';

async function main(): Promise<void> {
  const config = loadServiceConfig();
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-api');
  const temporal = await connectClient(config.temporal);
  const app = await buildApp({ db: mongo.db, temporal, logLevel: config.logLevel });
  app.addHook('onClose', async () => {
    await temporal.connection.close();
    await mongo.close();
  });
  await app.listen({ host: config.api.host, port: config.api.port });
  onShutdown(() => app.close());
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
