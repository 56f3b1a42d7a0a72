/** Assembles a notification poller from configuration: used by the poller process, the tests and the benchmark. */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { queueUrlOfArn } from '../lib/aws';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { ConfigError, type QueueFormat } from '../lib/config';
import type { PollerConfig } from './config';
import { createHandOff } from './hand-off';
import { createPollerMetrics, type PollerMetrics } from './metrics';
import { SnsSignatureVerifier } from './sns-signature';
import { SqsNotificationPoller, type PollerLog, type PollerOptions } from './sqs-poller';

export interface QueueSettings {
  visibilityTimeoutSeconds: number;
  deadLetterQueueUrl: string;
  /** The redrive policy's maxReceiveCount; without a policy, the poller's own bound. */
  maxReceives: number;
}

const DEFAULT_MAX_RECEIVES = 5;

/** The queue's own visibility timeout, and its dead-letter queue: configured, or the target of its redrive policy. */
export async function discoverQueueSettings(
  sqs: SQSClient,
  queueUrl: string,
  deadLetterQueueUrl?: string,
): Promise<QueueSettings> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'] }),
  );
  const visibilityTimeoutSeconds = Number(Attributes.VisibilityTimeout ?? 30);
  const policy = Attributes.RedrivePolicy
    ? (JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn?: string; maxReceiveCount?: number | string })
    : {};
  const maxReceives = Number(policy.maxReceiveCount ?? DEFAULT_MAX_RECEIVES) || DEFAULT_MAX_RECEIVES;
  if (deadLetterQueueUrl) return { visibilityTimeoutSeconds, deadLetterQueueUrl, maxReceives };
  const target = policy.deadLetterTargetArn;
  if (!target) {
    throw new ConfigError([
      'SQS_DEAD_LETTER_QUEUE_URL: required when the notification queue has no redrive policy (poison messages must go somewhere)',
    ]);
  }
  return { visibilityTimeoutSeconds, deadLetterQueueUrl: await queueUrlOfArn(sqs, target), maxReceives };
}

export interface NotificationPollerDeps {
  sqs: SQSClient;
  db: Db;
  temporal: Client;
  queueUrl: string;
  /** What this queue may carry; default: the poller's SQS_QUEUE_FORMATS. */
  formats?: readonly QueueFormat[];
  /** This queue's own dead-letter queue; unset: its redrive policy's target. */
  deadLetterQueueUrl?: string;
  taskQueue: string;
  syncTimeoutMs: number;
  gracePeriodMs: number;
  poller: PollerConfig;
  waitTimeSeconds: number;
  batchSize: number;
  log: PollerLog;
  metrics?: PollerMetrics;
  backoff?: PollerOptions['backoff'];
  certificateRetry?: PollerOptions['certificateRetry'];
  traceMessage?: PollerOptions['traceMessage'];
}

export async function createNotificationPoller(deps: NotificationPollerDeps) {
  const { sqs, db, temporal, poller } = deps;
  const queue = await discoverQueueSettings(sqs, deps.queueUrl, deps.deadLetterQueueUrl);
  const metrics = deps.metrics ?? createPollerMetrics();
  const verifier = poller.verifySignatures
    ? new SnsSignatureVerifier({ trustedCertUrls: poller.trustedCertUrls })
    : undefined;
  const instance = new SqsNotificationPoller({
    sqs,
    db,
    queueUrl: deps.queueUrl,
    deadLetterQueueUrl: queue.deadLetterQueueUrl,
    visibilityTimeoutSeconds: queue.visibilityTimeoutSeconds,
    maxReceives: queue.maxReceives,
    trust: { formats: deps.formats ?? poller.formats, topicArns: poller.topicArns, verifier },
    handOff: createHandOff({
      db,
      subscriptions: {
        temporal,
        taskQueue: deps.taskQueue,
        settings: { syncTimeoutMs: deps.syncTimeoutMs, gracePeriodMs: deps.gracePeriodMs },
      },
    }),
    metrics,
    log: deps.log,
    waitTimeSeconds: deps.waitTimeSeconds,
    batchSize: deps.batchSize,
    receivers: poller.receivers,
    maxInFlight: poller.maxInFlight,
    shutdownTimeoutMs: poller.shutdownTimeoutMs,
    backoff: deps.backoff,
    certificateRetry: deps.certificateRetry,
    traceMessage: deps.traceMessage,
  });
  return { poller: instance, metrics, queue };
}
