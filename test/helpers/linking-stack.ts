/**
 * The whole account-linking path on real servers, in this process: the API on
 * a real port, the Marketplace sandbox (ResolveCustomer, SNS publishing), a
 * worker on the Temporal dev server, and the SQS poller on moto.
 */
import { createActivities } from '../../activities';
import { createMarketplaceActivities, type ResolvedRegistration } from '../../activities/marketplace';
import { createMeteringClient, createSnsClient, createSqsClient } from '../../lib/aws';
import type { ApiSettings } from '../../api/app';
import { loadMeteringConfig } from '../../lib/config';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { ensureIndexes } from '../../lib/store/indexes';
import { connectClient } from '../../lib/temporal';
import { ensureLocalAwsResources, type LocalAwsResources } from '../../infra/servers';
import { createNotificationPoller } from '../../poller/create-poller';
import { createPollerMetrics, type PollerMetrics } from '../../poller/metrics';
import type { PollerOptions } from '../../poller/sqs-poller';
import type { QueueFormat } from '../../lib/config';
import type { PollerConfig } from '../../poller/config';
import type { SignatureVersion } from '../../sandbox/sns-signing';
import { createWorker } from '../../worker/create-worker';
import type { Client } from '@temporalio/client';
import { startApi, type RunningApi } from './api';
import { startSandbox, type RunningSandbox } from './sandbox';
import { testPollerConfig, testServers, uniqueName } from './test-env';
import { REGISTRATION_PATH } from '../../api/routes/linking/registration';

export interface LinkingStack {
  api: RunningApi;
  sandbox: RunningSandbox;
  mongo: MongoHandle;
  temporal: Client;
  aws: LocalAwsResources;
  productCode: string;
  pollerLog: string[];
  taskQueue: string;
  pollerMetrics: PollerMetrics;
  /** The ResolveCustomer activity the API uses, for tests that build a second API. */
  resolveCustomer: (token: string) => Promise<ResolvedRegistration>;
  stop(): Promise<void>;
}

export async function startLinkingStack(
  options: {
    settings?: Partial<ApiSettings>;
    visibilityTimeoutSeconds?: number;
    maxReceiveCount?: number;
    gracePeriodMs?: number;
    poller?: Partial<PollerConfig>;
    signSns?: false | SignatureVersion;
    /** false: no poller here (a test runs the real poller process on the queue). */
    inProcessPoller?: boolean;
    certificateRetry?: PollerOptions['certificateRetry'];
  } = {},
): Promise<LinkingStack> {
  const productCode = uniqueName('prod');
  const temporalConfig = testServers.temporal();
  const awsConfig = testServers.aws();
  const mongo = await connectMongo(testServers.mongoUri(), uniqueName('linking'));
  await ensureIndexes(mongo.db);
  const temporal = await connectClient(temporalConfig);
  const aws = await ensureLocalAwsResources({
    endpoint: testServers.awsEndpoint(),
    region: awsConfig.region,
    queueName: uniqueName('notifications'),
    productCode,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 2,
    maxReceiveCount: options.maxReceiveCount ?? 3,
  });
  const sqs = createSqsClient(awsConfig);
  const sns = createSnsClient(awsConfig);

  // The API and the sandbox point at each other; the API asks for ResolveCustomer only once the sandbox is up.
  const marketplace: Partial<ReturnType<typeof createMarketplaceActivities>> = {};
  // The API starts a subscription's workflow on the buyer's link request: it passes the same settings as the poller.
  const gracePeriodMs = options.gracePeriodMs ?? 3 * 24 * 3_600_000;
  const settings: Partial<ApiSettings> = {
    taskQueue: temporalConfig.taskQueue,
    cancellation: { gracePeriodMs },
    ...options.settings,
  };
  const api = await startApi({
    db: mongo.db,
    temporal,
    resolveCustomer: (token) => marketplace.resolveCustomer!(token),
    settings,
  });
  const sandbox = await startSandbox({
    productCode,
    sns,
    snsTopicArn: aws.topicArn,
    sqs,
    eventBridgeQueueUrl: aws.eventBridgeQueueUrl,
    registrationUrl: `${api.url}${REGISTRATION_PATH}`,
    signSns: options.signSns,
  });
  const metering = createMeteringClient({ ...awsConfig, endpoints: { ...awsConfig.endpoints, metering: sandbox.url } });
  Object.assign(marketplace, createMarketplaceActivities({ metering }));

  const meteringConfig = loadMeteringConfig({});
  const workers = await createWorker({
    temporal: temporalConfig,
    activities: createActivities({ db: mongo.db, metering, usageMetering: metering, meteringConfig }),
    meteringCalls: meteringConfig,
  });
  const workerDone = workers.run();

  const pollerLog: string[] = [];
  const record = (level: string) => (fields: object, message: string) =>
    pollerLog.push(`${level} ${message} ${JSON.stringify(fields)}`);
  const stopPoller = new AbortController();
  const pollerMetrics = createPollerMetrics();
  // As in production: the SNS queue (signed envelopes only, unless a test says otherwise) and the EventBridge rule's queue.
  const pollerOf = (queueUrl: string, formats?: readonly QueueFormat[]) =>
    createNotificationPoller({
      sqs,
      db: mongo.db,
      temporal,
      queueUrl,
      formats,
      taskQueue: temporalConfig.taskQueue,
      syncTimeoutMs: 60_000,
      gracePeriodMs,
      poller: testPollerConfig({
        topicArns: [aws.topicArn],
        ...options.poller,
        trustedCertUrls: [sandbox.certUrl, ...(options.poller?.trustedCertUrls ?? [])],
      }),
      waitTimeSeconds: 1,
      batchSize: 10,
      log: { info: record('info'), warn: record('warn'), error: record('error') },
      metrics: pollerMetrics,
      backoff: { initialMs: 100, maxMs: 1000 },
      certificateRetry: options.certificateRetry,
    });
  const pollers = [await pollerOf(aws.queueUrl), await pollerOf(aws.eventBridgeQueueUrl, ['eventbridge'])];
  const pollerDone =
    options.inProcessPoller === false
      ? Promise.resolve()
      : Promise.all(pollers.map(({ poller }) => poller.run(stopPoller.signal)));

  return {
    api,
    sandbox,
    mongo,
    temporal,
    aws,
    productCode,
    pollerLog,
    pollerMetrics,
    taskQueue: temporalConfig.taskQueue,
    resolveCustomer: (token) => marketplace.resolveCustomer!(token),
    async stop() {
      stopPoller.abort();
      await pollerDone;
      workers.shutdown();
      await workerDone;
      await workers.connection.close();
      await api.close();
      await sandbox.close();
      metering.destroy();
      sqs.destroy();
      sns.destroy();
      await temporal.connection.close();
      await mongo.db.dropDatabase();
      await mongo.close();
    },
  };
}
