/**
 * What we send to AWS, one entry per (customer, dimension, hour), and what
 * AWS answered. The first quantity computed for a key is frozen: a re-run, a
 * retry after a crash or a late usage update sends exactly the same record
 * again, which AWS treats as idempotent, so no conflicting record can ever
 * leave this service. Answers are separate insert-once documents: FerretDB
 * inserts thousands of documents in the time it updates a few hundred, and
 * the first final answer for a key is the one that counts.
 */
import type { Db } from 'mongodb';
import { bulkWriteInChunks, collectionOf, insertNew } from '../mongo';

export const LEDGER_STATUSES = ['pending', 'sent', 'conflict', 'not-subscribed', 'rejected'] as const;
export type LedgerStatus = (typeof LEDGER_STATUSES)[number];
export type FinalStatus = Exclude<LedgerStatus, 'pending'>;

export interface LedgerEntry {
  /**
   * `<subscription>|<dimension>|<hour ISO>`, the subscription being its store
   * key (`customerKey`): `license:<l-id>` when metered by LicenseArn, else
   * `<awsAccountId>:<productCode>`. Concurrent agreements (one AWS account
   * holding several licenses of one product) each get their own records.
   */
  _id: string;
  awsAccountId: string;
  productCode: string;
  licenseArn?: string;
  customerIdentifier?: string;
  dimension: string;
  hour: Date;
  quantity: number;
  createdAt: Date;
}

/** AWS's final answer for a ledger entry; no document means the record is still to be sent. */
export interface LedgerResult {
  _id: string;
  status: FinalStatus;
  meteringRecordId?: string;
  /** Why AWS refused the call, for `rejected`. */
  error?: string;
  at: Date;
}

export type EntryWithStatus = LedgerEntry & { status: LedgerStatus; meteringRecordId?: string };

export type HourState = 'complete' | 'missed';

export interface MeteringHourDoc {
  /** The hour, ISO. */
  _id: string;
  state: HourState;
  customers: number;
  records: number;
  conflicts: number;
  notSubscribed: number;
  rejected?: number;
  at: Date;
}

export const ledgerOf = collectionOf<LedgerEntry>('metering_ledger');

export const ledgerResultsOf = collectionOf<LedgerResult>('metering_results');

export const meteringHoursOf = collectionOf<MeteringHourDoc>('metering_hours');

/** An hour's record with nothing metered in it, as of now (not to be confused with the workflow's own progress). */
export function emptyHourRecord(state: HourState): Omit<MeteringHourDoc, '_id'> {
  return { state, customers: 0, records: 0, conflicts: 0, notSubscribed: 0, at: new Date() };
}

/** Records these hours as done, so that no run meters them: for tests and benches that meter one hour alone. */
export async function markHoursMetered(db: Db, hours: string[]): Promise<void> {
  await bulkWriteInChunks(
    meteringHoursOf(db),
    hours.map((hour) => ({
      updateOne: { filter: { _id: hour }, update: { $set: emptyHourRecord('complete') }, upsert: true },
    })),
  );
}

/**
 * One BatchMeterUsage call of an hour's plan: the frozen entries it sends.
 * Written before anything of the hour is sent, read back by its key alone
 * (the only lookup the embedded store answers without a scan).
 */
export interface MeteringCallDoc {
  /** `<plan key>|<sequence, 6 digits>` */
  _id: string;
  hour: Date;
  entries: LedgerEntry[];
}

/** An hour's records frozen and cut into calls, as far as planning has gone: calls below `calls` may be sent. */
export interface MeteringPlanDoc {
  /** `<hour ISO>|<plan>`: one plan per hour and metering run, so a later run plans again what is still unanswered. */
  _id: string;
  calls: number;
  customers: number;
  records: number;
  /** Records never to be sent: they name no customer, or the other identifier model holds their hour. */
  rejected: number;
  /** Records answered in an earlier run, not sent again. */
  answered: number;
  /** Every call is stored; while false, `calls` grows as the plan is made and the calls so far may be sent. */
  done: boolean;
  /** The last link planned, and the calls not yet full: where a planning that died goes on. */
  lastKey?: string;
  /** Objects around the entries: the embedded store keeps no array directly inside an array. */
  open: Array<{ entries: LedgerEntry[] }>;
  at: Date;
}

export const meteringCallsOf = collectionOf<MeteringCallDoc>('metering_calls');

export const meteringPlansOf = collectionOf<MeteringPlanDoc>('metering_plans');

export const meteringPlanKey = (hour: string, plan: string) => `${hour}|${plan}`;

export const meteringCallKey = (planKey: string, seq: number) => `${planKey}|${String(seq).padStart(6, '0')}`;

/** Legacy keys (`<awsAccountId>:<productCode>|…`) keep the format they always had, so existing ledgers stay valid. */
/** `subscription` is the link's key: a link stored under its account and product keeps that key whatever license it names. */
export function ledgerKey(subscription: string, entry: Pick<LedgerEntry, 'dimension' | 'hour'>): string {
  return `${subscription}|${entry.dimension}|${entry.hour.toISOString()}`;
}

/** Inserts the entries that are new and returns every key as stored (frozen quantity) with its status. */
export async function freezeEntries(db: Db, entries: LedgerEntry[]): Promise<EntryWithStatus[]> {
  if (entries.length === 0) return [];
  // New keys cannot have an answer yet; only keys that existed are read back, with their answers.
  const existing = [...(await insertNew(ledgerOf(db), entries))];
  if (existing.length === 0) return entries.map((e) => ({ ...e, status: 'pending' as const }));
  const [stored, results] = await Promise.all([
    ledgerOf(db)
      .find({ _id: { $in: existing } })
      .toArray(),
    ledgerResultsOf(db)
      .find({ _id: { $in: existing } })
      .toArray(),
  ]);
  const entryById = new Map(stored.map((e) => [e._id, e]));
  const resultById = new Map(results.map((r) => [r._id, r]));
  return entries.map((e) => {
    const result = resultById.get(e._id);
    return {
      ...(entryById.get(e._id) ?? e),
      status: result?.status ?? 'pending',
      ...(result?.meteringRecordId ? { meteringRecordId: result.meteringRecordId } : {}),
    };
  });
}

export async function recordOutcomes(db: Db, outcomes: Array<Omit<LedgerResult, 'at'>>): Promise<void> {
  const at = new Date();
  const final = outcomes.map((o) => ({ ...o, at }));
  // The first final answer for a key stays; a repeat (after a crash) finds it there.
  if (final.length > 0) await insertNew(ledgerResultsOf(db), final);
}
