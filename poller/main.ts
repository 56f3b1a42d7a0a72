/** Notification poller entry point: SQS → store + Temporal. SIGINT/SIGTERM finish the batch in flight, then exit. */
import { createSqsClient } from '../lib/aws';
import { loadServiceConfig, requireQueueUrl } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { connectClient } from '../lib/temporal';
import { createHandOff } from './hand-off';
import { SqsNotificationPoller } from './sqs-poller';

/** One JSON line per event; errors are reduced to their message. */
function consoleLog(level: 'info' | 'warn' | 'error') {
  return (fields: object, msg: string) => {
    const { err, ...rest } = fields as { err?: unknown };
    const error = err === undefined ? {} : { error: err instanceof Error ? err.message : String(err) };
    console[level](JSON.stringify({ level, time: new Date().toISOString(), msg, ...rest, ...error }));
  };
}

async function main(): Promise<void> {
  const config = loadServiceConfig();
  const queueUrl = requireQueueUrl(config);
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-poller');
  await ensureIndexes(mongo.db);
  const temporal = await connectClient(config.temporal);
  const sqs = createSqsClient(config.aws);
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());

  const poller = new SqsNotificationPoller({
    sqs,
    queueUrl,
    waitTimeSeconds: config.sqs.waitTimeSeconds,
    maxMessages: config.sqs.maxMessages,
    handOff: createHandOff({
      db: mongo.db,
      workflows: { temporal, taskQueue: config.temporal.taskQueue, syncTimeoutMs: config.linking.syncTimeoutMs },
      cancellations: { temporal, taskQueue: config.temporal.taskQueue, gracePeriodMs: config.cancellation.gracePeriodMs },
    }),
    log: { info: consoleLog('info'), warn: consoleLog('warn'), error: consoleLog('error') },
  });
  console.log(`poller reading ${queueUrl}`);
  try {
    await poller.run(stop.signal);
  } finally {
    sqs.destroy();
    await temporal.connection.close();
    await mongo.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
