/**
 * bench/sync-latency: how long a buyer waits, once AWS confirms the purchase,
 * for the platform account to pay through AWS Marketplace. End to end through
 * the real poller and worker processes, on local moto SQS, FerretDB and a
 * Temporal dev server.
 *
 *   node dist/bench/sync-latency.js [CUSTOMERS=200]
 *
 * Each customer is first linked as a buyer's link request links it (the
 * subscription workflow's requestLink update, as the API sends it): reserved
 * for its platform account and waiting for AWS. Then, one customer at a time,
 * the clock starts, a signed SNS `subscribe-success` envelope is sent to the
 * notification queue, and the clock stops when the store shows the account's
 * payment method as `aws-marketplace`. FerretDB has no change streams, so the
 * bench reads the account every POLL_MS (a few ms: the reading adds at most
 * that to each figure).
 *
 * Baseline, on the same servers, interleaved with the syncs so that both see
 * the same machine load: one raw signal round trip. A trivial workflow
 * (round-trip-workflow.ts), already started and waiting, is signalled, and the
 * clock stops when the client sees it complete with what it received: the
 * signal call, one workflow task on a worker, and the result's long poll, with
 * no activity and no store. It is the least that any signal-driven effect
 * costs on this Temporal server.
 *
 * Target: median sync latency ≤ 3 × median raw round trip, every account
 * synced; p99 of both is reported. The report also splits the syncs' time
 * between the poller (queue to hand-off, hand-off to signal), the workflow
 * (signal to the activation activity) and that activity, from the
 * notification's store record and the workflow's history.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { requestLink, type SubscriptionTarget } from '../clients/subscription-client';
import { subscriptionWorkflowId, normalizeLicenseArn, type SubscriptionRef } from '../domain/subscription-identity';
import { freePort, portOpen, startProcess, type ManagedProcess } from '../infra/processes';
import { repoRoot } from '../infra/paths';
import { ensureLocalAwsResources } from '../infra/servers';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { createSqsClient } from '../lib/aws';
import { connectMongo } from '../lib/mongo';
import { accountsOf } from '../lib/store/accounts';
import { customerKey, notificationsOf, saveResolvedCustomer } from '../lib/store/marketplace';
import { subscriptionsOf } from '../lib/store/subscriptions';
import { refOfCustomer } from '../lib/store/subscription-lookup';
import { ensureIndexes } from '../lib/store/indexes';
import { connectClient } from '../lib/temporal';
import { snsEnvelopeBody, syntheticCustomer, type SnsSigner } from '../sandbox/notification-bodies';
import { ensureSigningKey } from '../sandbox/sns-signing';
import type { SandboxCustomer } from '../sandbox/store';
import { recordSignal, signalRoundTrip } from './round-trip-workflow';

const NAMESPACE = 'bench';
const TASK_QUEUE = 'bench-sync';
const BASELINE_TASK_QUEUE = 'bench-sync-baseline';
const DATABASE = 'bench_sync';
const PRODUCT = 'bench-sync';
/** Not counted: the first ones pay for cold caches (the signing certificate, sticky workflow caches, connections). */
const WARM_UP = 10;
const POLL_MS = 2;
const SYNC_TIMEOUT_MS = 30_000;
const TARGET_RATIO = 3;
const SETTINGS = { syncTimeoutMs: 3_600_000, gracePeriodMs: 3 * 86_400_000 };
const LINK_CONCURRENCY = 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Customer {
  sandbox: SandboxCustomer;
  ref: SubscriptionRef;
  accountId: string;
}

interface SyncSample {
  customer: Customer;
  ms: number;
  /** Date.now() when the envelope was sent and when the store showed the payment method. */
  sentAt: number;
  observedAt: number;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Number(n.toFixed(1));
  return {
    p10: round(percentile(sorted, 10)),
    median: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    min: round(sorted[0]!),
    max: round(sorted[sorted.length - 1]!),
  };
}

/** Each customer registered (as ResolveCustomer leaves it) with a platform account that may pay through AWS. */
async function seedCustomers(db: Db, count: number): Promise<Customer[]> {
  const customers: Customer[] = [];
  for (let i = 0; i < count; i++) {
    const sandbox = syntheticCustomer(i, PRODUCT);
    const saved = await saveResolvedCustomer(db, {
      awsAccountId: sandbox.customerAwsAccountId,
      productCode: sandbox.productCode,
      licenseArn: normalizeLicenseArn(sandbox.licenseArn),
      offerType: 'standard',
    });
    customers.push({ sandbox, ref: refOfCustomer(saved), accountId: `bench-sync-account-${i}` });
  }
  await accountsOf(db).insertMany(
    customers.map((c) => ({
      _id: c.accountId,
      email: `${c.accountId}@example.com`,
      name: c.accountId,
      paymentMethod: 'none' as const,
      createdAt: new Date(),
    })),
  );
  return customers;
}

/** The buyers' link requests, a few at a time: each workflow answers once the account holds the reservation. */
async function linkAll(target: SubscriptionTarget, customers: Customer[]): Promise<void> {
  let next = 0;
  const linker = async () => {
    while (next < customers.length) {
      const c = customers[next++]!;
      // The API's deadline for a decision is 10 s; on a busy machine a request may miss it, and asking again is safe.
      const answer = await requestLink(target, c.ref, c.accountId).catch(() => requestLink(target, c.ref, c.accountId));
      if (answer.phase !== 'waiting-for-aws')
        throw new Error(`link request of ${c.accountId} answered ${answer.phase} (${answer.refusal ?? ''})`);
    }
  };
  await Promise.all(Array.from({ length: LINK_CONCURRENCY }, linker));
}

/** Until both the workflow and the activity task queue are polled: a link request before that would wait for the worker's start. */
async function waitForPollers(temporal: Client, taskQueue: string, worker: ManagedProcess): Promise<void> {
  const { TaskQueueType } = proto.api.enums.v1;
  const polled = async (type: proto.api.enums.v1.TaskQueueType) =>
    ((
      await temporal.workflowService.describeTaskQueue({
        namespace: NAMESPACE,
        taskQueue: { name: taskQueue },
        taskQueueType: type,
      })
    ).pollers?.length ?? 0) > 0;
  const deadline = Date.now() + 120_000;
  while (!(
    (await polled(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)) && (await polled(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
  )) {
    if (worker.child.exitCode !== null) throw new Error(`the worker exited (see ${worker.logFile})`);
    if (Date.now() > deadline) throw new Error(`no worker polls ${taskQueue} after 120 s (see ${worker.logFile})`);
    await sleep(200);
  }
}

/** Baseline workflows, one per round trip, started now and waiting for their signal (their first task done). */
async function startRoundTrips(temporal: Client, count: number): Promise<WorkflowHandle<typeof signalRoundTrip>[]> {
  const handles = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      temporal.workflow.start(signalRoundTrip, { taskQueue: BASELINE_TASK_QUEUE, workflowId: `round-trip-${i}` }),
    ),
  );
  for (const handle of handles) {
    // Started, task scheduled, started, completed: the workflow now waits in its condition.
    while (((await handle.describe()).historyLength ?? 0) < 4) await sleep(20);
  }
  return handles;
}

async function roundTrip(handle: WorkflowHandle<typeof signalRoundTrip>): Promise<number> {
  const started = performance.now();
  await handle.signal(recordSignal, handle.workflowId);
  const recorded = await handle.result();
  const ms = performance.now() - started;
  if (recorded !== handle.workflowId) throw new Error(`${handle.workflowId} recorded ${recorded}`);
  return ms;
}

async function sync(db: Db, sqs: ReturnType<typeof createSqsClient>, queueUrl: string, c: Customer, body: string) {
  const accounts = accountsOf(db);
  const sentAt = Date.now();
  const started = performance.now();
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  for (;;) {
    const account = await accounts.findOne({ _id: c.accountId }, { projection: { paymentMethod: 1 } });
    if (account?.paymentMethod === 'aws-marketplace') break;
    if (performance.now() - started > SYNC_TIMEOUT_MS)
      throw new Error(
        `${c.accountId} still pays by ${account?.paymentMethod} ${SYNC_TIMEOUT_MS} ms after subscribe-success`,
      );
    await sleep(POLL_MS);
  }
  const ms = performance.now() - started;
  return { customer: c, ms, sentAt, observedAt: Date.now() } satisfies SyncSample;
}

/** Until the workflow has saved the active state, its last step: the next sample starts on a quiet stack. */
async function settled(db: Db, c: Customer): Promise<void> {
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  while (
    (await subscriptionsOf(db).findOne({ _id: customerKey(c.ref) }, { projection: { phase: 1 } }))?.phase !== 'active'
  ) {
    if (Date.now() > deadline) throw new Error(`the subscription of ${c.accountId} was not saved as active`);
    await sleep(10);
  }
}

/**
 * Where one sync's time went, from the notification's record (when the poller's hand-off began) and the
 * workflow's history (server times): poller, workflow tasks and the activities before activation, activation.
 */
async function breakdown(db: Db, temporal: Client, sample: SyncSample) {
  const { customer } = sample;
  const record = await notificationsOf(db).findOne({
    awsAccountId: customer.ref.awsAccountId,
    action: 'subscribe-success',
  });
  const history = await temporal.workflow.getHandle(subscriptionWorkflowId(customer.ref)).fetchHistory();
  const events = history.events ?? [];
  const signalIndex = events.findIndex(
    (e) => e.workflowExecutionSignaledEventAttributes && tsToMs(e.eventTime) >= sample.sentAt - 5,
  );
  const after = events.slice(signalIndex);
  const scheduled = after.filter((e) => e.activityTaskScheduledEventAttributes);
  const activation = scheduled.find(
    (e) => e.activityTaskScheduledEventAttributes!.activityType?.name === 'activateSubscription',
  );
  const activationStarted = after.find(
    (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === activation?.eventId?.toString(),
  );
  if (!record || signalIndex < 0 || !activation || !activationStarted) return undefined;
  const signalled = tsToMs(events[signalIndex]!.eventTime);
  return {
    totalMs: Math.round(sample.ms),
    queueToHandOff: record.receivedAt.getTime() - sample.sentAt,
    handOffToSignal: signalled - record.receivedAt.getTime(),
    signalToActivationScheduled: tsToMs(activation.eventTime) - signalled,
    activationScheduledToStarted: tsToMs(activationStarted.eventTime) - tsToMs(activation.eventTime),
    activationStartedToObserved: sample.observedAt - tsToMs(activationStarted.eventTime),
    activitiesBeforeActivation: scheduled
      .slice(0, scheduled.indexOf(activation))
      .map((e) => e.activityTaskScheduledEventAttributes!.activityType?.name ?? '?'),
    workflowTasksBeforeActivation: after
      .slice(0, after.indexOf(activation))
      .filter((e) => e.workflowTaskCompletedEventAttributes).length,
    // A task that timed out is retried after its timeout: the usual cause of a tail of seconds.
    tasksTimedOut: after.filter((e) => e.workflowTaskTimedOutEventAttributes || e.activityTaskTimedOutEventAttributes)
      .length,
  };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 200);
  if (!Number.isInteger(count) || count < 1) throw new Error('CUSTOMERS must be a positive integer');
  const total = count + WARM_UP;
  const runDir = mkdtempSync(join(tmpdir(), 'bench-sync-latency-'));
  const pollerMetricsPort = await freePort();
  const { servers, mongoUri, temporalAddress, awsEndpoint } = await startBenchServers(runDir, {
    namespace: NAMESPACE,
    moto: true,
  });
  const endpoint = awsEndpoint!;
  const sqs = createSqsClient({ region: 'us-east-1', endpoints: { sqs: endpoint } });
  const mongo = await connectMongo(mongoUri, DATABASE);
  await ensureIndexes(mongo.db);
  const temporal = await connectClient({ address: temporalAddress, namespace: NAMESPACE, taskQueue: TASK_QUEUE });
  const key = ensureSigningKey(join(runDir, 'sns'));
  const certServer = createServer((_request, response) => response.end(key.certificatePem));
  await new Promise<void>((resolve) => certServer.listen(0, '127.0.0.1', resolve));
  const certUrl = `http://127.0.0.1:${(certServer.address() as AddressInfo).port}/sns/signing-certificate.pem`;
  const processes: ManagedProcess[] = [];
  let baseline: { worker: Worker; connection: NativeConnection; running: Promise<void> } | undefined;
  try {
    const queue = await ensureLocalAwsResources({
      endpoint,
      region: 'us-east-1',
      queueName: 'bench-sync',
      productCode: PRODUCT,
    });
    const signer: SnsSigner = { key, certUrl, topicArn: queue.topicArn };
    const common = {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      MONGODB_URI: mongoUri,
      MONGODB_DATABASE: DATABASE,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: NAMESPACE,
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      LINK_SYNC_TIMEOUT_SECONDS: String(SETTINGS.syncTimeoutMs / 1000),
      CANCELLATION_GRACE_SECONDS: String(SETTINGS.gracePeriodMs / 1000),
    };
    const node = join(repoRoot, 'node_modules', '.bin', 'node');
    const [worker, poller] = await Promise.all([
      startProcess({
        name: 'worker',
        command: node,
        args: [join(repoRoot, 'dist', 'worker', 'main.js')],
        env: {
          ...common,
          // Never called here; set so the worker does not count as talking to real AWS.
          AWS_ENDPOINT_URL_MARKETPLACE_METERING: endpoint,
          METERING_SCHEDULE: 'false',
          RETENTION_SCHEDULE: 'false',
        },
        logFile: join(runDir, 'worker.log'),
        ready: async () => true,
      }),
      startProcess({
        name: 'poller',
        command: node,
        args: [join(repoRoot, 'dist', 'poller', 'main.js')],
        env: {
          ...common,
          AWS_ENDPOINT_URL_SQS: endpoint,
          SQS_QUEUE_URL: queue.queueUrl,
          SNS_TOPIC_ARN: queue.topicArn,
          SNS_TRUSTED_CERT_URLS: certUrl,
          POLLER_METRICS_PORT: String(pollerMetricsPort),
        },
        logFile: join(runDir, 'poller.log'),
        ready: () => portOpen(pollerMetricsPort),
      }),
    ]);
    processes.push(stopWhenInterrupted(worker), stopWhenInterrupted(poller));
    // The SDK's own start and stop lines would bury the report.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    const connection = await NativeConnection.connect({ address: temporalAddress });
    const baselineWorker = await Worker.create({
      connection,
      namespace: NAMESPACE,
      taskQueue: BASELINE_TASK_QUEUE,
      workflowsPath: require.resolve('./round-trip-workflow'),
    });
    baseline = { worker: baselineWorker, connection, running: baselineWorker.run() };

    const customers = await seedCustomers(mongo.db, total);
    await waitForPollers(temporal, TASK_QUEUE, worker);
    const linkStarted = performance.now();
    await linkAll({ temporal, taskQueue: TASK_QUEUE, settings: SETTINGS }, customers);
    console.log(
      `${total} customers linked, waiting for AWS, in ${((performance.now() - linkStarted) / 1000).toFixed(1)} s`,
    );
    const roundTrips = await startRoundTrips(temporal, total);
    const envelopes = customers.map((c) => snsEnvelopeBody(c.sandbox, 'subscribe-success', signer));

    const syncs: SyncSample[] = [];
    const raw: number[] = [];
    for (let i = 0; i < total; i++) {
      const rawMs = await roundTrip(roundTrips[i]!);
      const sample = await sync(mongo.db, sqs, queue.queueUrl, customers[i]!, envelopes[i]!);
      await settled(mongo.db, customers[i]!);
      if (i < WARM_UP) continue;
      raw.push(rawMs);
      syncs.push(sample);
    }

    const synced = await accountsOf(mongo.db).countDocuments({
      _id: { $in: customers.map((c) => c.accountId) },
      paymentMethod: 'aws-marketplace',
    });
    const parts = (await Promise.all(syncs.map((s) => breakdown(mongo.db, temporal, s)))).filter(
      (p): p is NonNullable<typeof p> => p !== undefined,
    );
    const median = (pick: (p: (typeof parts)[number]) => number) =>
      parts.length ? summary(parts.map(pick)).median : null;
    const syncMs = summary(syncs.map((s) => s.ms));
    const rawMs = summary(raw);
    const ratio = Number((syncMs.median / rawMs.median).toFixed(2));
    const report = {
      customers: count,
      warmUp: WARM_UP,
      pollIntervalMs: POLL_MS,
      syncMs,
      rawSignalRoundTripMs: rawMs,
      ratioOfMedians: ratio,
      p99Ratio: Number((syncMs.p99 / rawMs.p99).toFixed(2)),
      accountsSynced: synced,
      medianBreakdownMs: {
        queueToHandOff: median((p) => p.queueToHandOff),
        handOffToSignal: median((p) => p.handOffToSignal),
        signalToActivationScheduled: median((p) => p.signalToActivationScheduled),
        activationScheduledToStarted: median((p) => p.activationScheduledToStarted),
        activationStartedToObserved: median((p) => p.activationStartedToObserved),
      },
      activitiesBeforeActivation: [...new Set(parts.map((p) => p.activitiesBeforeActivation.join(',') || 'none'))],
      workflowTasksBeforeActivation: [...new Set(parts.map((p) => p.workflowTasksBeforeActivation))],
      brokenDown: parts.length,
      tasksTimedOut: parts.reduce((n, p) => n + p.tasksTimedOut, 0),
      slowestSync: parts.reduce<(typeof parts)[number] | undefined>(
        (slowest, p) => (slowest && slowest.totalMs >= p.totalMs ? slowest : p),
        undefined,
      ),
    };
    console.log(JSON.stringify(report, null, 2));
    const ok = ratio <= TARGET_RATIO && synced === total;
    console.log(
      ok
        ? `PASS: median sync ${syncMs.median} ms ≤ ${TARGET_RATIO} × raw signal round trip ${rawMs.median} ms (ratio ${ratio}); p99 ${syncMs.p99} ms`
        : `FAIL: ratio ${ratio} (target ≤ ${TARGET_RATIO}), ${synced}/${total} accounts synced`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    if (baseline) {
      baseline.worker.shutdown();
      await baseline.running;
      await baseline.connection.close();
    }
    await Promise.all(processes.map((p) => p.stop()));
    certServer.close();
    sqs.destroy();
    await temporal.connection.close();
    await mongo.close();
    await Promise.all(servers.map((s) => s.stop()));
    // A failed run keeps its servers' and processes' logs for a look.
    if (process.exitCode === 0) rmSync(runDir, { recursive: true, force: true });
    else console.error(`logs kept in ${runDir}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
