/**
 * Platform usage, recorded by the platform per deployment per hour. The
 * metrics are the platform's names; METERING_DIMENSIONS maps them to AWS
 * dimensions.
 */
import type { Db } from 'mongodb';
import { collectionOf } from '../mongo';

export interface UsageDoc {
  /** `<deploymentId>|<hour ISO>`: one document per deployment and hour. */
  _id: string;
  accountId: string;
  deploymentId: string;
  hour: Date;
  quantities: Record<string, number>;
}

export const usageOf = collectionOf<UsageDoc>('usage');

export const HOUR_MS = 3_600_000;

export function hourStart(at: Date | number): Date {
  const ms = typeof at === 'number' ? at : at.getTime();
  return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS);
}

/** Each account's usage in one hour, summed over its deployments, per platform metric. */
export async function usageByAccount(
  db: Db,
  accountIds: string[],
  hour: Date,
): Promise<Map<string, Record<string, number>>> {
  const totals = new Map<string, Record<string, number>>();
  if (accountIds.length === 0) return totals;
  const docs = await usageOf(db)
    .find({ accountId: { $in: accountIds }, hour })
    .toArray();
  for (const doc of docs) addTo(totals, doc);
  return totals;
}

function addTo(totals: Map<string, Record<string, number>>, doc: UsageDoc): void {
  const sum = totals.get(doc.accountId) ?? {};
  for (const [metric, quantity] of Object.entries(doc.quantities)) sum[metric] = (sum[metric] ?? 0) + quantity;
  totals.set(doc.accountId, sum);
}

/**
 * Every account's usage in one hour, in one pass over the hour's documents:
 * what an hour's metering reads once, whatever the number of customers.
 */
export async function hourUsageByAccount(db: Db, hour: Date): Promise<Map<string, Record<string, number>>> {
  const totals = new Map<string, Record<string, number>>();
  for await (const doc of usageOf(db).find({ hour }).batchSize(5_000)) addTo(totals, doc);
  return totals;
}
