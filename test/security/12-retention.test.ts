/**
 * Issue 12, point 12 (retention): link codes, redeemed registration tokens,
 * notifications (dead-letter records included) and the metering ledger expire.
 * FerretDB, the store these tests run on, has no TTL indexes, so the worker's
 * scheduled clean-up removes them: driven here through Temporal, on the real
 * store. Expired documents go, everything still inside its period stays, and
 * no ledger row is ever removed while a re-send could still need it.
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { createActivities } from '../../activities';
import { createMeteringClient } from '../../lib/aws';
import { loadMeteringConfig } from '../../lib/config';
import { loadWorkerConfig } from '../../worker/config';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { ensureIndexes } from '../../lib/store/indexes';
import { notificationsOf, unprocessedNotificationsOf } from '../../lib/store/marketplace';
import {
  ledgerOf,
  ledgerResultsOf,
  meteringCallsOf,
  meteringHoursOf,
  meteringPlansOf,
} from '../../lib/store/metering-ledger';
import { linkCodesOf, linkCodeUsesOf, redeemedTokensOf } from '../../lib/store/registrations';
import { ensureRetentionIndexes, retentionRules } from '../../lib/store/retention';
import { connectClient } from '../../lib/temporal';
import { ensureRetentionSchedule } from '../../worker/retention-schedule';
import { createWorker } from '../../worker/create-worker';
import { storeRetention } from '../../workflows/retention/store-retention';
import { testServers, uniqueName } from '../helpers/test-env';
import { eventually } from '../helpers/time-skipping';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(Date.now() - ms);
const LEDGER_DAYS = loadWorkerConfig({}).retention.meteringLedgerDays;
const ref = { awsAccountId: '123456789012', productCode: 'retention-product' };

let mongo: MongoHandle;
let db: Db;
let temporal: Client;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;

/** What a collection still holds, by _id. */
const ids = async (collection: { find(q: object): { toArray(): Promise<Array<{ _id: unknown }>> } }) =>
  (await collection.find({}).toArray()).map((d) => String(d._id)).sort();

async function seed(target: Db): Promise<void> {
  await linkCodesOf(target).insertMany([
    { _id: 'code-expired-long-ago', ...ref, bindingHash: 'b', createdAt: ago(2 * DAY), expiresAt: ago(DAY + HOUR) },
    // Expired, but a late retry should still hear "expired" rather than "unknown".
    { _id: 'code-just-expired', ...ref, bindingHash: 'b', createdAt: ago(2 * HOUR), expiresAt: ago(HOUR) },
    { _id: 'code-live', ...ref, bindingHash: 'b', createdAt: ago(0), expiresAt: new Date(Date.now() + HOUR) },
  ]);
  await linkCodeUsesOf(target).insertMany([
    { _id: 'use-old', accountId: 'acct', usedAt: ago(2 * DAY + HOUR) },
    { _id: 'use-recent', accountId: 'acct', usedAt: ago(HOUR) },
  ]);
  await redeemedTokensOf(target).insertMany([
    { _id: 'token-old', ...ref, bindingHash: 'b', redeemedAt: ago(30 * DAY + HOUR) },
    { _id: 'token-recent', ...ref, bindingHash: 'b', redeemedAt: ago(29 * DAY) },
  ]);
  // Many old notifications: the clean-up works through them in several bounded batches.
  await notificationsOf(target).insertMany(
    Array.from({ length: 120 }, (_, i) => ({
      _id: `old-${String(i).padStart(3, '0')}`,
      action: 'subscribe-success' as const,
      ...ref,
      receivedAt: ago(90 * DAY + HOUR + i),
    })),
  );
  // Still inside the period: longer than SQS keeps a message (14 days), so a redelivery is still recognised.
  await notificationsOf(target).insertMany([
    { _id: 'notification-15-days', action: 'subscribe-success', ...ref, receivedAt: ago(15 * DAY) },
    { _id: 'notification-89-days', action: 'unsubscribe-success', ...ref, receivedAt: ago(89 * DAY) },
  ]);
  await unprocessedNotificationsOf(target).insertMany([
    {
      _id: 'dead-letter-old',
      outcome: 'dead-lettered',
      reason: 'untrusted',
      sqsMessageId: 'm1',
      recordedAt: ago(30 * DAY + HOUR),
    },
    {
      _id: 'ignored-old',
      outcome: 'ignored',
      reason: 'unknown product',
      sqsMessageId: 'm2',
      recordedAt: ago(31 * DAY),
    },
    {
      _id: 'dead-letter-recent',
      outcome: 'dead-lettered',
      reason: 'untrusted',
      sqsMessageId: 'm3',
      recordedAt: ago(20 * DAY),
    },
  ]);
  const entry = (id: string, hour: Date) => ({
    _id: id,
    ...ref,
    dimension: 'session_hours',
    hour,
    quantity: 1,
    createdAt: hour,
  });
  await ledgerOf(target).insertMany([
    entry('ledger-past-retention', ago((LEDGER_DAYS + 1) * DAY)),
    entry('ledger-within-retention', ago((LEDGER_DAYS - 1) * DAY)),
    // Inside AWS's window: a re-run could send it again, so it must stay frozen.
    entry('ledger-last-hour', ago(HOUR)),
  ]);
  await ledgerResultsOf(target).insertMany([
    { _id: 'ledger-past-retention', status: 'sent', at: ago((LEDGER_DAYS + 1) * DAY) },
    { _id: 'ledger-within-retention', status: 'sent', at: ago((LEDGER_DAYS - 1) * DAY) },
    { _id: 'ledger-last-hour', status: 'sent', at: ago(HOUR / 2) },
  ]);
  await meteringHoursOf(target).insertMany([
    {
      _id: 'hour-past-retention',
      state: 'complete',
      customers: 1,
      records: 1,
      conflicts: 0,
      notSubscribed: 0,
      at: ago((LEDGER_DAYS + 1) * DAY),
    },
    { _id: 'hour-recent', state: 'complete', customers: 1, records: 1, conflicts: 0, notSubscribed: 0, at: ago(HOUR) },
  ]);
  // An hour's plan and calls matter only while the hour can be sent: two days.
  const call = (_id: string, hour: Date) => ({ _id, hour, entries: [entry(`${_id}-entry`, hour)] });
  await meteringCallsOf(target).insertMany([call('call-3-days', ago(3 * DAY)), call('call-last-hour', ago(HOUR))]);
  const plan = (_id: string, at: Date) => ({
    _id,
    calls: 1,
    customers: 1,
    records: 1,
    rejected: 0,
    answered: 0,
    done: true,
    open: [],
    at,
  });
  await meteringPlansOf(target).insertMany([plan('plan-3-days', ago(3 * DAY)), plan('plan-last-hour', ago(HOUR))]);
}

beforeAll(async () => {
  mongo = await connectMongo(testServers.mongoUri(), uniqueName('retention'));
  db = mongo.db;
  await ensureIndexes(db);
  taskQueue = uniqueName('retention');
  const temporalConfig = testServers.temporal(taskQueue);
  temporal = await connectClient(temporalConfig);
  // The worker's real activity set; metering is never called here.
  const metering = createMeteringClient({ region: 'us-east-1', endpoints: { metering: 'http://127.0.0.1:9' } });
  ({ worker } = await createWorker({
    temporal: temporalConfig,
    activities: createActivities({
      db,
      metering,
      usageMetering: metering,
      meteringConfig: loadMeteringConfig({}),
      retention: { meteringLedgerDays: LEDGER_DAYS },
    }),
    meteringCalls: false,
  }));
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await temporal?.connection.close();
  await mongo?.close();
});

describe('issue 12 point 12: retention', () => {
  jest.setTimeout(120_000);

  it('FerretDB has no TTL indexes: the worker falls back to the scheduled clean-up, with an index on every expiry field', async () => {
    const rules = retentionRules({ meteringLedgerDays: LEDGER_DAYS });
    expect(await ensureRetentionIndexes(db, rules)).toBe('scheduled-clean-up');
    // Idempotent: the next start finds them in place.
    expect(await ensureRetentionIndexes(db, rules)).toBe('scheduled-clean-up');
    for (const rule of rules) {
      const indexes = await db.collection(rule.collection).listIndexes().toArray();
      expect([
        rule.collection,
        indexes.some((index: { key: Record<string, unknown> }) => Object.keys(index.key).join() === rule.field),
      ]).toEqual([rule.collection, true]);
    }
  });

  it('the clean-up workflow removes what expired, keeps the rest, and repeating it changes nothing', async () => {
    await seed(db);
    const result = await temporal.workflow.execute(storeRetention, {
      taskQueue,
      workflowId: uniqueName('store-retention'),
      args: [{ batchSize: 50 }],
    });
    expect(result.deleted).toEqual({
      link_codes: 1,
      link_code_uses: 1,
      redeemed_registration_tokens: 1,
      notifications: 120,
      unprocessed_notifications: 2,
      metering_ledger: 1,
      metering_results: 1,
      metering_hours: 1,
      metering_calls: 1,
      metering_plans: 1,
    });
    expect(result.more).toBe(false);
    // 120 old notifications in batches of 50: three calls.
    expect(result.calls).toBe(3);

    expect(await ids(linkCodesOf(db))).toEqual(['code-just-expired', 'code-live']);
    expect(await ids(linkCodeUsesOf(db))).toEqual(['use-recent']);
    expect(await ids(redeemedTokensOf(db))).toEqual(['token-recent']);
    expect(await ids(notificationsOf(db))).toEqual(['notification-15-days', 'notification-89-days']);
    expect(await ids(unprocessedNotificationsOf(db))).toEqual(['dead-letter-recent']);
    expect(await ids(ledgerOf(db))).toEqual(['ledger-last-hour', 'ledger-within-retention']);
    expect(await ids(ledgerResultsOf(db))).toEqual(['ledger-last-hour', 'ledger-within-retention']);
    expect(await ids(meteringHoursOf(db))).toEqual(['hour-recent']);
    expect(await ids(meteringCallsOf(db))).toEqual(['call-last-hour']);
    expect(await ids(meteringPlansOf(db))).toEqual(['plan-last-hour']);

    const again = await temporal.workflow.execute(storeRetention, {
      taskQueue,
      workflowId: uniqueName('store-retention'),
      args: [{}],
    });
    expect(Object.values(again.deleted).every((n) => n === 0)).toBe(true);
    expect(again.calls).toBe(1);
    expect(await ids(notificationsOf(db))).toEqual(['notification-15-days', 'notification-89-days']);
  });

  it('stops after its bounded number of calls and says more is left for the next run', async () => {
    await notificationsOf(db).insertMany(
      Array.from({ length: 30 }, (_, i) => ({
        _id: `backlog-${i}`,
        action: 'subscribe-fail' as const,
        ...ref,
        receivedAt: ago(100 * DAY),
      })),
    );
    const first = await temporal.workflow.execute(storeRetention, {
      taskQueue,
      workflowId: uniqueName('store-retention'),
      args: [{ batchSize: 10, maxCalls: 2 }],
    });
    expect(first).toMatchObject({ calls: 2, more: true });
    expect(first.deleted.notifications).toBe(20);
    const second = await temporal.workflow.execute(storeRetention, {
      taskQueue,
      workflowId: uniqueName('store-retention'),
      args: [{ batchSize: 10, maxCalls: 2 }],
    });
    expect(second.deleted.notifications).toBe(10);
    expect(await notificationsOf(db).countDocuments({ _id: { $regex: '^backlog-' } })).toBe(0);
  });

  it('never keeps the metering ledger for less than a month, whatever is asked', () => {
    const short = retentionRules({ meteringLedgerDays: 1 }).find((rule) => rule.collection === 'metering_ledger')!;
    expect(short.keepSeconds).toBeGreaterThanOrEqual(32 * 86_400);
    expect(() => loadWorkerConfig({ METERING_LEDGER_RETENTION_DAYS: '7' })).toThrow(/METERING_LEDGER_RETENTION_DAYS/);
  });

  it('the hourly schedule is created once, updated on the next start, and its run cleans up', async () => {
    const scheduleId = uniqueName('store-retention-schedule');
    expect(await ensureRetentionSchedule(temporal, taskQueue, scheduleId)).toBe('created');
    expect(await ensureRetentionSchedule(temporal, taskQueue, scheduleId)).toBe('updated');
    const handle = temporal.schedule.getHandle(scheduleId);
    try {
      const described = await handle.describe();
      expect(described.spec.intervals).toEqual([{ every: HOUR, offset: 35 * 60_000 }]);
      await redeemedTokensOf(db).insertOne({
        _id: 'token-from-the-schedule',
        ...ref,
        bindingHash: 'b',
        redeemedAt: ago(40 * DAY),
      });
      await handle.trigger();
      const run = await eventually(
        () => handle.describe(),
        (d) => d.info.recentActions.length > 0,
      );
      const started = run.info.recentActions[0]!.action.workflow;
      const result = await temporal.workflow
        .getHandle<typeof storeRetention>(started.workflowId, started.firstExecutionRunId)
        .result();
      expect(result.deleted.redeemed_registration_tokens).toBe(1);
      expect(await redeemedTokensOf(db).countDocuments({ _id: 'token-from-the-schedule' })).toBe(0);
      expect(await ids(redeemedTokensOf(db))).toEqual(['token-recent']);
    } finally {
      await handle.delete();
    }
  });
});
