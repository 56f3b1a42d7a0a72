/**
 * bench/metering: meters N customers × 2 dimensions for one hour, through the
 * real worker (a child process) and the hourlyMetering workflow on a Temporal
 * dev server, against the sandbox with its quota at 10 requests per second.
 *
 *   node dist/bench/metering.js [N=10000]
 *
 * The baseline, measured in the same run, is the quota floor: the fewest calls
 * possible (ceil(records / 25)) at 10 per second. Target: wall / floor ≤ 1.15.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../infra/processes';
import { repoRoot } from '../infra/paths';
import { startFerretDb, startTemporalDevServer } from '../infra/servers';
import { bulkWriteInChunks, connectMongo } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { meteringHoursOf } from '../lib/store/metering-ledger';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { usageFor } from '../lib/store/usage-generator';
import { connectClient } from '../lib/temporal';
import { buildSandbox } from '../sandbox/app';
import type { SandboxCustomer } from '../sandbox/store';
import { hourlyMetering } from '../workflows/metering/hourly-metering';

const QUOTA_RPS = 10;
const PER_CALL = 25;

function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Number(line?.replace(/\D+/g, '') ?? 0) / 1024;
}

async function main(): Promise<void> {
  const customers = Number(process.argv[2] ?? 10_000);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-metering-'));
  const [mongoPort, temporalPort] = await Promise.all([freePort(), freePort()]);
  const servers = await Promise.all([
    startFerretDb({ port: mongoPort, dataDir: join(runDir, 'ferretdb'), logDir: runDir }),
    startTemporalDevServer({
      port: temporalPort,
      dbFile: join(runDir, 'temporal.sqlite'),
      namespace: 'bench',
      logDir: runDir,
    }),
  ]);
  const mongoUri = `mongodb://127.0.0.1:${mongoPort}/`;
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
  await bulkWriteInChunks(
    meteringHoursOf(service.db),
    others.map((h) => ({
      insertOne: {
        document: {
          _id: h,
          state: 'complete' as const,
          customers: 0,
          records: 0,
          conflicts: 0,
          notSubscribed: 0,
          at: new Date(),
        },
      },
    })),
  );
  console.log(`seeded in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);

  const taskQueue = 'bench-metering';
  const worker = spawn(join(repoRoot, 'node_modules', '.bin', 'node'), [join(repoRoot, 'dist', 'worker', 'main.js')], {
    env: {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      TEMPORAL_NAMESPACE: 'bench',
      TEMPORAL_TASK_QUEUE: taskQueue,
      MONGODB_URI: mongoUri,
      MONGODB_DATABASE: 'bench_service',
      AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandboxUrl,
      METERING_RATE_PER_SECOND: String(QUOTA_RPS),
      METERING_SCHEDULE: 'false',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const temporal = await connectClient({ address: `127.0.0.1:${temporalPort}`, namespace: 'bench', taskQueue });
  try {
    const started = Date.now();
    const progress = await temporal.workflow.execute(hourlyMetering, {
      taskQueue,
      workflowId: `bench-${started}`,
      args: [{}],
    });
    const wallSeconds = (Date.now() - started) / 1000;
    const rssMb = peakRssMb(worker.pid!);
    const calls = await sandbox.store.calls.find({ operation: 'BatchMeterUsage' }).toArray();
    const accepted = await sandbox.store.usage.countDocuments();
    const records = customers * 2;
    const minimumCalls = Math.ceil(records / PER_CALL);
    const okCalls = calls.filter((c) => c.outcome === 'ok').length;
    const throttled = calls.filter((c) => c.outcome === 'ThrottlingException').length;
    const duplicates = calls.reduce((n, c) => n + (c.statuses?.DuplicateRecord ?? 0), 0);
    const floorSeconds = minimumCalls / QUOTA_RPS;
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
      duplicatesSent: duplicates,
      workerPeakRssMb: Number(rssMb.toFixed(0)),
      workflow: { recordsSent: progress.recordsSent, failed: progress.failed.length, conflicts: progress.conflicts },
    };
    console.log(JSON.stringify(report, null, 2));
    const ok = okCalls === minimumCalls && accepted === records && duplicates === 0 && report.ratioToFloor <= 1.15;
    console.log(ok ? 'PASS: calls = ceil(records/25), no duplicates, ratio ≤ 1.15' : 'FAIL: see the figures above');
    process.exitCode = ok ? 0 : 1;
  } finally {
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
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
