/**
 * The real poller process (dist/poller/main.js) against the real servers:
 * killed mid-batch, stopped with SIGTERM mid-intake, and cut off from Temporal.
 * In each case every notification ends up handed off exactly once, nothing
 * reaches the dead-letter queue, and the metrics endpoint tells the story.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../lib/aws';
import { notificationsOf } from '../lib/store/marketplace';
import { freePort, portOpen, waitFor, type ManagedProcess } from '../infra/processes';
import { queueDepth, startTemporalDevServer } from '../infra/servers';
import { sumOfSeries } from '../poller/metrics';
import { connectClient } from '../lib/temporal';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import type { SubscriptionEvent } from '../domain/subscription-model';
import {
  enqueueBodies,
  eventBridgeBody,
  snsEnvelopeBody,
  syntheticCustomer,
  type SnsSigner,
} from '../sandbox/notification-bodies';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { eventIds, eventuallyState, registerSyntheticCustomer } from './helpers/subscription';
import { testServers } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

const script = join(__dirname, '..', 'dist', 'poller', 'main.js');
let stack: LinkingStack;
let sqs: SQSClient;
let signer: SnsSigner;
let batchNo = 0;

beforeAll(async () => {
  if (!existsSync(script)) throw new Error('dist/poller/main.js is missing: run `npm run build` (infra/test.sh does)');
  stack = await startLinkingStack({ inProcessPoller: false, visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  sqs = createSqsClient(testServers.aws());
  signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
}, 60_000);

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
});

interface PollerProcess {
  child: ChildProcess;
  metricsUrl: string;
  output: string[];
  exited: Promise<number | null>;
}

async function startPoller(
  temporalAddress = testServers.temporal().address,
  namespace = testServers.temporal().namespace,
): Promise<PollerProcess> {
  const metricsPort = await freePort();
  const output: string[] = [];
  const child = spawn(join(__dirname, '..', 'node_modules', '.bin', 'node'), [script], {
    env: {
      PATH: process.env.PATH,
      MONGODB_URI: testServers.mongoUri(),
      MONGODB_DATABASE: stack.mongo.db.databaseName,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: stack.taskQueue,
      AWS_ENDPOINT_URL_SQS: testServers.awsEndpoint(),
      SQS_QUEUE_URL: stack.aws.queueUrl,
      // One process reads both queues: signed SNS envelopes on the first, EventBridge events on the rule's own.
      SQS_EVENTBRIDGE_QUEUE_URL: stack.aws.eventBridgeQueueUrl,
      SQS_WAIT_TIME_SECONDS: '1',
      SNS_TOPIC_ARN: stack.aws.topicArn,
      SNS_TRUSTED_CERT_URLS: stack.sandbox.certUrl,
      POLLER_METRICS_PORT: String(metricsPort),
      POLLER_SHUTDOWN_TIMEOUT_SECONDS: '20',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(
    'the poller metrics endpoint',
    () => portOpen(metricsPort),
    30_000,
    () => child.exitCode === null,
  );
  return { child, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, output, exited };
}

async function metricValue(poller: PollerProcess, name: string): Promise<number> {
  return sumOfSeries(await (await fetch(poller.metricsUrl)).text(), name);
}

const depth = (queueUrl: string) => queueDepth(sqs, queueUrl);
/** Both queues (or both dead-letter queues) together. */
const queued = async () => (await depth(stack.aws.queueUrl)) + (await depth(stack.aws.eventBridgeQueueUrl));
const deadLettered = async () =>
  (await depth(stack.aws.deadLetterQueueUrl)) + (await depth(stack.aws.eventBridgeDeadLetterQueueUrl));

/** Each body to the queue AWS would put it on: EventBridge events to the rule's queue, envelopes to the SNS queue. */
async function enqueue(bodies: string[]): Promise<void> {
  const isEvent = (body: string) => 'detail-type' in (JSON.parse(body) as object);
  await enqueueBodies(
    sqs,
    stack.aws.queueUrl,
    bodies.filter((body) => !isEvent(body)),
  );
  await enqueueBodies(sqs, stack.aws.eventBridgeQueueUrl, bodies.filter(isEvent));
}

/**
 * `customers` registered customers (the poller hands notifications only to registered subscriptions), each with two
 * signed SNS notifications and one EventBridge event, shuffled.
 */
async function notificationBatch(customers: number) {
  const base = 1_000_000 * ++batchNo + Math.floor(Math.random() * 1000) * 1000;
  const subjects = Array.from({ length: customers }, (_, i) => syntheticCustomer(base + i, stack.productCode));
  const refs = new Map<(typeof subjects)[number], SubscriptionRef>();
  for (const customer of subjects) refs.set(customer, await registerSyntheticCustomer(stack.mongo.db, customer));
  const items = subjects.flatMap((customer) => {
    const fail = snsEnvelopeBody(customer, 'subscribe-fail', signer);
    const success = snsEnvelopeBody(customer, 'subscribe-success', { ...signer, version: '2' });
    const created = eventBridgeBody(customer, 'Purchase Agreement Created - Manufacturer');
    return [
      { customer, id: (JSON.parse(fail) as { MessageId: string }).MessageId, body: fail },
      { customer, id: (JSON.parse(success) as { MessageId: string }).MessageId, body: success },
      { customer, id: created.id, body: created.body },
    ];
  });
  return { subjects, refs, items: items.sort(() => Math.random() - 0.5) };
}

const handedOffCount = (ids: string[]) =>
  notificationsOf(stack.mongo.db).countDocuments({ _id: { $in: ids }, handedOffAt: { $exists: true } });

/** Every notification recorded once, handed off, and seen once by its customer's subscription workflow. */
async function expectExactlyOnce(batch: Awaited<ReturnType<typeof notificationBatch>>, temporal = stack.temporal) {
  const ids = batch.items.map((item) => item.id);
  await eventually(
    () => handedOffCount(ids),
    (n) => n === ids.length,
    600,
  );
  expect(await notificationsOf(stack.mongo.db).countDocuments({ _id: { $in: ids } })).toBe(ids.length);
  for (const customer of batch.subjects) {
    const handle = temporal.workflow.getHandle(subscriptionWorkflowId(batch.refs.get(customer)!));
    const state = await eventuallyState(handle, (s) => s.history.length >= 3);
    const expected = batch.items.filter((item) => item.customer === customer).map((item) => item.id);
    expect(eventIds(state).sort()).toEqual(expected.sort());
  }
  await eventually(queued, (n) => n === 0, 600);
  expect(await deadLettered()).toBe(0);
}

describe('the poller process', () => {
  it('loses and doubles nothing when killed mid-batch and restarted', async () => {
    const batch = await notificationBatch(60);
    const ids = batch.items.map((item) => item.id);
    await enqueue(batch.items.map((item) => item.body));
    const first = await startPoller();
    await eventually(
      () => handedOffCount(ids),
      (n) => n >= 30,
      600,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = await handedOffCount(ids);
    // The premise: it died with work left, some of it received and not yet deleted.
    expect(atKill).toBeLessThan(ids.length);

    const second = await startPoller();
    try {
      await expectExactlyOnce(batch);
      expect(await metricValue(second, 'marketplace_notifications_handed_off_total')).toBeGreaterThan(0);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 180_000);

  it('finishes the messages in flight on SIGTERM and exits cleanly', async () => {
    const batch = await notificationBatch(60);
    const ids = batch.items.map((item) => item.id);
    await enqueue(batch.items.map((item) => item.body));
    const poller = await startPoller();
    await eventually(
      () => handedOffCount(ids),
      (n) => n >= 30,
      600,
    );
    poller.child.kill('SIGTERM');
    expect(await poller.exited).toBe(0);
    expect(poller.output.join('')).toContain('"msg":"poller stopped"');
    // Nothing half-done: every notification it recorded, it also handed off.
    const recorded = await notificationsOf(stack.mongo.db).countDocuments({ _id: { $in: ids } });
    expect(await handedOffCount(ids)).toBe(recorded);
    expect(recorded).toBeLessThan(ids.length);

    const next = await startPoller();
    try {
      await expectExactlyOnce(batch);
    } finally {
      next.child.kill('SIGTERM');
      await next.exited;
    }
  }, 180_000);

  it('holds messages through a Temporal outage with backoff, then hands them all off', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'poller-outage-'));
    const port = await freePort();
    const serverOptions = { port, dbFile: join(runDir, 'temporal.sqlite'), namespace: 'outage', logDir: runDir };
    let server: ManagedProcess = await startTemporalDevServer(serverOptions);
    const poller = await startPoller(`127.0.0.1:${port}`, 'outage');
    const temporal = await connectClient({
      address: `127.0.0.1:${port}`,
      namespace: 'outage',
      taskQueue: stack.taskQueue,
    });
    try {
      await server.stop();
      // More than the poller may hold (POLLER_MAX_IN_FLIGHT, 50 by default).
      const batch = await notificationBatch(27);
      const ids = batch.items.map((item) => item.id);
      await enqueue(batch.items.map((item) => item.body));
      await eventually(
        () => metricValue(poller, 'marketplace_notification_hand_off_failures_total'),
        (n) => n >= 3,
        600,
      );

      // While hand-offs fail, nothing is deleted or dead-lettered, and no more is received than the poller may hold.
      expect(await handedOffCount(ids)).toBe(0);
      expect(await queued()).toBe(ids.length);
      expect(await deadLettered()).toBe(0);
      // It reads two queues (SNS and EventBridge), each holding at most POLLER_MAX_IN_FLIGHT (50).
      expect(await metricValue(poller, 'marketplace_notifications_received_total')).toBeLessThanOrEqual(2 * 50);
      expect(await metricValue(poller, 'marketplace_notifications_in_flight')).toBeGreaterThan(0);

      server = await startTemporalDevServer(serverOptions);
      // Each held message retries on its own backoff (up to 30 s), and the client's channel reconnects on its own
      // (gRPC's backoff grows through the outage): under a loaded machine one slow round of each took over a minute.
      await eventually(
        () => handedOffCount(ids),
        (n) => n === ids.length,
        2400,
      );
      await eventually(queued, (n) => n === 0, 600);
      expect(await deadLettered()).toBe(0);
      // No worker polls this server: the workflows hold the signals. A signal the server stored while the poller
      // lost its answer in the restart is sent again (the workflow deduplicates by id), so count notifications, not signals.
      for (const customer of batch.subjects) {
        const history = await temporal.workflow
          .getHandle(subscriptionWorkflowId(batch.refs.get(customer)!))
          .fetchHistory();
        const signalled = history.events!.flatMap((e) => {
          const payload = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
          return payload ? [(JSON.parse(Buffer.from(payload).toString()) as SubscriptionEvent).id] : [];
        });
        const expected = batch.items.filter((item) => item.customer === customer).map((item) => item.id);
        expect([...new Set(signalled)].sort()).toEqual(expected.sort());
      }
    } finally {
      poller.child.kill('SIGTERM');
      await poller.exited;
      await temporal.connection.close();
      await server.stop();
    }
  }, 360_000);
});
