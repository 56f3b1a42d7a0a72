/** The notification poller's variables, and only those: a bad value meant for the API or the worker does not stop it. */
import {
  commonConfigFrom,
  commonEnv,
  ConfigError,
  listOf,
  NonEmpty,
  notificationTrustEnv,
  parseEnv,
  subscriptionEnv,
  subscriptionSettingsFrom,
  Url,
  type AwsConfig,
  type CommonConfig,
  type Env,
  type QueueFormat,
  type SubscriptionSettings,
} from '../lib/config';
import { Type } from '../lib/schema';

/** Every variable the poller reads, with its default. The README documents each one. */
export const pollerEnvSchema = Type.Object({
  ...commonEnv,
  ...subscriptionEnv,
  ...notificationTrustEnv,
  AWS_ENDPOINT_URL_SQS: Type.Optional(Url),
  SQS_QUEUE_URL: Type.Optional(Url),
  SQS_EVENTBRIDGE_QUEUE_URL: Type.Optional(Url),
  SQS_WAIT_TIME_SECONDS: Type.Integer({ minimum: 0, maximum: 20, default: 20 }),
  SQS_MAX_MESSAGES: Type.Integer({ minimum: 1, maximum: 10, default: 10 }),
  SQS_DEAD_LETTER_QUEUE_URL: Type.Optional(Url),
  SQS_EVENTBRIDGE_DEAD_LETTER_QUEUE_URL: Type.Optional(Url),
  POLLER_RECEIVERS: Type.Integer({ minimum: 1, maximum: 20, default: 2 }),
  POLLER_MAX_IN_FLIGHT: Type.Integer({ minimum: 10, maximum: 1000, default: 50 }),
  POLLER_SHUTDOWN_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 25 }),
  POLLER_METRICS_HOST: NonEmpty('127.0.0.1'),
  POLLER_METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9464 }),
  SNS_TOPIC_ARN: Type.Optional(Type.String({ pattern: '^arn:[^,\\s]+(,arn:[^,\\s]+)*$' })),
});

/** One queue the poller reads, and what it may carry there. */
export interface QueueConfig {
  url: string;
  formats: QueueFormat[];
  /** Unset: the target of the queue's redrive policy. */
  deadLetterQueueUrl?: string;
}

export interface PollerConfig {
  /** Unset: the target of the queue's redrive policy. */
  deadLetterQueueUrl?: string;
  /** The formats SQS_QUEUE_URL may carry (default: signed SNS envelopes only). */
  formats: QueueFormat[];
  /** A second queue that carries only EventBridge events, with its own dead-letter queue. */
  eventBridgeQueue?: { url: string; deadLetterQueueUrl?: string };
  receivers: number;
  maxInFlight: number;
  shutdownTimeoutMs: number;
  metrics: { host: string; port: number };
  /** The SNS topics whose envelopes are accepted. */
  topicArns: string[];
  verifySignatures: boolean;
  /** Certificate URLs trusted besides AWS's own (the local sandbox's). */
  trustedCertUrls: string[];
}

export interface PollerProcessConfig extends CommonConfig, SubscriptionSettings {
  /** SQS's endpoint; unset: real AWS. */
  aws: AwsConfig;
  sqs: { queueUrl?: string; waitTimeSeconds: number; maxMessages: number };
  poller: PollerConfig;
}

export function loadPollerConfig(env: Env = process.env): PollerProcessConfig {
  const parsed = parseEnv(pollerEnvSchema, env);
  return {
    ...commonConfigFrom(env, parsed),
    ...subscriptionSettingsFrom(parsed),
    aws: { region: parsed.AWS_REGION, endpoints: { sqs: parsed.AWS_ENDPOINT_URL_SQS } },
    sqs: {
      queueUrl: parsed.SQS_QUEUE_URL,
      waitTimeSeconds: parsed.SQS_WAIT_TIME_SECONDS,
      maxMessages: parsed.SQS_MAX_MESSAGES,
    },
    poller: {
      deadLetterQueueUrl: parsed.SQS_DEAD_LETTER_QUEUE_URL,
      formats: [...new Set(listOf(parsed.SQS_QUEUE_FORMATS))] as QueueFormat[],
      eventBridgeQueue: parsed.SQS_EVENTBRIDGE_QUEUE_URL
        ? { url: parsed.SQS_EVENTBRIDGE_QUEUE_URL, deadLetterQueueUrl: parsed.SQS_EVENTBRIDGE_DEAD_LETTER_QUEUE_URL }
        : undefined,
      receivers: parsed.POLLER_RECEIVERS,
      maxInFlight: parsed.POLLER_MAX_IN_FLIGHT,
      shutdownTimeoutMs: parsed.POLLER_SHUTDOWN_TIMEOUT_SECONDS * 1000,
      metrics: { host: parsed.POLLER_METRICS_HOST, port: parsed.POLLER_METRICS_PORT },
      topicArns: listOf(parsed.SNS_TOPIC_ARN),
      verifySignatures: parsed.SNS_VERIFY_SIGNATURES,
      trustedCertUrls: listOf(parsed.SNS_TRUSTED_CERT_URLS),
    },
  };
}

/** The queues the poller reads, each with the formats it may carry; it cannot run without one. */
export function requireQueues(config: Pick<PollerProcessConfig, 'sqs' | 'poller'>): QueueConfig[] {
  const { poller } = config;
  const queues: QueueConfig[] = [
    ...(config.sqs.queueUrl
      ? [{ url: config.sqs.queueUrl, formats: poller.formats, deadLetterQueueUrl: poller.deadLetterQueueUrl }]
      : []),
    ...(poller.eventBridgeQueue
      ? [
          {
            url: poller.eventBridgeQueue.url,
            formats: ['eventbridge' as const],
            deadLetterQueueUrl: poller.eventBridgeQueue.deadLetterQueueUrl,
          },
        ]
      : []),
  ];
  if (queues.length === 0)
    throw new ConfigError(['SQS_QUEUE_URL: required by the notification poller (or SQS_EVENTBRIDGE_QUEUE_URL)']);
  if (queues.length === 2 && queues[0]!.url === queues[1]!.url) {
    throw new ConfigError([
      'SQS_EVENTBRIDGE_QUEUE_URL: must be another queue than SQS_QUEUE_URL (add eventbridge to SQS_QUEUE_FORMATS instead)',
    ]);
  }
  return queues;
}
