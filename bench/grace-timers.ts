/**
 * bench/grace-timers: CANCELLATIONS subscriptions cancelled at once, so that as
 * many subscription workflows wait on their grace-period timer together; then
 * every timer fires and the deployments each cancellation stopped are deleted.
 *
 *   node dist/bench/grace-timers.js [CANCELLATIONS=10000] [GRACE_MINUTES=60]
 *
 * The real worker (dist/worker/main.js) runs against FerretDB and a Temporal
 * dev server started here, and calls the platform's deployment API, which is a
 * recording server in this process (bench/recording-platform.ts). Each
 * customer is linked and paying through AWS Marketplace, as its workflow last
 * saved it, with a running trial deployment, a running production one, every
 * other customer a second running one and every third an old deployment
 * somebody else stopped; one in a hundred more customers keeps paying. Each
 * cancelled customer gets AWS's unsubscribe-success, signalled as the poller
 * hands it over (clients/subscription-client.ts); the grace period, which the
 * starter passes in the workflow's input, is shortened to GRACE_MINUTES.
 *
 * The grace period must outlast the intake: the bench checks that every
 * workflow showed itself in its grace period (its BillingStatus search
 * attribute) at the same moment, before the first timer fired.
 * Target: the worker's peak RSS (VmHWM) under 1 GiB, every timer fired, every
 * deployment a cancellation stopped deleted by exactly one call, and no call
 * at all on a trial, on a deployment somebody else stopped, or on a paying
 * customer's. Its ratio is peak RSS / 1 GiB. Worker variables set in the
 * bench's environment (WORKER_MAX_CACHED_WORKFLOWS, say) are passed on.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Collection, Db, Document } from 'mongodb';
import { signalAwsEvent, type SubscriptionTarget } from '../clients/subscription-client';
import type { SubscriptionRef } from '../domain/subscription-identity';
import type { SubscriptionEvent, SubscriptionSnapshot } from '../domain/subscription-model';
import { freePort, portOpen, waitFor } from '../infra/processes';
import { repoRoot } from '../infra/paths';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { connectMongo } from '../lib/mongo';
import { accountsOf, type AccountDoc } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import {
  cancellationsOf,
  customerKey,
  marketplaceCustomersOf,
  marketplaceLinksOf,
  type MarketplaceCustomerDoc,
  type MarketplaceLinkDoc,
} from '../lib/store/marketplace';
import { subscriptionsOf, type SubscriptionDoc } from '../lib/store/subscriptions';
import { connectClient } from '../lib/temporal';
import { sumOfSeries } from '../poller/metrics';
import { loadWorkerConfig } from '../worker/config';
import { cpuMeter, peakRssMb, rssMb } from './process-stats';
import {
  startRecordingPlatform,
  typicalDeployments,
  type PlatformCall,
  type PlatformDeployment,
} from './recording-platform';

const GIB_MB = 1024;
const TASK_QUEUE = 'bench-grace-timers';
const PRODUCT = 'bench-grace-product';
const DAY_MS = 86_400_000;
/** As many hand-offs at a time as the poller makes (POLLER_MAX_IN_FLIGHT's default). */
const SIGNALS_IN_FLIGHT = 50;
/** A hand-off Temporal did not answer in time is made again, as the poller's message would be redelivered. */
const HAND_OFF_ATTEMPTS = 5;
/**
 * FerretDB 1.24 on SQLite deadlocks once 100 updates run at once: each holds one of its 100 SQLite connections for
 * its read while it waits for a second one to write. The driver's default pool is 100; below half, every update in
 * flight can take its second connection.
 */
const WORKER_STORE_POOL = 40;
/** Worker settings a run may vary, passed on when set. */
const WORKER_PASS_THROUGH = /^WORKER_/;
/** Node's own options for the worker process alone (`--max-old-space-size=…`, say), not for this one. */
const WORKER_NODE_OPTIONS = process.env.BENCH_WORKER_NODE_OPTIONS;

interface Customer {
  index: number;
  ref: SubscriptionRef;
  key: string;
  accountId: string;
  deployments: PlatformDeployment[];
}

/** What a cancellation stops, and deletes once its grace period is over: every running deployment but the trial. */
const isToStop = (d: PlatformDeployment) => d.plan === 'standard' && d.state === 'running';

function customer(index: number): Customer {
  const ref: SubscriptionRef = {
    awsAccountId: String(300_000_000_000 + index),
    productCode: PRODUCT,
    licenseArn: `arn:aws:license-manager::111122223333:license/l-grace${index}`,
  };
  const accountId = `acct-grace-${index}`;
  const deployments = typicalDeployments(index, accountId);
  return { index, ref, key: customerKey(ref), accountId, deployments };
}

async function insertInChunks<T extends Document>(collection: Collection<T>, docs: T[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 1000) await collection.insertMany(docs.slice(i, i + 1000) as never[]);
}

/** What the store holds for a customer linked and billed through AWS Marketplace, as its workflow saved it. */
async function seedLinkedCustomers(db: Db, customers: Customer[]): Promise<void> {
  const subscribedAt = new Date(Date.now() - DAY_MS);
  const at = subscribedAt.getTime();
  await insertInChunks(
    marketplaceCustomersOf(db),
    customers.map((c): MarketplaceCustomerDoc => ({
      _id: c.key,
      ...c.ref,
      offerType: 'standard',
      firstResolvedAt: subscribedAt,
      lastResolvedAt: subscribedAt,
    })),
  );
  await insertInChunks(
    marketplaceLinksOf(db),
    customers.map((c): MarketplaceLinkDoc => ({
      _id: c.key,
      awsAccountId: c.ref.awsAccountId,
      productCode: PRODUCT,
      accountId: c.accountId,
      state: 'active',
      reservedAt: subscribedAt,
      activatedAt: subscribedAt,
      licenseArn: c.ref.licenseArn,
    })),
  );
  await insertInChunks(
    accountsOf(db),
    customers.map((c): AccountDoc => ({
      _id: c.accountId,
      email: `${c.accountId}@bench.invalid`,
      name: c.accountId,
      paymentMethod: 'aws-marketplace',
      marketplace: {
        key: c.key,
        awsAccountId: c.ref.awsAccountId,
        productCode: PRODUCT,
        licenseArn: c.ref.licenseArn,
        linkedAt: subscribedAt,
      },
      createdAt: subscribedAt,
    })),
  );
  await insertInChunks(
    subscriptionsOf(db),
    customers.map((c): SubscriptionDoc => {
      const state: SubscriptionSnapshot = {
        ref: c.ref,
        phase: 'active',
        owner: c.accountId,
        aws: { status: 'subscribed', latestAt: at, periodStartedAt: at },
        seen: [],
        handledPeriodAt: at,
        history: [],
      };
      return { _id: c.key, state, accountId: c.accountId, phase: 'active', version: 1, updatedAt: subscribedAt };
    }),
  );
}

/** The worker logs at warn: each kind of line (a retried activity, a timeout), with how often it came. */
function logSummary(path: string): Record<string, number> {
  const kinds = new Map<string, number>();
  for (const line of readFileSync(path, 'utf8').split('\n').filter(Boolean)) {
    let message: string;
    try {
      const entry = JSON.parse(line) as { msg?: string; activityType?: string };
      message = `${String(entry.msg).slice(0, 100)}${entry.activityType ? ` (${entry.activityType})` : ''}`;
    } catch {
      message = line.slice(0, 100);
    }
    kinds.set(message, (kinds.get(message) ?? 0) + 1);
  }
  return Object.fromEntries([...kinds].sort((a, b) => b[1] - a[1]).slice(0, 5));
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 10_000);
  const graceMinutes = Number(process.argv[3] ?? 60);
  if (!Number.isInteger(count) || count < 1 || !(graceMinutes > 0)) {
    throw new Error('usage: node dist/bench/grace-timers.js [CANCELLATIONS=10000] [GRACE_MINUTES=60]');
  }
  const graceMs = Math.round(graceMinutes * 60_000);
  const payingCount = Math.max(1, Math.floor(count / 100));
  const cancelled = Array.from({ length: count }, (_, i) => customer(i));
  const paying = Array.from({ length: payingCount }, (_, i) => customer(count + i));
  const everyone = [...cancelled, ...paying];
  const toDelete = new Set(cancelled.flatMap((c) => c.deployments.filter(isToStop).map((d) => d.id)));

  const runDir = mkdtempSync(join(tmpdir(), 'bench-grace-timers-'));
  const metricsPort = await freePort();
  const { servers, ferretDb, temporalServer, mongoUri, temporalAddress } = await startBenchServers(runDir);
  const mongo = await connectMongo(mongoUri, 'bench_grace_timers');
  await ensureIndexes(mongo.db);
  const token = randomBytes(24).toString('hex');
  const platform = await startRecordingPlatform(
    everyone.flatMap((c) => c.deployments),
    token,
  );
  const temporal = await connectClient({
    address: temporalAddress,
    namespace: 'bench',
    taskQueue: TASK_QUEUE,
  });
  let worker: ReturnType<typeof spawn> | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    console.log(`seeding ${count} linked customers to cancel and ${payingCount} that keep paying…`);
    const seedStarted = Date.now();
    await seedLinkedCustomers(mongo.db, everyone);
    console.log(`seeded in ${seconds(Date.now() - seedStarted)} s`);

    const workerLog = join(runDir, 'worker.log');
    worker = spawn(join(repoRoot, 'node_modules', '.bin', 'node'), [join(repoRoot, 'dist', 'worker', 'main.js')], {
      env: {
        PATH: process.env.PATH,
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => WORKER_PASS_THROUGH.test(name))),
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: 'bench',
        TEMPORAL_TASK_QUEUE: TASK_QUEUE,
        MONGODB_URI: `${mongoUri}?maxPoolSize=${WORKER_STORE_POOL}`,
        MONGODB_DATABASE: 'bench_grace_timers',
        DEPLOYMENTS_API_URL: platform.url,
        DEPLOYMENTS_API_TOKEN: token,
        // Only a replaced workflow's migration reads it; the starters pass the same in the workflow's input.
        CANCELLATION_GRACE_SECONDS: String(Math.ceil(graceMs / 1000)),
        METERING_SCHEDULE: 'false',
        RETENTION_SCHEDULE: 'false',
        WORKER_METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'warn',
        ...(WORKER_NODE_OPTIONS ? { NODE_OPTIONS: WORKER_NODE_OPTIONS } : {}),
      },
      stdio: ['ignore', openSync(workerLog, 'w'), 'inherit'],
    });
    stopWhenInterrupted(worker);
    const child = worker;
    const pid = child.pid!;
    const alive = () => child.exitCode === null && child.signalCode === null;
    await waitFor('the worker', () => portOpen(metricsPort), 60_000, alive);
    await sleep(2000);
    const idleRssMb = rssMb(pid);
    let sampledPeakMb = idleRssMb;
    sampler = setInterval(() => {
      sampledPeakMb = Math.max(sampledPeakMb, rssMb(pid));
    }, 500);
    // What each workflow shows operators; the dev server's visibility store answers a count without the store.
    const showing = async (status: string) =>
      (await temporal.workflow.count(`WorkflowType = 'subscription' AND BillingStatus = '${status}'`)).count;
    const progress = (what: string) => console.log(`  ${what}, worker RSS ${rssMb(pid).toFixed(0)} MB`);

    // 1. Every subscription cancelled at once, as the poller hands over AWS's unsubscribe-success.
    const target: SubscriptionTarget = {
      temporal,
      taskQueue: TASK_QUEUE,
      settings: { syncTimeoutMs: 3_600_000, gracePeriodMs: graceMs },
    };
    const processes = { temporal: temporalServer.child.pid, ferretdb: ferretDb.child.pid, worker: pid };
    const intakeCpu = cpuMeter(processes);
    const firstSignalAt = Date.now();
    let next = 0;
    let handOffRetries = 0;
    const handOff = async () => {
      while (next < cancelled.length) {
        const c = cancelled[next++]!;
        const event: SubscriptionEvent = {
          id: `bench-unsubscribe-success-${c.index}`,
          action: 'unsubscribe-success',
          sentAt: new Date().toISOString(),
          productCode: PRODUCT,
          licenseArn: c.ref.licenseArn,
        };
        // The same event again after a failure, as a redelivered message would be: the workflow deduplicates it.
        for (let attempt = 1; ; attempt++) {
          try {
            await signalAwsEvent(target, c.ref, event);
            break;
          } catch (error) {
            if (attempt === HAND_OFF_ATTEMPTS) throw error;
            handOffRetries++;
            await sleep(1000 * attempt);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: SIGNALS_IN_FLIGHT }, handOff));
    const lastAcceptedAt = Date.now();
    console.log(`${count} cancellations accepted in ${seconds(lastAcceptedAt - firstSignalAt)} s`);

    // 2. Until the first timer fires: how many wait in their grace period at once.
    const deleteCalls = () => platform.calls.filter((c) => c.operation === 'delete');
    let waitingAtOnce = 0;
    let allWaitingAt: number | undefined;
    let rssAllWaitingMb: number | undefined;
    let lastProgress = Date.now();
    while (deleteCalls().length === 0 && Date.now() < firstSignalAt + graceMs + 60_000 && alive()) {
      const waiting = await showing('grace-period');
      // A deletion may have begun while Temporal answered; only a count from before the first one counts.
      if (deleteCalls().length > 0) break;
      waitingAtOnce = Math.max(waitingAtOnce, waiting);
      if (waiting === count) {
        allWaitingAt = Date.now();
        rssAllWaitingMb = rssMb(pid);
        break;
      }
      if (Date.now() - lastProgress > 30_000) {
        lastProgress = Date.now();
        progress(`${waiting} of ${count} waiting on their timer`);
      }
      await sleep(2000);
    }
    const cpuUntilAllWaiting = intakeCpu();
    const firingCpu = cpuMeter(processes);
    console.log(
      allWaitingAt === undefined
        ? `only ${waitingAtOnce} of ${count} were waiting at once: the grace period is too short for the intake`
        : `all ${count} waiting on their timer ${seconds(allWaitingAt - firstSignalAt)} s after the first signal`,
    );
    // When each timer is due, as the Billing page shows it.
    const dues = (
      await cancellationsOf(mongo.db)
        .find({}, { projection: { deletionDueAt: 1 } })
        .toArray()
    ).flatMap((d) => (d.deletionDueAt ? [d.deletionDueAt.getTime()] : []));
    const firstDueAt = dues.length > 0 ? dues.reduce((a, b) => Math.min(a, b)) : undefined;
    const lastDueAt = dues.length === count ? dues.reduce((a, b) => Math.max(a, b)) : undefined;

    // 3. Every timer fires: every deletion, then every workflow showing its end. A run that misses a deadline reports.
    const deleted = () => new Set(deleteCalls().flatMap((c) => (c.outcome === 'deleted' ? [c.target] : []))).size;
    const until = async (check: () => Promise<boolean>, deadline: number) => {
      for (;;) {
        if (await check()) return true;
        if (Date.now() > deadline || !alive()) return false;
        await sleep(1000);
      }
    };
    lastProgress = 0;
    const allDeleted = await until(
      async () => {
        if (Date.now() - lastProgress > 30_000) {
          lastProgress = Date.now();
          progress(`${deleted()} of ${toDelete.size} deleted`);
        }
        return deleted() >= toDelete.size;
      },
      (lastDueAt ?? Date.now() + graceMs) + Math.max(600_000, count * 200),
    );
    const allDeletedAt = deleteCalls().reduce((last, c) => Math.max(last, c.at), 0);
    const allShowEnd =
      allDeleted && (await until(async () => (await showing('deleted')) === count, Date.now() + 600_000));
    // Anything repeated (a retried activity, a timer firing twice) would arrive meanwhile.
    await sleep(5000);
    clearInterval(sampler);
    sampler = undefined;
    const peakMb = peakRssMb(pid);
    const cpuWaitingAndFiring = firingCpu();
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

    // What the platform saw, and what the store says.
    const callsOn = (operation: PlatformCall['operation']) => {
      const byTarget = new Map<string, number>();
      for (const c of platform.calls)
        if (c.operation === operation) byTarget.set(c.target, (byTarget.get(c.target) ?? 0) + 1);
      return byTarget;
    };
    const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);
    const deletes = callsOn('delete');
    const stops = callsOn('stop');
    const lists = callsOn('list');
    const deletedOnce = [...toDelete].filter((id) => deletes.get(id) === 1 && platform.stateOf(id) === 'deleted');
    const stoppedOnce = [...toDelete].filter((id) => stops.get(id) === 1);
    const kept = everyone.flatMap((c) => c.deployments.filter((d) => !toDelete.has(d.id)));
    const keptTouched = kept.filter((d) => stops.has(d.id) || deletes.has(d.id) || platform.stateOf(d.id) !== d.state);
    const payingListed = paying.filter((c) => lists.has(c.accountId)).length;
    const savedDeleted = await subscriptionsOf(mongo.db).countDocuments({ phase: 'deleted' });
    const billingEnded = await accountsOf(mongo.db).countDocuments({ paymentMethod: 'none' });
    const stillPaying = await accountsOf(mongo.db).countDocuments({ paymentMethod: 'aws-marketplace' });
    const metric = (name: string) => sumOfSeries(metrics, name);

    const report = {
      cancellations: count,
      payingCustomers: payingCount,
      graceMinutes,
      workerMaxCachedWorkflows: loadWorkerConfig({
        WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS,
      }).maxCachedWorkflows,
      workerNodeOptions: WORKER_NODE_OPTIONS ?? null,
      cancellationsAcceptedSeconds: seconds(lastAcceptedAt - firstSignalAt),
      handOffRetries,
      waitingOnTimerAtOnce: waitingAtOnce,
      everyDeletionDone: allDeleted,
      everyWorkflowShowsItsEnd: allShowEnd,
      allWaitingAfterSeconds: allWaitingAt === undefined ? null : seconds(allWaitingAt - firstSignalAt),
      lastAcceptedToAllDeletedSeconds: seconds(allDeletedAt - lastAcceptedAt),
      firstTimerDueToLastDeletionSeconds: firstDueAt === undefined ? null : seconds(allDeletedAt - firstDueAt),
      timersDueSpreadSeconds:
        firstDueAt === undefined || lastDueAt === undefined ? null : seconds(lastDueAt - firstDueAt),
      lastDeletionAfterLastDueSeconds: lastDueAt === undefined ? null : seconds(allDeletedAt - lastDueAt),
      toDelete: toDelete.size,
      deletedByExactlyOneCall: deletedOnce.length,
      deleteCalls: total(deletes),
      stoppedByExactlyOneCall: stoppedOnce.length,
      stopCalls: total(stops),
      keptDeploymentsTouched: keptTouched.length,
      payingAccountsListed: payingListed,
      workflowsSavedDeleted: savedDeleted,
      accountsBillingEnded: billingEnded,
      accountsStillPaying: stillPaying,
      workerIdleRssMb: Math.round(idleRssMb),
      workerRssAllWaitingMb: rssAllWaitingMb === undefined ? null : Math.round(rssAllWaitingMb),
      workerPeakRssMb: Math.round(peakMb),
      workerSampledPeakRssMb: Math.round(sampledPeakMb),
      stickyCache: {
        hits: metric('temporal_sticky_cache_hit'),
        misses: metric('temporal_sticky_cache_miss'),
        forcedEvictions: metric('temporal_sticky_cache_total_forced_eviction'),
      },
      workerLog: logSummary(workerLog),
      cpuSecondsUntilAllWaiting: cpuUntilAllWaiting,
      cpuSecondsWaitingAndFiring: cpuWaitingAndFiring,
      ratioPeakRssToLimit: Number((peakMb / GIB_MB).toFixed(3)),
    };
    console.log(JSON.stringify(report, null, 2));
    const ok =
      peakMb < GIB_MB &&
      waitingAtOnce === count &&
      allShowEnd &&
      deletedOnce.length === toDelete.size &&
      total(deletes) === toDelete.size &&
      stoppedOnce.length === toDelete.size &&
      total(stops) === toDelete.size &&
      keptTouched.length === 0 &&
      payingListed === 0 &&
      savedDeleted === count &&
      billingEnded === count &&
      stillPaying === payingCount;
    console.log(
      ok
        ? `PASS: ${count} timers pending at once, all fired, each deletion exactly once, nothing else touched, peak RSS < 1 GiB`
        : 'FAIL: see the figures above',
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    if (sampler) clearInterval(sampler);
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      const running = worker;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      // A graceful shutdown waits for the activities in flight; one stuck on a store that stopped answering never ends.
      const stuck = setTimeout(() => running.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(stuck);
    }
    await temporal.connection.close();
    await platform.close();
    await mongo.close();
    for (const server of servers) await server.stop();
    rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
