/** The real servers this project runs locally: Temporal dev server, FerretDB and moto (SQS + SNS). */
import { join } from 'node:path';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Connection } from '@temporalio/client';
import { createSnsClient, createSqsClient } from '../lib/aws';
import { devServerSearchAttributeFlags } from '../domain/search-attributes';
import { binaries } from './paths';
import { portOpen, startProcess, type ManagedProcess } from './processes';

export interface TemporalDevServerOptions {
  port: number;
  /** Omit for a headless server (tests). */
  uiPort?: number;
  dbFile: string;
  namespace: string;
  logDir: string;
  echo?: boolean;
}

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<ManagedProcess> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--db-filename',
    options.dbFile,
    '--namespace',
    options.namespace,
    '--log-level',
    'warn',
    // The dev server's SQLite otherwise keeps a rollback journal and syncs every commit: a write-ahead log synced at
    // checkpoints survives any process's crash (kill -9 included) and doubles its throughput (2,000 signalWithStart +
    // 2,000 signals: 147/s before, 282/s after). Only the machine losing power can drop the last commits.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    ...devServerSearchAttributeFlags(),
    // One partition per task queue, as ops/temporal/dynamicconfig.yaml sets for the metering calls' queue in production:
    // the server's rate for that queue is then the whole fleet's (the dev server takes no per-queue constraint).
    '--dynamic-config-value',
    'matching.numTaskqueueReadPartitions=1',
    '--dynamic-config-value',
    'matching.numTaskqueueWritePartitions=1',
    ...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']),
  ];
  return startProcess({
    name: 'temporal',
    command: binaries.temporal,
    args,
    logFile: join(options.logDir, 'temporal.log'),
    echo: options.echo,
    readyTimeoutMs: 90_000,
    ready: async () => {
      if (!(await portOpen(options.port))) return false;
      const connection = await Connection.connect({ address: `127.0.0.1:${options.port}`, connectTimeout: 2000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: options.namespace });
        return true;
      } finally {
        await connection.close();
      }
    },
  });
}

export async function startFerretDb(options: { port: number; dataDir: string; logDir: string; echo?: boolean }) {
  return startProcess({
    name: 'ferretdb',
    command: binaries.ferretdb,
    args: ['-listen', `127.0.0.1:${options.port}`, '-data', options.dataDir, '-log-level', 'error'],
    logFile: join(options.logDir, 'ferretdb.log'),
    echo: options.echo,
    ready: () => portOpen(options.port),
  });
}

export async function startMoto(options: { port: number; logDir: string; echo?: boolean }) {
  return startProcess({
    name: 'moto',
    command: binaries.python,
    args: [binaries.motoServer, '-H', '127.0.0.1', '-p', String(options.port)],
    logFile: join(options.logDir, 'moto.log'),
    echo: options.echo,
    ready: async () => (await fetch(`http://127.0.0.1:${options.port}/moto-api/`)).ok,
  });
}

export interface LocalAwsResources {
  queueUrl: string;
  deadLetterQueueUrl: string;
  topicArn: string;
  /** The EventBridge rule's target: a queue of its own, so that the SNS queue carries signed envelopes only. */
  eventBridgeQueueUrl: string;
  eventBridgeDeadLetterQueueUrl: string;
}

/**
 * Creates, idempotently, what AWS Marketplace and our account would have: the
 * product's SNS topic, our notification queue subscribed to it, the queue an
 * EventBridge rule would target, and a dead-letter queue with a redrive policy
 * for each.
 */
export async function ensureLocalAwsResources(options: {
  endpoint: string;
  region: string;
  queueName: string;
  productCode: string;
  maxReceiveCount?: number;
  visibilityTimeoutSeconds?: number;
}): Promise<LocalAwsResources> {
  const aws = { region: options.region, endpoints: { sqs: options.endpoint, sns: options.endpoint } };
  const sqs = createSqsClient(aws);
  const sns = createSnsClient(aws);
  const queueWithDeadLetters = async (name: string) => {
    const dlq = await sqs.send(
      new CreateQueueCommand({ QueueName: `${name}-dlq`, Attributes: { MessageRetentionPeriod: '1209600' } }),
    );
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 60),
          ReceiveMessageWaitTimeSeconds: '20',
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: await queueArn(sqs, dlq.QueueUrl!),
            maxReceiveCount: options.maxReceiveCount ?? 5,
          }),
        },
      }),
    );
    return { queueUrl: queue.QueueUrl!, deadLetterQueueUrl: dlq.QueueUrl! };
  };
  try {
    const queue = await queueWithDeadLetters(options.queueName);
    const events = await queueWithDeadLetters(`${options.queueName}-events`);
    const topic = await sns.send(
      new CreateTopicCommand({ Name: `aws-mp-subscription-notification-${options.productCode}` }),
    );
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn!,
        Protocol: 'sqs',
        Endpoint: await queueArn(sqs, queue.queueUrl),
      }),
    );
    return {
      ...queue,
      topicArn: topic.TopicArn!,
      eventBridgeQueueUrl: events.queueUrl,
      eventBridgeDeadLetterQueueUrl: events.deadLetterQueueUrl,
    };
  } finally {
    sqs.destroy();
    sns.destroy();
  }
}

async function queueArn(sqs: ReturnType<typeof createSqsClient>, queueUrl: string): Promise<string> {
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return attributes.Attributes!.QueueArn!;
}

/** Messages in the queue, visible or held by a consumer. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
}
