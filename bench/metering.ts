/**
 * bench/metering: meters N customers × 2 dimensions for one hour, through the
 * real worker (a child process) and the hourlyMetering workflow on a Temporal
 * dev server, against the sandbox with its quota at 10 requests per second.
 *
 *   node dist/bench/metering.js [N=10000] [WORKERS=1]
 *
 * With WORKERS > 1, as many worker processes share the one quota: the calls'
 * task queue is paced by the Temporal server, not per process. The clock starts
 * once every worker polls both of its queues.
 *
 * The baseline, measured in the same run, is the quota floor: the fewest calls
 * possible (ceil(records / 25)) at 10 per second. Target: wall / floor ≤ 1.15.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../infra/paths';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { bulkWriteInChunks, connectMongo } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { markHoursMetered } from '../lib/store/metering-ledger';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { usageFor } from '../lib/store/usage-generator';
import { connectClient } from '../lib/temporal';
import { meteringCallsTaskQueue } from '../domain/task-queues';
import { temporal as proto } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSandbox } from '../sandbox/app';
import type { SandboxCustomer } from '../sandbox/store';
import { hourlyMetering } from '../workflows/metering/hourly-metering';
import { peakRssMb } from './process-stats';

const QUOTA_RPS = 10;
const PER_CALL = 25;

/** Until every worker polls its workflow queue and the metering calls' queue. */
async function allPolling(client: Client, taskQueue: string, workers: number): Promise<void> {
  const pollers = async (name: string, type: proto.api.enums.v1.TaskQueueType) =>
    (
      await client.workflowService.describeTaskQueue({
        namespace: 'bench',
        taskQueue: { name },
        taskQueueType: type,
      })
    ).pollers?.length ?? 0;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(200)) {
    const [workflows, calls] = await Promise.all([
      pollers(taskQueue, proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
      pollers(meteringCallsTaskQueue(taskQueue), proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ]);
    if (workflows >= workers && calls >= workers) return;
  }
  throw new Error(`the ${workers} worker(s) did not all start polling within 2 minutes`);
}

async function main(): Promise<void> {
  const customers = Number(process.argv[2] ?? 10_000);
  const workerCount = Number(process.argv[3] ?? 1);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-metering-'));
  const { servers, mongoUri, temporalAddress } = await startBenchServers(runDir);
  const service = await connectMongo(mongoUri, 'bench_service');
  const sandboxDb = await connectMongo(mongoUri, 'bench_sandbox');
  await ensureIndexes(service.db);
  const productCode = 'bench-product';
  const sandbox = await buildSandbox({
    db: sandboxDb.db,
    productCode,
    registrationUrl: 'http://127.0.0.1:9/',
    quotaRps: QUOTA_RPS,
    tokenTtlSeconds: 60,
    region: 'us-east-1',
  });
  const sandboxUrl = await sandbox.app.listen({ host: '127.0.0.1', port: 0 });

  const hour = hourStart(Date.now() - HOUR_MS);
  console.log(`seeding ${customers} subscribed customers with usage for ${hour.toISOString()}…`);
  const seeded = Date.now();
  const docs: SandboxCustomer[] = Array.from({ length: customers }, (_, i) => ({
    _id: `bench-${i}`,
    model: 'account',
    customerAwsAccountId: String(100_000_000_000 + i),
    productCode,
    licenseArn: `arn:aws:license-manager::123456789012:license:l-bench${i}`,
    offerId: 'offer-bench',
    freeTrial: false,
    status: 'subscribed',
    createdAt: new Date(),
  }));
  await bulkWriteInChunks(
    sandbox.store.customers,
    docs.map((doc) => ({ insertOne: { document: doc } })),
  );
  await bulkWriteInChunks(
    marketplaceLinksOf(service.db),
    docs.map((c) => ({
      insertOne: {
        document: {
          _id: `${c.customerAwsAccountId}:${productCode}`,
          awsAccountId: c.customerAwsAccountId,
          productCode,
          accountId: `acct-${c._id}`,
          state: 'active' as const,
          reservedAt: new Date(hour.getTime() - 2 * HOUR_MS),
          activatedAt: new Date(hour.getTime() - HOUR_MS),
          licenseArn: c.licenseArn,
        },
      },
    })),
  );
  // Nine in ten customers used the platform that hour; the others get a record of 0.
  const usage = docs.flatMap((c, i) =>
    i % 10 === 9
      ? []
      : [usageFor({ _id: `dep-${c._id}`, accountId: `acct-${c._id}`, plan: 'standard', state: 'running' }, hour)!],
  );
  await bulkWriteInChunks(
    usageOf(service.db),
    usage.map((doc) => ({ insertOne: { document: doc } })),
  );
  const others = Array.from({ length: 30 }, (_, i) => new Date(hour.getTime() - (i + 1) * HOUR_MS).toISOString());
  await markHoursMetered(service.db, others);
  console.log(`seeded in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);

  const taskQueue = 'bench-metering';
  const workers = Array.from({ length: workerCount }, () =>
    stopWhenInterrupted(
      spawn(join(repoRoot, 'node_modules', '.bin', 'node'), [join(repoRoot, 'dist', 'worker', 'main.js')], {
        env: {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: temporalAddress,
          TEMPORAL_NAMESPACE: 'bench',
          TEMPORAL_TASK_QUEUE: taskQueue,
          MONGODB_URI: mongoUri,
          MONGODB_DATABASE: 'bench_service',
          AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandboxUrl,
          METERING_SCHEDULE: 'false',
          RETENTION_SCHEDULE: 'false',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    ),
  );
  const temporal = await connectClient({ address: temporalAddress, namespace: 'bench', taskQueue });
  try {
    await allPolling(temporal, taskQueue, workerCount);
    const started = Date.now();
    const progress = await temporal.workflow.execute(hourlyMetering, {
      taskQueue,
      workflowId: `bench-${started}`,
      args: [{}],
    });
    const wallSeconds = (Date.now() - started) / 1000;
    const rssMb = Math.max(...workers.map((worker) => peakRssMb(worker.pid)));
    const calls = await sandbox.store.calls.find({ operation: 'BatchMeterUsage' }).toArray();
    const accepted = await sandbox.store.usage.countDocuments();
    const records = customers * 2;
    const minimumCalls = Math.ceil(records / PER_CALL);
    const okCalls = calls.filter((c) => c.outcome === 'ok').length;
    const throttled = calls.filter((c) => c.outcome === 'ThrottlingException').length;
    const duplicates = calls.reduce((n, c) => n + (c.statuses?.DuplicateRecord ?? 0), 0);
    const floorSeconds = minimumCalls / QUOTA_RPS;
    // Where the time went: before the first call (planning the hour), and from the first call to the last.
    const times = calls.map((c) => new Date(c.at).getTime()).sort((a, b) => a - b);
    const firstCallSeconds = ((times[0] ?? started) - started) / 1000;
    const sendingSeconds = ((times.at(-1) ?? started) - (times[0] ?? started)) / 1000;
    // The most calls AWS saw in any one second: what a quota measured per second would count.
    let peakPerSecond = 0;
    let peakAt = 0;
    for (let i = 0, j = 0; i < times.length; i += 1) {
      while (times[i]! - times[j]! >= 1000) j += 1;
      if (i - j + 1 > peakPerSecond) [peakPerSecond, peakAt] = [i - j + 1, times[j]! - (times[0] ?? 0)];
    }
    const throttledAt = calls
      .filter((c) => c.outcome === 'ThrottlingException')
      .map((c) => Number(((new Date(c.at).getTime() - (times[0] ?? 0)) / 1000).toFixed(1)));
    const report = {
      customers,
      records,
      accepted,
      batchMeterUsageCalls: okCalls,
      expectedCalls: minimumCalls,
      throttledCalls: throttled,
      wallSeconds: Number(wallSeconds.toFixed(1)),
      quotaFloorSeconds: floorSeconds,
      ratioToFloor: Number((wallSeconds / floorSeconds).toFixed(3)),
      firstCallAfterSeconds: Number(firstCallSeconds.toFixed(1)),
      sendingSeconds: Number(sendingSeconds.toFixed(1)),
      peakCallsInOneSecond: peakPerSecond,
      peakSecondStartsAfterFirstCallSeconds: Number((peakAt / 1000).toFixed(1)),
      throttledAfterFirstCallSeconds: throttledAt,
      duplicatesSent: duplicates,
      workers: workerCount,
      workerPeakRssMb: Number(rssMb.toFixed(0)),
      workflow: { recordsSent: progress.recordsSent, failed: progress.failed, conflicts: progress.conflicts },
    };
    console.log(JSON.stringify(report, null, 2));
    // One worker: the target for 10,000 customers; several share the quota and may lose a little to it.
    const target = workerCount === 1 && customers <= 10_000 ? 1.1 : 1.15;
    const ok =
      okCalls === minimumCalls &&
      accepted === records &&
      duplicates === 0 &&
      throttled === 0 &&
      report.ratioToFloor <= target;
    console.log(
      ok
        ? `PASS: calls = ceil(records/25), no duplicates, no throttling, ratio ≤ ${target}`
        : `FAIL (target: exact calls, 0 duplicates, 0 throttled, ratio ≤ ${target}): see the figures above`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await Promise.all(
      workers.map((worker) => {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGTERM');
        return exited;
      }),
    );
    await temporal.connection.close();
    await sandbox.app.close();
    await sandboxDb.close();
    await service.close();
    for (const server of servers) await server.stop();
    rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
