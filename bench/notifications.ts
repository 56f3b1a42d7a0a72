/**
 * bench/notifications: notification intake at volume, end to end through the
 * real poller process, on local moto SQS, FerretDB and a Temporal dev server.
 *
 *   node dist/bench/notifications.js [NOTIFICATIONS=20000] [CUSTOMERS=5000]
 *
 * It enqueues NOTIFICATIONS messages for CUSTOMERS customers: signed SNS
 * envelopes (SignatureVersion 1 and 2, verified against a certificate the
 * poller fetches over HTTP), raw deliveries and EventBridge events, 10% of them
 * duplicates, all shuffled. A producer enqueues them as fast as SQS takes them
 * while the poller runs, keeping at most MAX_BACKLOG waiting (moto's receive
 * costs time proportional to the backlog, real SQS's does not, so a pre-filled
 * queue of 20,000 would measure moto, not us). The
 * pipeline's rate runs from the first message enqueued to the last handed off
 * and deleted. In the same run, on the same servers, it measures two floors:
 *   - raw SQS: the same producer, and receive 10 + delete 10 with nothing else,
 *     same receivers;
 *   - raw Temporal: the hand-off's own signalWithStart call (to the
 *     subscription's workflow) for every unique notification, no SQS, no
 *     store, same concurrency as the poller. It is measured before the
 *     pipeline and again after it, each time for customers of its own, and
 *     the pipeline is compared with their mean: the same signalWithStart
 *     calls cost 51 s of the server's CPU in one run and 58 s in another,
 *     so the machine's speed drifts within a run, and the Temporal server's
 *     store grows by every workflow started. Both measurements bracket the
 *     pipeline in time and in store size; both are reported.
 * The customers are registered first (as ResolveCustomer would have them): the
 * poller hands a notification to a workflow only for a registered subscription.
 * Target: pipeline rate / smaller floor ≥ 0.85 (issue 14; 0.7 before), and 0 duplicate effects
 * (notifications recorded twice, or signalled twice to a workflow).
 * BENCH_CPU_PROFILE_DIR=<dir> writes the poller's CPU profile there.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { freePort, portOpen, waitFor } from '../infra/processes';
import { repoRoot } from '../infra/paths';
import { ensureLocalAwsResources, queueDepth } from '../infra/servers';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { createSqsClient } from '../lib/aws';
import { connectMongo } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { customerKey, marketplaceCustomersOf, notificationsOf } from '../lib/store/marketplace';
import { signalAwsEvent } from '../clients/subscription-client';
import { connectClient } from '../lib/temporal';
import {
  enqueueBodies,
  eventBridgeBody,
  rawMessageBody,
  snsEnvelopeBody,
  syntheticCustomer,
  type SnsSigner,
} from '../sandbox/notification-bodies';
import { sumOfSeries } from '../poller/metrics';
import { cpuSeconds, peakRssMb } from './process-stats';
import { ensureSigningKey } from '../sandbox/sns-signing';
import type { SandboxCustomer } from '../sandbox/store';
import { normalizeLicenseArn, subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import type { SubscriptionEvent } from '../domain/subscription-model';

const RECEIVERS = Number(process.env.BENCH_RECEIVERS ?? 2);
const MAX_IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 50);
const TASK_QUEUE = 'bench-notifications';
/** The issue-14 target for the pipeline rate over the smaller of the two floors measured in the same run. */
const TARGET_RATIO = 0.85;
const PRODUCERS = 2;
/**
 * moto's ReceiveMessage lists the whole queue on every call, which real SQS
 * does not; with 20,000 waiting it spends more time scanning than our poller
 * spends on a message. Both the floor and the pipeline therefore get a producer
 * that keeps at most this many messages waiting.
 */
const MAX_BACKLOG = 1000;

interface Notification {
  id: string;
  body: string;
  customer: SandboxCustomer;
  action: 'subscribe-success' | 'subscribe-fail';
}

const messageIdOf = (envelopeBody: string) => (JSON.parse(envelopeBody) as { MessageId: string }).MessageId;

/** Each customer's notifications, round-robin over the formats (raw delivery, the rare one, a fifth), until `unique` are made. */
function uniqueNotifications(unique: number, customers: SandboxCustomer[], signer: SnsSigner): Notification[] {
  const kinds = [
    (c: SandboxCustomer): Notification => {
      const body = snsEnvelopeBody(c, 'subscribe-fail', signer);
      return { id: messageIdOf(body), body, customer: c, action: 'subscribe-fail' };
    },
    (c: SandboxCustomer): Notification => {
      const body = snsEnvelopeBody(c, 'subscribe-success', { ...signer, version: '2' });
      return { id: messageIdOf(body), body, customer: c, action: 'subscribe-success' };
    },
    (c: SandboxCustomer): Notification => {
      const event = eventBridgeBody(c, 'Purchase Agreement Created - Manufacturer');
      return { id: event.id, body: event.body, customer: c, action: 'subscribe-success' };
    },
    (c: SandboxCustomer): Notification => {
      const event = eventBridgeBody(c, 'Purchase Agreement Amended - Manufacturer');
      return { id: event.id, body: event.body, customer: c, action: 'subscribe-success' };
    },
    // Raw delivery is keyed by the SQS MessageId, known only once sent: its id is filled in then.
    (c: SandboxCustomer): Notification => ({
      id: '',
      body: rawMessageBody(c, 'subscribe-success'),
      customer: c,
      action: 'subscribe-success',
    }),
  ];
  return Array.from({ length: unique }, (_, i) =>
    kinds[Math.floor(i / customers.length) % kinds.length]!(customers[i % customers.length]!),
  );
}

/** A synthetic customer's subscription, keyed by its license as registration keys it. */
function refOf(customer: SandboxCustomer): SubscriptionRef {
  return {
    awsAccountId: customer.customerAwsAccountId,
    productCode: customer.productCode,
    licenseArn: normalizeLicenseArn(customer.licenseArn),
  };
}

/** What ResolveCustomer would have stored for each customer, in bulk. */
async function registerCustomers(db: Db, customers: SandboxCustomer[]): Promise<void> {
  const now = new Date();
  for (let start = 0; start < customers.length; start += 1000) {
    await marketplaceCustomersOf(db).insertMany(
      customers.slice(start, start + 1000).map((c) => ({
        _id: customerKey(refOf(c)),
        ...refOf(c),
        offerType: 'standard' as const,
        firstResolvedAt: now,
        lastResolvedAt: now,
      })),
    );
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Enqueues as fast as SQS takes the messages, pausing while MAX_BACKLOG are waiting; returns the SQS MessageIds in order. */
async function produce(sqs: SQSClient, queueUrl: string, bodies: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < bodies.length; start += MAX_BACKLOG / 2) {
    // Every 100 ms: moto counts the backlog by walking the queue, and 500 waiting last well over a second.
    while ((await queueDepth(sqs, queueUrl)) > MAX_BACKLOG / 2)
      await new Promise((resolve) => setTimeout(resolve, 100));
    ids.push(...(await enqueueBodies(sqs, queueUrl, bodies.slice(start, start + MAX_BACKLOG / 2), PRODUCERS)));
  }
  return ids;
}

/** Receive 10, delete 10, with `receivers` loops, while the producer enqueues: what SQS alone allows. */
async function rawSqsFloor(sqs: SQSClient, queueUrl: string, bodies: string[]): Promise<number> {
  const total = bodies.length;
  let done = 0;
  const started = performance.now();
  const produced = produce(sqs, queueUrl, bodies);
  const loop = async () => {
    while (done < total) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      if (Messages.length === 0) continue;
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      done += Messages.length;
    }
  };
  await Promise.all([produced, ...Array.from({ length: RECEIVERS }, loop)]);
  return total / ((performance.now() - started) / 1000);
}

/** The hand-off's Temporal calls for each notification, MAX_IN_FLIGHT at a time: what Temporal alone allows. */
async function rawTemporalFloor(temporal: Client, notifications: Notification[]): Promise<number> {
  const subscriptions = {
    temporal,
    taskQueue: TASK_QUEUE,
    settings: { syncTimeoutMs: 3_600_000, gracePeriodMs: 3 * 86_400_000 },
  };
  let next = 0;
  const started = performance.now();
  const loop = async () => {
    while (next < notifications.length) {
      const n = notifications[next++]!;
      await signalAwsEvent(subscriptions, refOf(n.customer), {
        id: n.id,
        action: n.action,
        sentAt: new Date().toISOString(),
      });
    }
  };
  await Promise.all(Array.from({ length: MAX_IN_FLIGHT }, loop));
  return notifications.length / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const customerCount = Number(process.argv[3] ?? 5_000);
  const unique = Math.round(total * 0.9);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-notifications-'));
  const metricsPort = await freePort();
  const { servers, mongoUri, temporalAddress, awsEndpoint } = await startBenchServers(runDir, { moto: true });
  const endpoint = awsEndpoint!;
  const aws = { region: 'us-east-1', endpoints: { sqs: endpoint, sns: endpoint } };
  const sqs = createSqsClient(aws);
  const mongo = await connectMongo(mongoUri, 'bench_notifications');
  await ensureIndexes(mongo.db);
  const temporal = await connectClient({
    address: temporalAddress,
    namespace: 'bench',
    taskQueue: TASK_QUEUE,
  });
  const key = ensureSigningKey(join(runDir, 'sns'));
  const certServer = createServer((_request, response) => response.end(key.certificatePem));
  await new Promise<void>((resolve) => certServer.listen(0, '127.0.0.1', resolve));
  const certUrl = `http://127.0.0.1:${(certServer.address() as AddressInfo).port}/sns/signing-certificate.pem`;
  let poller: ReturnType<typeof spawn> | undefined;
  try {
    const pipelineQueue = await ensureLocalAwsResources({
      endpoint,
      region: 'us-east-1',
      queueName: 'bench-pipeline',
      productCode: 'bench-product',
    });
    const rawQueue = await ensureLocalAwsResources({
      endpoint,
      region: 'us-east-1',
      queueName: 'bench-raw',
      productCode: 'bench-raw',
    });
    const signer: SnsSigner = { key, certUrl, topicArn: pipelineQueue.topicArn };

    // Pipeline and Temporal floor get customers (and licenses, which key the workflows) of their own, so each starts its workflows fresh.
    const pipelineCustomers = Array.from({ length: customerCount }, (_, i) => syntheticCustomer(i, 'bench-product'));
    const floorCustomers = (set: number) =>
      Array.from({ length: customerCount }, (_, i) => syntheticCustomer(set * customerCount + i, 'bench-floor'));
    await registerCustomers(mongo.db, pipelineCustomers);
    const notifications = uniqueNotifications(unique, pipelineCustomers, signer);
    const duplicates = Array.from({ length: total - unique }, () => notifications[Math.floor(Math.random() * unique)]!);
    const messages = shuffle([...notifications, ...duplicates]);
    console.log(
      `${total} notifications (${unique} unique, ${total - unique} duplicates) for ${customerCount} customers`,
    );

    // 1. Raw SQS floor.
    const sqsFloor = await rawSqsFloor(
      sqs,
      rawQueue.queueUrl,
      messages.map((m) => m.body),
    );
    console.log(`raw SQS receive+delete: ${sqsFloor.toFixed(0)} messages/s`);

    // 2. Raw Temporal floor, on the same unique notifications for other customers (set 1 now, set 2 after the pipeline).
    const floorNotifications = (set: number) =>
      uniqueNotifications(unique, floorCustomers(set), signer).map((n, i) => ({ ...n, id: n.id || `raw-${set}-${i}` }));
    const cpu = () => ({
      ferretdb: cpuSeconds(servers[0]!.child.pid),
      temporal: cpuSeconds(servers[1]!.child.pid),
      moto: cpuSeconds(servers[2]!.child.pid),
      bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
      poller: cpuSeconds(poller?.pid),
    });
    const cpuSpent = (before: ReturnType<typeof cpu>) =>
      Object.fromEntries(
        Object.entries(cpu()).map(([k, v]) => [k, Number((v - before[k as keyof typeof before]).toFixed(1))]),
      );
    const floorCpu = cpu();
    const temporalFloorBefore = await rawTemporalFloor(temporal, floorNotifications(1));
    const temporalFloorCpu = cpuSpent(floorCpu);
    console.log(`raw signalWithStart hand-off, before the pipeline: ${temporalFloorBefore.toFixed(0)} notifications/s`);

    // 3. The pipeline: the real poller process, started first, takes what the producer enqueues.
    const profile = process.env.BENCH_CPU_PROFILE_DIR;
    const pollerArgs = [
      ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
      join(repoRoot, 'dist', 'poller', 'main.js'),
    ];
    poller = spawn(join(repoRoot, 'node_modules', '.bin', 'node'), pollerArgs, {
      env: {
        PATH: process.env.PATH,
        LOG_LEVEL: 'warn',
        MONGODB_URI: mongoUri,
        MONGODB_DATABASE: 'bench_notifications',
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: 'bench',
        TEMPORAL_TASK_QUEUE: TASK_QUEUE,
        AWS_ENDPOINT_URL_SQS: endpoint,
        SQS_QUEUE_URL: pipelineQueue.queueUrl,
        // The bench measures the mix of every format on one queue; production queues carry signed SNS only by default.
        SQS_QUEUE_FORMATS: 'sns,sns-raw,eventbridge',
        SNS_TOPIC_ARN: pipelineQueue.topicArn,
        SNS_TRUSTED_CERT_URLS: certUrl,
        POLLER_RECEIVERS: String(RECEIVERS),
        POLLER_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
        POLLER_METRICS_PORT: String(metricsPort),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    stopWhenInterrupted(poller);
    const child = poller;
    await waitFor(
      'the poller',
      () => portOpen(metricsPort),
      60_000,
      () => child.exitCode === null,
    );
    const pipelineCpu = { ...cpu(), poller: 0 };
    const started = performance.now();
    const sqsIds = await produce(
      sqs,
      pipelineQueue.queueUrl,
      messages.map((m) => m.body),
    );
    await waitFor('the queue to drain', async () => (await queueDepth(sqs, pipelineQueue.queueUrl)) === 0, 3_600_000);
    const pipelineSeconds = (performance.now() - started) / 1000;
    const pipelineRate = total / pipelineSeconds;
    const pipelineCpuSpent = cpuSpent(pipelineCpu);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const rssMb = peakRssMb(child.pid);
    console.log(`pipeline: ${total} in ${pipelineSeconds.toFixed(1)} s = ${pipelineRate.toFixed(0)} messages/s`);
    const temporalFloorAfter = await rawTemporalFloor(temporal, floorNotifications(2));
    console.log(`raw signalWithStart hand-off, after the pipeline: ${temporalFloorAfter.toFixed(0)} notifications/s`);
    const temporalFloor = (temporalFloorBefore + temporalFloorAfter) / 2;
    // A raw delivery is keyed by its first copy's SQS MessageId; its duplicates are recognised by content.
    const rawIds = new Map<Notification, string>();
    messages.forEach((m, i) => {
      if (!m.id && !rawIds.has(m)) rawIds.set(m, sqsIds[i]!);
    });
    const expectedIds = new Set(messages.map((m) => m.id || rawIds.get(m)!));

    // Effects: each notification recorded once and signalled once to its subscription's workflow.
    const records = await notificationsOf(mongo.db).countDocuments();
    const handedOff = await notificationsOf(mongo.db).countDocuments({ handedOffAt: { $exists: true } });
    let redundantSignals = 0;
    let signalled = 0;
    let nextCustomer = 0;
    const checkWorkflows = async () => {
      while (nextCustomer < pipelineCustomers.length) {
        const c = pipelineCustomers[nextCustomer++]!;
        const history = await temporal.workflow.getHandle(subscriptionWorkflowId(refOf(c))).fetchHistory();
        const ids = history.events!.flatMap((e) => {
          const payload = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
          return payload ? [(JSON.parse(Buffer.from(payload).toString()) as SubscriptionEvent).id] : [];
        });
        signalled += new Set(ids).size;
        redundantSignals += ids.length - new Set(ids).size;
      }
    };
    await Promise.all(Array.from({ length: 16 }, checkWorkflows));
    const duplicateEffects = Math.max(0, records - expectedIds.size) + redundantSignals;
    const floor = Math.min(sqsFloor, temporalFloor);
    const metric = (name: string) => sumOfSeries(metrics, name);
    const report = {
      notifications: total,
      uniqueNotifications: expectedIds.size,
      customers: customerCount,
      pipelineSeconds: Number(pipelineSeconds.toFixed(1)),
      pipelineMessagesPerSecond: Math.round(pipelineRate),
      rawSqsMessagesPerSecond: Math.round(sqsFloor),
      rawSignalWithStartNotificationsPerSecond: {
        before: Math.round(temporalFloorBefore),
        after: Math.round(temporalFloorAfter),
        mean: Math.round(temporalFloor),
      },
      ratioToSmallerFloor: Number((pipelineRate / floor).toFixed(3)),
      // Against the floor measured before the pipeline only, as this bench compared until the drift was measured.
      ratioToFloorBefore: Number((pipelineRate / Math.min(sqsFloor, temporalFloorBefore)).toFixed(3)),
      // Stricter: unique notifications per second against the Temporal floor, which counts only unique ones.
      uniqueRatioToTemporalFloor: Number((expectedIds.size / pipelineSeconds / temporalFloor).toFixed(3)),
      recorded: records,
      handedOff,
      signalledToSubscriptionWorkflows: signalled,
      duplicatesAcknowledged: metric('marketplace_notifications_duplicate_total'),
      deadLettered: metric('marketplace_notifications_dead_lettered_total'),
      verificationFailed: metric('marketplace_notifications_verification_failed_total'),
      duplicateEffects,
      pollerPeakRssMb: Math.round(rssMb),
      cpuSecondsTemporalFloor: temporalFloorCpu,
      cpuSecondsPipeline: pipelineCpuSpent,
    };
    console.log(JSON.stringify(report, null, 2));
    const ok =
      report.ratioToSmallerFloor >= TARGET_RATIO &&
      duplicateEffects === 0 &&
      handedOff === expectedIds.size &&
      report.deadLettered === 0;
    console.log(
      ok
        ? `PASS: ratio ≥ ${TARGET_RATIO}, every notification handed off once, 0 duplicate effects`
        : 'FAIL: see the figures above',
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    poller?.kill('SIGTERM');
    certServer.close();
    sqs.destroy();
    await temporal.connection.close();
    await mongo.close();
    await Promise.all(servers.map((s) => s.stop()));
  }
}

void main();
