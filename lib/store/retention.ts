/**
 * How long what the service writes is kept, and why (README: Retention).
 * MongoDB enforces each rule with a TTL index; FerretDB has none (its
 * createIndex answers NotImplemented to `expireAfterSeconds`), so there the
 * worker's hourly `store-retention` schedule deletes the same documents in
 * bounded batches. The schedule runs on MongoDB too, where it finds little:
 * one rule, two enforcers, the same periods.
 */
import type { Db } from 'mongodb';

const DAY_SECONDS = 86_400;

export interface RetentionRule {
  collection: string;
  /** A Date field: the document expires `keepSeconds` after it. */
  field: string;
  keepSeconds: number;
}

/**
 * AWS accepts a metering record up to 6 hours late (some of its pages say 24,
 * plus a month-end grace); after that no ledger row is ever sent again. A month
 * is beyond every reading of that window, so a shorter setting is raised to it.
 */
export const MIN_LEDGER_DAYS = 32;

export function retentionRules(settings: { meteringLedgerDays: number }): RetentionRule[] {
  const ledger = Math.max(settings.meteringLedgerDays, MIN_LEDGER_DAYS) * DAY_SECONDS;
  return [
    // A code lives LINK_CODE_TTL_SECONDS (at most a day); for a day after, a late retry still hears "expired".
    { collection: 'link_codes', field: 'expiresAt', keepSeconds: DAY_SECONDS },
    // A use is made before its code expires, so two days after it the code is gone too: a use never outlives its guard.
    { collection: 'link_code_uses', field: 'usedAt', keepSeconds: 2 * DAY_SECONDS },
    // AWS answers ExpiredTokenException to a token held "too long" (it publishes no lifetime; the sandbox's is an hour),
    // so after 30 days a replay is refused by AWS itself; until then we recognise it without calling AWS.
    { collection: 'redeemed_registration_tokens', field: 'redeemedAt', keepSeconds: 30 * DAY_SECONDS },
    // SQS keeps a message 14 days at most, and its dead-letter copy up to 14 more before a redrive: 90 days
    // recognise every redelivery, and give support a quarter of AWS's word on each subscription.
    { collection: 'notifications', field: 'receivedAt', keepSeconds: 90 * DAY_SECONDS },
    // Ignored and dead-lettered messages, for operators: past both 14-day queue retentions; a forged flood is gone in a month.
    { collection: 'unprocessed_notifications', field: 'recordedAt', keepSeconds: 30 * DAY_SECONDS },
    // What we billed and what AWS answered, for audits and disputes (METERING_LEDGER_RETENTION_DAYS).
    { collection: 'metering_ledger', field: 'hour', keepSeconds: ledger },
    { collection: 'metering_results', field: 'at', keepSeconds: ledger },
    { collection: 'metering_hours', field: 'at', keepSeconds: ledger },
    // An hour's plan is of use only while the hour can still be sent (6 hours); two days leave room to look at it.
    { collection: 'metering_calls', field: 'hour', keepSeconds: 2 * DAY_SECONDS },
    { collection: 'metering_plans', field: 'at', keepSeconds: 2 * DAY_SECONDS },
  ];
}

export type RetentionEnforcement = 'ttl-indexes' | 'scheduled-clean-up';

const NOT_IMPLEMENTED = 238;
const INDEX_OPTIONS_CONFLICT = 85;

const codeOf = (error: unknown) =>
  typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;

/**
 * One index per rule on its field: a TTL index where the store has them (an
 * existing plain or differently timed index is changed in place with
 * collMod), else a plain one for the clean-up's range query. Run by the worker
 * only, so two processes never disagree about a period.
 */
export async function ensureRetentionIndexes(db: Db, rules: RetentionRule[]): Promise<RetentionEnforcement> {
  let enforcement: RetentionEnforcement = 'ttl-indexes';
  for (const rule of rules) {
    const collection = db.collection(rule.collection);
    const key = { [rule.field]: 1 };
    try {
      await collection.createIndex(key, { expireAfterSeconds: rule.keepSeconds });
    } catch (error) {
      if (codeOf(error) === NOT_IMPLEMENTED) {
        enforcement = 'scheduled-clean-up';
        await collection.createIndex(key);
      } else if (codeOf(error) === INDEX_OPTIONS_CONFLICT) {
        await db.command({
          collMod: rule.collection,
          index: { keyPattern: key, expireAfterSeconds: rule.keepSeconds },
        });
      } else {
        throw error;
      }
    }
  }
  return enforcement;
}

/**
 * Deletes up to `batchSize` documents of one rule that expired before `now`;
 * returns how many. Safe to repeat and to run beside a TTL monitor: it deletes
 * only by the same condition, re-checked in the delete itself.
 */
export async function deleteExpiredBatch(db: Db, rule: RetentionRule, now: number, batchSize: number): Promise<number> {
  const collection = db.collection<{ _id: unknown }>(rule.collection);
  const expired = { [rule.field]: { $lt: new Date(now - rule.keepSeconds * 1000) } };
  const batch = await collection
    .find(expired, { projection: { _id: 1 } })
    .limit(batchSize)
    .toArray();
  if (batch.length === 0) return 0;
  const { deletedCount } = await collection.deleteMany({ _id: { $in: batch.map((doc) => doc._id) }, ...expired });
  return deletedCount;
}
