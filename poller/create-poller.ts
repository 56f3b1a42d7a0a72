/** Assembles a notification poller from configuration: used by the poller process, the tests and the benchmark. */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { queueUrlOfArn } from '../lib/aws';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { ConfigError, type PollerConfig } from '../lib/config';
import { createHandOff } from './hand-off';
import { createPollerMetrics, type PollerMetrics } from './metrics';
import { SnsSignatureVerifier } from './sns-signature';
import { SqsNotificationPoller, type PollerLog, type PollerOptions } from './sqs-poller';

export interface QueueSettings {
  visibilityTimeoutSeconds: number;
  deadLetterQueueUrl: string;
}

/** The queue's own visibility timeout, and its dead-letter queue: configured, or the target of its redrive policy. */
export async function discoverQueueSettings(sqs: SQSClient, queueUrl: string, deadLetterQueueUrl?: string): Promise<QueueSettings> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'] }),
  );
  const visibilityTimeoutSeconds = Number(Attributes.VisibilityTimeout ?? 30);
  if (deadLetterQueueUrl) return { visibilityTimeoutSeconds, deadLetterQueueUrl };
  const target = Attributes.RedrivePolicy ? (JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn?: string }).deadLetterTargetArn : undefined;
  if (!target) {
    throw new ConfigError([
      'SQS_DEAD_LETTER_QUEUE_URL: required when the notification queue has no redrive policy (poison messages must go somewhere)',
    ]);
  }
  return { visibilityTimeoutSeconds, deadLetterQueueUrl: await queueUrlOfArn(sqs, target) };
}

export interface NotificationPollerDeps {
  sqs: SQSClient;
  db: Db;
  temporal: Client;
  queueUrl: string;
  taskQueue: string;
  syncTimeoutMs: number;
  gracePeriodMs: number;
  poller: PollerConfig;
  waitTimeSeconds: number;
  batchSize: number;
  log: PollerLog;
  metrics?: PollerMetrics;
  backoff?: PollerOptions['backoff'];
}

export async function createNotificationPoller(deps: NotificationPollerDeps) {
  const { sqs, db, temporal, poller } = deps;
  const queue = await discoverQueueSettings(sqs, deps.queueUrl, poller.deadLetterQueueUrl);
  const metrics = deps.metrics ?? createPollerMetrics();
  const verifier = poller.verifySignatures ? new SnsSignatureVerifier({ trustedCertUrls: poller.trustedCertUrls }) : undefined;
  const instance = new SqsNotificationPoller({
    sqs,
    db,
    queueUrl: deps.queueUrl,
    deadLetterQueueUrl: queue.deadLetterQueueUrl,
    visibilityTimeoutSeconds: queue.visibilityTimeoutSeconds,
    trust: { topicArns: poller.topicArns, verifier },
    handOff: createHandOff({
      db,
      subscriptions: { temporal, taskQueue: deps.taskQueue, settings: { syncTimeoutMs: deps.syncTimeoutMs, gracePeriodMs: deps.gracePeriodMs } },
    }),
    metrics,
    log: deps.log,
    waitTimeSeconds: deps.waitTimeSeconds,
    batchSize: deps.batchSize,
    receivers: poller.receivers,
    maxInFlight: poller.maxInFlight,
    shutdownTimeoutMs: poller.shutdownTimeoutMs,
    backoff: deps.backoff,
  });
  return { poller: instance, metrics, queue };
}
