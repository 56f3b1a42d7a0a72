/** Each platform account's link status, persisted so pages show it without asking Temporal. */
import type { Collection, Db } from 'mongodb';
import type { LinkStatus } from '../../workflows/link-model';
import { isDuplicateKeyError } from '../mongo';
import { customerKey } from './marketplace';

export interface LinkStatusDoc extends LinkStatus {
  _id: string;
}

export function linkStatusesOf(db: Db): Collection<LinkStatusDoc> {
  return db.collection<LinkStatusDoc>('link_statuses');
}

const idOf = (status: Pick<LinkStatus, 'awsAccountId' | 'productCode' | 'accountId'>) => `${customerKey(status)}|${status.accountId}`;

/**
 * Writes `status` unless a newer version is already stored: a retried or late
 * activity never rolls the page back. When the stored version is newer the
 * filter matches nothing and the upsert's insert hits the unique _id, which is
 * exactly the "nothing to do" case.
 */
export async function saveLinkStatus(db: Db, status: LinkStatus): Promise<void> {
  const _id = idOf(status);
  try {
    await linkStatusesOf(db).updateOne({ _id, version: { $lt: status.version } }, { $set: { ...status } }, { upsert: true });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}

/** The API's first word on a new request; never overwrites what the workflow already wrote. */
export async function saveInitialLinkStatus(db: Db, status: LinkStatus): Promise<void> {
  try {
    await linkStatusesOf(db).updateOne({ _id: idOf(status) }, { $setOnInsert: { ...status } }, { upsert: true });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}

/** The account's most recent link attempt, or null if it never started one. */
export function latestLinkStatus(db: Db, accountId: string): Promise<LinkStatusDoc | null> {
  return linkStatusesOf(db).find({ accountId }).sort({ updatedAt: -1 }).limit(1).next();
}
