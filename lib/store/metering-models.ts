/**
 * Which identifier model an AWS account + product was metered with, per hour.
 * Records for one customer and hour sent under both ProductCode
 * (CustomerIdentifier) and LicenseArn bill the buyer twice, so the first model
 * to claim an (account, product, hour) keeps it: the claim is an insert-once
 * document written before anything is sent, and records of the other model
 * for that hour are never sent. Several licenses of one account and product
 * (concurrent agreements) share the `license` claim.
 */
import type { Db } from 'mongodb';
import { collectionOf, insertNew } from '../mongo';
import type { LedgerEntry } from './metering-ledger';

export type MeteringModel = 'license' | 'customer-identifier';

/** The error recorded on an entry whose hour is held by the other model. */
export const METERING_MODEL_CONFLICT = 'MeteringModelConflict';

export interface MeteringModelDoc {
  /** `<awsAccountId>:<productCode>|<hour ISO>` */
  _id: string;
  model: MeteringModel;
  at: Date;
}

export const meteringModelsOf = collectionOf<MeteringModelDoc>('metering_models');

type Claimable = Pick<LedgerEntry, 'awsAccountId' | 'productCode' | 'licenseArn' | 'hour'>;

/** A record with a LicenseArn goes out as CustomerAWSAccountId + LicenseArn; any other by CustomerIdentifier + ProductCode. */
export function meteringModelOf(entry: Pick<LedgerEntry, 'licenseArn'>): MeteringModel {
  return entry.licenseArn ? 'license' : 'customer-identifier';
}

/** By AWS account and product, never by license: the two models name the same buyer differently. */
export function meteringModelKey(entry: Pick<LedgerEntry, 'awsAccountId' | 'productCode' | 'hour'>): string {
  return `${entry.awsAccountId}:${entry.productCode}|${entry.hour.toISOString()}`;
}

/**
 * Claims each entry's (account, product, hour) for the entry's model, first
 * claim wins, and splits the entries into those that may be sent and those
 * whose hour the other model already holds. One batch of inserts; only the
 * claims that already existed are read back. Safe to repeat: a retried page
 * finds its own claims.
 */
export async function claimMeteringModels<T extends Claimable>(
  db: Db,
  entries: T[],
): Promise<{ allowed: T[]; conflicting: T[] }> {
  if (entries.length === 0) return { allowed: [], conflicting: [] };
  const at = new Date();
  const claims = new Map<string, MeteringModelDoc>();
  for (const entry of entries) {
    const _id = meteringModelKey(entry);
    // Both models for one hour in one batch: the first one claims it, the other is a conflict like any other.
    if (!claims.has(_id)) claims.set(_id, { _id, model: meteringModelOf(entry), at });
  }
  const existing = [...(await insertNew(meteringModelsOf(db), [...claims.values()]))];
  if (existing.length > 0) {
    for (const stored of await meteringModelsOf(db)
      .find({ _id: { $in: existing } })
      .toArray())
      claims.set(stored._id, stored);
  }
  const allowed: T[] = [];
  const conflicting: T[] = [];
  for (const entry of entries)
    (claims.get(meteringModelKey(entry))!.model === meteringModelOf(entry) ? allowed : conflicting).push(entry);
  return { allowed, conflicting };
}
