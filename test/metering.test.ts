/**
 * Hourly metering against the Marketplace sandbox on the real stack: the
 * hourlyMetering workflow on the Temporal dev server, its activities on
 * FerretDB, BatchMeterUsage over the real AWS protocol. The sandbox's own
 * ledger and call log are the evidence of what AWS received.
 */
import { emptyProgress } from '../workflows/metering/progress';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createActivities } from '../activities';
import { createUsageMeteringClient } from '../lib/aws';
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { customerKey, marketplaceLinksOf } from '../lib/store/marketplace';
import { ledgerKey, ledgerOf, ledgerResultsOf, meteringHoursOf } from '../lib/store/metering-ledger';
import { meteringModelsOf } from '../lib/store/metering-models';
import { HOUR_MS } from '../lib/store/usage';
import { meteringProgressQuery } from '../workflows/metering/hourly-metering';
import { ensureMeteringSchedule, METERING_SCHEDULE_ID } from '../worker/metering-schedule';
import { startMeteringStack, type MeteringStack } from './helpers/metering-stack';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

const ONE_DIMENSION = { dimensions: { session_hours: 'session_hours' } };

describe('hourly metering against the sandbox', () => {
  let stack: MeteringStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  /** Every (customer, dimension, hour) the sandbox holds, with how many times AWS accepted it. */
  const acceptedOnce = async (s: MeteringStack) => {
    const usage = await s.usage();
    const keys = usage.map((u) => `${u.customerId}|${u.dimension}|${u.hour}`);
    return { records: usage.length, distinct: new Set(keys).size };
  };

  it.each([
    [25, 1],
    [26, 2],
    [50, 2],
  ])('sends %i records in %i BatchMeterUsage calls', async (records, calls) => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(records, { usage: (i) => ({ session_hours: i + 1 }) });
    await stack.onlyDue(stack.lastHour);
    const progress = await stack.run();
    expect(progress).toMatchObject({
      hoursDone: [stack.lastHour.toISOString()],
      recordsSent: records,
      conflicts: 0,
      failed: [],
    });
    expect((await stack.batchCalls()).calls).toBe(calls);
    expect(await acceptedOnce(stack)).toEqual({ records, distinct: records });
    expect(await meteringHoursOf(stack.mongo.db).findOne({ _id: stack.lastHour.toISOString() })).toMatchObject({
      state: 'complete',
      records,
    });
  });

  it('sends a record of 0 for a customer without usage, and rounds started units up', async () => {
    stack = await startMeteringStack();
    const [idle, busy] = await stack.addCustomers(2, {
      usage: (i) => (i === 1 ? { session_hours: 2.2, traffic_gb: 0.4 } : undefined),
    });
    await stack.onlyDue(stack.lastHour);
    await stack.run();
    const usage = await stack.usage();
    const of = (id: string, dimension: string) =>
      usage.find((u) => u.customerId === id && u.dimension === dimension)?.quantity;
    expect([of(idle!._id, 'session_hours'), of(idle!._id, 'traffic_gb')]).toEqual([0, 0]);
    expect([of(busy!._id, 'session_hours'), of(busy!._id, 'traffic_gb')]).toEqual([3, 1]);
  });

  it('keeps the two identifier models apart in one hour', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(3, { model: 'account', usage: () => ({ session_hours: 1 }) });
    await stack.addCustomers(2, { model: 'legacy', usage: () => ({ session_hours: 1 }) });
    await stack.onlyDue(stack.lastHour);
    const progress = await stack.run();
    expect(progress.recordsSent).toBe(5);
    // One call per model: legacy records go with the call's ProductCode, the others with LicenseArn.
    expect(await stack.batchCalls()).toMatchObject({ calls: 2, outcomes: { ok: 2 }, statuses: { Success: 5 } });
  });

  it('retries UnprocessedRecords until each record is accepted exactly once', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(30, { usage: () => ({ session_hours: 4 }) });
    await stack.onlyDue(stack.lastHour);
    await stack.sandbox.control('POST', '/control/faults', {
      operation: 'BatchMeterUsage',
      fault: 'unprocessed',
      count: 12,
    });
    const progress = await stack.run();
    expect(progress).toMatchObject({ recordsSent: 30, failed: [] });
    expect(await acceptedOnce(stack)).toEqual({ records: 30, distinct: 30 });
    expect((await stack.batchCalls()).calls).toBeGreaterThan(2);
  });

  it('rides out a throttling storm and still sends every record exactly once', async () => {
    stack = await startMeteringStack({ config: { ...ONE_DIMENSION, pageSize: 20 } });
    await stack.addCustomers(60, { usage: (i) => ({ session_hours: i }) });
    await stack.onlyDue(stack.lastHour);
    await stack.sandbox.control('PUT', '/control/faults', [
      { operation: 'BatchMeterUsage', fault: 'throttle', count: 10 },
      { operation: 'BatchMeterUsage', fault: 'internal', count: 3, probability: 0.5 },
    ]);
    const progress = await stack.run();
    expect(progress).toMatchObject({ recordsSent: 60, conflicts: 0, failed: [] });
    const calls = await stack.batchCalls();
    expect(calls.outcomes.ThrottlingException).toBe(10);
    expect(calls.statuses.DuplicateRecord ?? 0).toBe(0);
    expect(await acceptedOnce(stack)).toEqual({ records: 60, distinct: 60 });
  });

  it('sends nothing again when the same hour is metered again', async () => {
    stack = await startMeteringStack();
    await stack.addCustomers(5, { usage: () => ({ session_hours: 1, traffic_gb: 2 }) });
    await stack.onlyDue(stack.lastHour);
    await stack.run();
    const first = await stack.batchCalls();
    // Usage that arrives late changes nothing either: the first quantity is frozen in the ledger.
    await stack.mongo.db.collection('usage').updateMany({}, { $inc: { 'quantities.session_hours': 5 } });
    const again = await stack.run({ hours: [stack.lastHour.toISOString()] });
    expect(again).toMatchObject({
      recordsSent: 0,
      conflicts: 0,
      failed: [],
      hoursDone: [stack.lastHour.toISOString()],
    });
    expect(await stack.batchCalls()).toEqual(first);
    expect(await acceptedOnce(stack)).toEqual({ records: 10, distinct: 10 });
  });

  it('sends an identical record, never a conflicting one, when the answers were lost in a crash', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(4, { usage: (i) => ({ session_hours: i + 1 }) });
    await stack.onlyDue(stack.lastHour);
    await stack.run();
    const before = await stack.usage();
    // As if the worker died after AWS accepted the calls but before it wrote the answers; usage moved on meanwhile.
    await ledgerResultsOf(stack.mongo.db).deleteMany({});
    await stack.mongo.db.collection('usage').updateMany({}, { $inc: { 'quantities.session_hours': 10 } });
    const again = await stack.run({ hours: [stack.lastHour.toISOString()] });
    expect(again).toMatchObject({ recordsSent: 4, conflicts: 0 });
    const calls = await stack.batchCalls();
    expect(calls.statuses).toEqual({ Success: 8 });
    expect((await stack.usage()).map((u) => u.quantity)).toEqual(before.map((u) => u.quantity));
  });

  it('records a DuplicateRecord as a conflict for an operator and does not retry it', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    const [customer] = await stack.addCustomers(1, { usage: () => ({ session_hours: 5 }) });
    await stack.onlyDue(stack.lastHour);
    // Someone else already metered this customer and hour with another quantity.
    await stack.sandbox.metering.send(
      new BatchMeterUsageCommand({
        UsageRecords: [
          {
            CustomerAWSAccountId: customer!.customerAwsAccountId,
            LicenseArn: customer!.licenseArn,
            Dimension: 'session_hours',
            Quantity: 1,
            Timestamp: stack.lastHour,
          },
        ],
      }),
    );
    const progress = await stack.run();
    expect(progress).toMatchObject({
      conflicts: 1,
      recordsSent: 0,
      failed: [],
      hoursDone: [stack.lastHour.toISOString()],
    });
    expect(await ledgerResultsOf(stack.mongo.db).find({}).toArray()).toEqual([
      expect.objectContaining({ status: 'conflict' }),
    ]);
    expect((await stack.batchCalls()).calls).toBe(2);
  });

  it('records CustomerNotSubscribed, and a link that names no customer as rejected, while the rest of the hour is sent', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    const [gone, fine] = await stack.addCustomers(2, { usage: () => ({ session_hours: 1 }) });
    await stack.sandbox.store.setStatus(gone!._id, 'unsubscribed');
    await marketplaceLinksOf(stack.mongo.db).insertOne({
      _id: '999999999999:orphan',
      awsAccountId: '999999999999',
      productCode: 'orphan',
      accountId: 'acct-orphan',
      state: 'active',
      reservedAt: new Date(0),
      activatedAt: new Date(0),
    });
    await stack.onlyDue(stack.lastHour);
    const progress = await stack.run();
    expect(progress).toMatchObject({
      recordsSent: 1,
      notSubscribed: 1,
      rejected: 1,
      failed: [],
      hoursDone: [stack.lastHour.toISOString()],
    });
    expect((await stack.usage()).map((u) => u.customerId)).toEqual([fine!._id]);
    expect(await ledgerResultsOf(stack.mongo.db).findOne({ _id: { $regex: '^999999999999' } })).toMatchObject({
      status: 'rejected',
      error: 'NoCustomerIdentifier',
    });
  });

  it.each([
    ['customer-identifier', 'license'],
    ['license', 'customer-identifier'],
  ] as const)('bills a customer migrating from the %s model to the %s model once for an hour', async (from, to) => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    const [previous, last] = [new Date(stack.lastHour.getTime() - HOUR_MS), stack.lastHour];
    // A legacy customer: AWS names it both by CustomerIdentifier and by account + LicenseArn.
    const [customer] = await stack.addCustomers(1, {
      model: 'legacy',
      linkBy: from,
      usage: () => ({ session_hours: 3 }),
      hour: previous,
    });
    await stack.onlyDue(previous);
    expect(await stack.run()).toMatchObject({ recordsSent: 1, rejected: 0, failed: [] });
    const calls = (await stack.batchCalls()).calls;

    // The link moves to the other model, and the hour already billed is metered again (a re-run, a late retry).
    await stack.relink(customer!, to);
    const again = await stack.run({ hours: [previous.toISOString(), last.toISOString()] });
    expect(again).toMatchObject({ recordsSent: 1, rejected: 1, conflicts: 0, failed: [] });
    // One call for the next hour, under the new model; none for the hour the old model billed.
    expect((await stack.batchCalls()).calls).toBe(calls + 1);
    const usage = (await stack.usage()).filter((u) => u.customerId === customer!._id);
    expect(usage.map(({ meteredBy, hour, quantity }) => ({ meteredBy, hour, quantity }))).toEqual([
      { meteredBy: from, hour: previous.toISOString(), quantity: 3 },
      { meteredBy: to, hour: last.toISOString(), quantity: 0 },
    ]);

    const ref = { awsAccountId: customer!.customerAwsAccountId, productCode: customer!.productCode };
    const refused = ledgerKey(
      customerKey({ ...ref, ...(to === 'license' ? { licenseArn: customer!.licenseArn } : {}) }),
      { dimension: 'session_hours', hour: previous },
    );
    expect(await ledgerResultsOf(stack.mongo.db).findOne({ _id: refused })).toMatchObject({
      status: 'rejected',
      error: 'MeteringModelConflict',
    });
    expect(await meteringHoursOf(stack.mongo.db).findOne({ _id: previous.toISOString() })).toMatchObject({
      rejected: 1,
    });
    const claims = await meteringModelsOf(stack.mongo.db).find({}).sort({ _id: 1 }).toArray();
    expect(claims.map(({ _id, model }) => ({ _id, model }))).toEqual([
      { _id: `${ref.awsAccountId}:${ref.productCode}|${previous.toISOString()}`, model: from },
      { _id: `${ref.awsAccountId}:${ref.productCode}|${last.toISOString()}`, model: to },
    ]);
  });

  it('meters two concurrent agreements of one AWS account and product, each under its own license', async () => {
    stack = await startMeteringStack();
    const [first] = await stack.addCustomers(1, { usage: () => ({ session_hours: 2, traffic_gb: 5 }) });
    const [second] = await stack.addCustomers(1, {
      awsAccountId: first!.customerAwsAccountId,
      usage: () => ({ session_hours: 7, traffic_gb: 1 }),
    });
    expect(second).toMatchObject({
      customerAwsAccountId: first!.customerAwsAccountId,
      productCode: first!.productCode,
    });
    expect(second!.licenseArn).not.toBe(first!.licenseArn);
    await stack.onlyDue(stack.lastHour);

    const progress = await stack.run();
    expect(progress).toMatchObject({ recordsSent: 4, conflicts: 0, rejected: 0, failed: [] });
    expect(await stack.batchCalls()).toMatchObject({ calls: 1, outcomes: { ok: 1 }, statuses: { Success: 4 } });
    // The sandbox finds the customer by account + LicenseArn: each record reached its own license.
    const usage = await stack.usage();
    const of = (id: string) =>
      Object.fromEntries(usage.filter((u) => u.customerId === id).map((u) => [u.dimension, u.quantity]));
    expect(usage.every((u) => u.meteredBy === 'license' && u.hour === stack!.lastHour.toISOString())).toBe(true);
    expect([of(first!._id), of(second!._id)]).toEqual([
      { session_hours: 2, traffic_gb: 5 },
      { session_hours: 7, traffic_gb: 1 },
    ]);
    const entries = await ledgerOf(stack.mongo.db).find({}).toArray();
    expect(new Set(entries.map((e) => e._id)).size).toBe(4);
    expect(
      entries
        .filter((e) => e.licenseArn === second!.licenseArn)
        .map((e) => e.quantity)
        .sort(),
    ).toEqual([1, 7]);
    const results = await ledgerResultsOf(stack.mongo.db).find({}).toArray();
    expect(results).toHaveLength(4);
    expect(results.every((r) => r.status === 'sent' && r.meteringRecordId)).toBe(true);
    expect(new Set(results.map((r) => r.meteringRecordId)).size).toBe(4);
  });

  it('catches up on every hour missed while it was down, inside the window', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    const hours = [0, 1, 2, 3].map((back) => new Date(stack!.lastHour.getTime() - back * HOUR_MS));
    await stack.addCustomers(3, { usage: () => ({ session_hours: 1 }), hour: hours[3] });
    await stack.onlyDue(...hours);
    const progress = await stack.run();
    expect(progress.hoursDone.sort()).toEqual(hours.map((h) => h.toISOString()).sort());
    // Every customer, every hour: 3 customers × 4 hours, zeros included.
    expect(await acceptedOnce(stack)).toEqual({ records: 12, distinct: 12 });
  });

  it('refuses an hour past the 6-hour window locally and reports hours that fell out of it', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(2, { usage: () => ({ session_hours: 1 }) });
    const old = new Date(stack.lastHour.getTime() - 6 * HOUR_MS);
    const refused = await stack.run({ hours: [old.toISOString()] });
    expect(refused.failed).toEqual([
      { hour: old.toISOString(), reason: expect.stringMatching(/outside AWS's 6-hour window/) },
    ]);
    expect((await stack.batchCalls()).calls).toBe(0);
    expect(await ledgerOf(stack.mongo.db).countDocuments()).toBe(0);

    // The service metered long ago, then nothing for hours: the gap beyond the window is reported as missed.
    await stack.mongo.db.collection('metering_hours').insertOne({
      _id: new Date(stack.lastHour.getTime() - 12 * HOUR_MS).toISOString() as never,
      state: 'complete',
      customers: 0,
      records: 0,
      conflicts: 0,
      notSubscribed: 0,
      at: new Date(),
    });
    const loud = await stack.run().then(
      () => undefined,
      (error: { cause?: { type?: string; message?: string } }) => error.cause,
    );
    expect(loud?.type).toBe('HoursMissed');
    expect(loud?.message).toContain(old.toISOString());
    expect(await meteringHoursOf(stack.mongo.db).findOne({ _id: old.toISOString() })).toMatchObject({
      state: 'missed',
    });
    expect(await stack.usage()).not.toContainEqual(expect.objectContaining({ hour: old.toISOString() }));
  });

  it('sends an hour in several runs with continue-as-new and reports progress to a query', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    await stack.addCustomers(60, { usage: () => ({ session_hours: 1 }) });
    await stack.onlyDue(stack.lastHour);
    const handle = await stack.temporal.workflow.start('hourlyMetering', {
      taskQueue: stack.taskQueue,
      workflowId: uniqueName('runs'),
      args: [{ callsPerRun: 1 }],
    });
    const progress = await handle.result();
    // Three calls of at most 25, one per run: the work continued as new twice.
    expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
    expect(progress).toMatchObject({ customersDone: 60, recordsSent: 60, calls: 3, failed: [] });
    const state = await handle.query(meteringProgressQuery);
    expect(state).toMatchObject({ hoursDone: [stack.lastHour.toISOString()], customersDone: 60 });
    expect((await handle.describe()).typedSearchAttributes.getAll().map((p) => p.key.name)).toContain('MeteringHour');
    expect(await stack.batchCalls()).toMatchObject({ calls: 3 });
  });

  it('finishes a run that the paging code continued as new, by paging', async () => {
    stack = await startMeteringStack({ config: { ...ONE_DIMENSION, pageSize: 3 } });
    await stack.addCustomers(10, { usage: () => ({ session_hours: 1 }) });
    await stack.onlyDue(stack.lastHour);
    const hour = stack.lastHour.toISOString();
    const progress = await stack.temporal.workflow.execute('hourlyMetering', {
      taskQueue: stack.taskQueue,
      workflowId: uniqueName('paged'),
      // What the paging code handed to its next run: the progress and the last customer paged.
      args: [{ pagesPerRun: 2, resume: { progress: { ...emptyProgress(), hoursDue: [hour] }, afterKey: '' } }],
    });
    expect(progress).toMatchObject({ hoursDone: [hour], customersDone: 10, recordsSent: 10 });
    expect(await stack.usage()).toHaveLength(10);
  });

  it('meters one customer up to now for the final metering, and the hourly run sends nothing for it again', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION });
    const [customer] = await stack.addCustomers(1, { usage: () => ({ session_hours: 7 }) });
    const metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: stack.sandbox.url } });
    const activities = createActivities({
      db: stack.mongo.db,
      metering,
      usageMetering: metering,
      meteringConfig: stack.config,
    });
    try {
      const totals = await activities.meterCustomerNow({
        awsAccountId: customer!.customerAwsAccountId,
        productCode: customer!.productCode,
        licenseArn: customer!.licenseArn,
      });
      // The current hour plus the closed hours since the link became active.
      expect(totals).toMatchObject({ customers: 1, records: 3, sent: 3, conflicts: 0 });
    } finally {
      metering.destroy();
    }
    await stack.onlyDue(stack.lastHour);
    const calls = (await stack.batchCalls()).calls;
    expect((await stack.run()).recordsSent).toBe(0);
    expect((await stack.batchCalls()).calls).toBe(calls);
  });
});

describe('one quota for the whole fleet', () => {
  let stack: MeteringStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('keeps two workers together to the rate, so AWS throttles no call', async () => {
    // AWS's quota a hair above the rate, as in production: two workers pacing each on its own would send twice as
    // fast, and the server's queue alone would send a second's burst at the start of the hour.
    stack = await startMeteringStack({ config: { ...ONE_DIMENSION, ratePerSecond: 4.9 }, quotaRps: 5, callWorkers: 2 });
    await stack.addCustomers(500, { usage: () => ({ session_hours: 1 }) });
    await stack.onlyDue(stack.lastHour);
    const progress = await stack.run();
    expect(progress).toMatchObject({ recordsSent: 500, calls: 20, failed: [] });
    const calls = await stack.batchCalls();
    expect(calls.outcomes.ThrottlingException ?? 0).toBe(0);
    expect(calls.calls).toBe(20);
  }, 120_000);
});

describe('a worker killed mid-run', () => {
  const workerScript = join(__dirname, '..', 'dist', 'worker', 'main.js');
  let stack: MeteringStack;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    child?.kill('SIGKILL');
    await stack?.stop();
  });

  const startChildWorker = () => {
    if (!existsSync(workerScript))
      throw new Error('dist/worker/main.js is missing: run `npm run build` (infra/test.sh does)');
    const temporal = testServers.temporal(stack.taskQueue);
    return spawn(join(__dirname, '..', 'node_modules', '.bin', 'node'), [workerScript], {
      env: {
        PATH: process.env.PATH,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
        MONGODB_URI: testServers.mongoUri(),
        MONGODB_DATABASE: stack.mongo.db.databaseName,
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: stack.sandbox.url,
        METERING_DIMENSIONS: 'session_hours=session_hours',
        METERING_PAGE_SIZE: '100',
        METERING_RATE_PER_SECOND: '2',
        METERING_SCHEDULE: 'false',
        LOG_LEVEL: 'warn',
      },
      stdio: process.env.DEBUG_WORKER ? 'inherit' : 'ignore',
    });
  };

  it('loses no record and sends none twice after a restart', async () => {
    stack = await startMeteringStack({ config: ONE_DIMENSION, startWorker: false });
    await stack.addCustomers(100, { usage: (i) => ({ session_hours: i }) });
    await stack.onlyDue(stack.lastHour);
    child = startChildWorker();
    const handle = await stack.temporal.workflow.start('hourlyMetering', {
      taskQueue: stack.taskQueue,
      workflowId: uniqueName('killed'),
      args: [{}],
    });
    // Kill it in the middle of the page: one call of 25 accepted, three still to go.
    await eventually(
      () => stack.usage(),
      (usage) => usage.length >= 25,
      400,
    );
    child.kill('SIGKILL');
    const partial = (await stack.usage()).length;
    expect(partial).toBeLessThan(100);
    // Usage moves on while the worker is down; what was frozen is what gets sent.
    await stack.mongo.db.collection('usage').updateMany({}, { $inc: { 'quantities.session_hours': 1000 } });
    child = startChildWorker();
    const progress = await handle.result();
    expect(progress).toMatchObject({ failed: [], conflicts: 0 });
    const usage = await stack.usage();
    expect(usage).toHaveLength(100);
    expect(new Set(usage.map((u) => u.customerId)).size).toBe(100);
    expect(Math.max(...usage.map((u) => u.quantity))).toBeLessThan(100);
    expect((await stack.batchCalls()).statuses.DuplicateRecord ?? 0).toBe(0);
  }, 120_000);
});

describe('the hourly schedule', () => {
  it('is created once, updated on the next start, and starts a metering run when triggered', async () => {
    const stack = await startMeteringStack({ config: ONE_DIMENSION });
    try {
      await stack.addCustomers(1, { usage: () => ({ session_hours: 2 }) });
      await stack.onlyDue(stack.lastHour);
      expect(await ensureMeteringSchedule(stack.temporal, stack.taskQueue, 5)).toBe('created');
      expect(await ensureMeteringSchedule(stack.temporal, stack.taskQueue, 7)).toBe('updated');
      const handle = stack.temporal.schedule.getHandle(METERING_SCHEDULE_ID);
      const described = await handle.describe();
      expect(described.spec.intervals).toEqual([{ every: 3_600_000, offset: 7 * 60_000 }]);
      await handle.trigger();
      const run = await eventually(
        () => handle.describe(),
        (d) => d.info.recentActions.length > 0,
      );
      const started = run.info.recentActions[0]!.action.workflow;
      const result = await stack.temporal.workflow.getHandle(started.workflowId, started.firstExecutionRunId).result();
      expect(result).toMatchObject({ failed: [], recordsSent: 1, hoursDone: [stack.lastHour.toISOString()] });
      await handle.delete();
    } finally {
      await stack.stop();
    }
  });
});
