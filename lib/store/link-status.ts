/** Each platform account's link status, persisted so pages show it without asking Temporal. */
import type { Db } from 'mongodb';
import type { LinkStatus } from '../../domain/link-model';
import { collectionOf, isDuplicateKeyError } from '../mongo';
import { customerKey } from './marketplace';

export interface LinkStatusDoc extends LinkStatus {
  _id: string;
}

export const linkStatusesOf = collectionOf<LinkStatusDoc>('link_statuses');

export const linkStatusId = (status: Pick<LinkStatus, 'awsAccountId' | 'productCode' | 'accountId'>) =>
  `${customerKey(status)}|${status.accountId}`;

/**
 * Writes `status` unless a newer version is already stored: a retried or late
 * activity never rolls the page back. When the stored version is newer the
 * filter matches nothing and the upsert's insert hits the unique _id, which is
 * exactly the "nothing to do" case.
 */
export async function saveLinkStatus(db: Db, status: LinkStatus): Promise<void> {
  const _id = linkStatusId(status);
  try {
    await linkStatusesOf(db).updateOne(
      { _id, version: { $lt: status.version } },
      { $set: { ...status } },
      { upsert: true },
    );
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}

/**
 * The API's first word on a new request. It replaces a refusal from an earlier
 * attempt (whose run has ended), so a buyer who fixed the reason does not see
 * the old refusal; it never overwrites what a running workflow wrote.
 */
export async function saveInitialLinkStatus(db: Db, status: LinkStatus): Promise<void> {
  const statuses = linkStatusesOf(db);
  const _id = linkStatusId(status);
  const retried = await statuses.updateOne({ _id, phase: 'refused' }, { $set: { ...status } });
  if (retried.matchedCount > 0) return;
  try {
    await statuses.updateOne({ _id }, { $setOnInsert: { ...status } }, { upsert: true });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}

/** The account's most recent link attempt, or null if it never started one. */
export function latestLinkStatus(db: Db, accountId: string): Promise<LinkStatusDoc | null> {
  return linkStatusesOf(db).find({ accountId }).sort({ updatedAt: -1 }).limit(1).next();
}
