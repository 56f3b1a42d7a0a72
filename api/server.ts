/** API entry point: configuration, connections, listen, graceful shutdown. Nothing else. */
import { createMarketplaceActivities } from '../activities/marketplace';
import { createMeteringClient } from '../lib/aws';
import { createLogger, exitWithError } from '../lib/logger';
import { connectMongo } from '../lib/mongo';
import { enforceProductionGuard } from '../lib/production-guard';
import { onShutdown } from '../lib/shutdown';
import { seedDemoAccounts } from '../lib/store/demo-accounts';
import { seedUsage } from '../lib/store/usage-generator';
import { ensureIndexes } from '../lib/store/indexes';
import { startTracing } from '../lib/telemetry/tracing';
import { connectClient } from '../lib/temporal';
import { apiSettings, buildApp } from './app';
import { loadApiConfig, requireApiConfig } from './config';

async function main(): Promise<void> {
  const config = loadApiConfig();
  const tracing = await startTracing(config.tracing, 'marketplace-api', { http: true });
  // Until Fastify's logger exists; both write the same JSON lines.
  const log = createLogger('api', config.logLevel);
  enforceProductionGuard(process.env, 'api', (line) => log.warn(line));
  const signingKeys = requireApiConfig(config);
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-api');
  await ensureIndexes(mongo.db);
  let usageTimer: NodeJS.Timeout | undefined;
  if (config.demoAccounts) {
    await seedDemoAccounts(mongo.db);
    // The demo platform "records" usage: the last 6 hours now, and each new hour as it starts.
    await seedUsage(mongo.db, 6);
    usageTimer = setInterval(
      () =>
        void seedUsage(mongo.db, 1).catch((error: unknown) => log.error({ err: error }, 'recording demo usage failed')),
      10 * 60_000,
    );
  }
  const temporal = await connectClient(config.temporal, tracing?.temporalClient);
  const metering = createMeteringClient(config.aws);
  const { resolveCustomer } = createMarketplaceActivities({ metering });
  const app = await buildApp({
    db: mongo.db,
    temporal,
    resolveCustomer,
    settings: apiSettings(config, signingKeys),
    logLevel: config.logLevel,
  });
  app.addHook('onClose', async () => {
    clearInterval(usageTimer);
    metering.destroy();
    await temporal.connection.close();
    await mongo.close();
    await tracing?.shutdown();
  });
  await app.listen({ host: config.api.host, port: config.api.port });
  onShutdown(() => app.close(), app.log);
}

main().catch(exitWithError('api'));
