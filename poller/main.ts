/**
 * Notification poller entry point: SQS → store + Temporal, with metrics on
 * POLLER_METRICS_PORT. SIGTERM/SIGINT stop receiving, finish the messages in
 * flight (up to POLLER_SHUTDOWN_TIMEOUT_SECONDS) and exit.
 */
import { createSqsClient } from '../lib/aws';
import { createLogger, exitWithError } from '../lib/logger';
import { connectMongo } from '../lib/mongo';
import { enforceProductionGuard } from '../lib/production-guard';
import { ensureIndexes } from '../lib/store/indexes';
import { startTracing } from '../lib/telemetry/tracing';
import { connectClient } from '../lib/temporal';
import { loadPollerConfig, requireQueues } from './config';
import { createNotificationPoller } from './create-poller';
import { createPollerMetrics } from './metrics';
import { startMetricsServer } from './metrics-server';

async function main(): Promise<void> {
  const config = loadPollerConfig();
  const log = createLogger('poller', config.logLevel);
  enforceProductionGuard(process.env, 'poller', (line) => log.warn(line));
  const queues = requireQueues(config);
  const tracing = await startTracing(config.tracing, 'marketplace-poller');
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'stopping: no new messages; finishing the ones in flight');
      stop.abort();
    });
  }
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-poller');
  await ensureIndexes(mongo.db);
  const temporal = await connectClient(config.temporal, tracing?.temporalClient);
  const sqs = createSqsClient(config.aws);
  const metrics = createPollerMetrics({ processMetrics: true });
  const metricsServer = await startMetricsServer(metrics.registry, config.poller.metrics);
  // One poller per queue, each trusting only the formats its queue may carry; they share the process's connections and metrics.
  const pollers = await Promise.all(
    queues.map((queue) =>
      createNotificationPoller({
        sqs,
        db: mongo.db,
        temporal,
        queueUrl: queue.url,
        formats: queue.formats,
        deadLetterQueueUrl: queue.deadLetterQueueUrl,
        taskQueue: config.temporal.taskQueue,
        syncTimeoutMs: config.linking.syncTimeoutMs,
        gracePeriodMs: config.cancellation.gracePeriodMs,
        poller: config.poller,
        waitTimeSeconds: config.sqs.waitTimeSeconds,
        batchSize: config.sqs.maxMessages,
        log,
        metrics,
        traceMessage: tracing?.traceMessage,
      }),
    ),
  );
  if (config.poller.topicArns.length === 0 && queues.some((queue) => queue.formats.includes('sns'))) {
    log.warn({}, 'SNS_TOPIC_ARN is not set: every SNS envelope will be dead-lettered');
  }
  if (!config.poller.verifySignatures)
    log.warn({}, 'SNS_VERIFY_SIGNATURES=false: SNS envelopes are trusted without checking their signature');
  for (const [i, { queue }] of pollers.entries()) {
    log.info(
      { queueUrl: queues[i]!.url, formats: queues[i]!.formats, deadLetterQueueUrl: queue.deadLetterQueueUrl },
      'polling',
    );
  }
  log.info({ metrics: `${metricsServer.url}/metrics` }, 'poller started');
  try {
    await Promise.all(pollers.map(({ poller }) => poller.run(stop.signal)));
  } finally {
    await metricsServer.close();
    sqs.destroy();
    await temporal.connection.close();
    await mongo.close();
    await tracing?.shutdown();
  }
  log.info('poller stopped');
}

main().catch(exitWithError('poller'));
