/**
 * What the registration webhook leaves behind: the hash of each redeemed
 * registration token, and one-time link codes that carry the buyer from the
 * webhook to the link request. Only hashes of secrets are stored. One-time use
 * is enforced with inserts on unique keys, the one atomic primitive FerretDB
 * offers under concurrency.
 */
import type { Collection } from 'mongodb';
import { collectionOf, isDuplicateKeyError } from '../mongo';
import type { AwsCustomerRef, OfferType } from './marketplace';

export interface RedeemedTokenDoc extends AwsCustomerRef {
  /** sha256 of the registration token. */
  _id: string;
  /** sha256 of the browser-binding cookie the first redemption set. */
  bindingHash: string;
  redeemedAt: Date;
}

export interface LinkCodeDoc extends AwsCustomerRef {
  /** sha256 of the link code. */
  _id: string;
  bindingHash: string;
  /** Shown on the confirmation; absent on codes issued before it was. */
  offerType?: OfferType;
  createdAt: Date;
  expiresAt: Date;
}

export interface LinkCodeUseDoc {
  _id: string;
  accountId: string;
  usedAt: Date;
  /** Until the workflow answered (a crash, or Temporal slower than the API's deadline): the same account's retry is answered, not refused. */
  unansweredAt?: Date;
  /** The buyer answered "Not me": the code is spent without linking. */
  declinedAt?: Date;
}

export const redeemedTokensOf = collectionOf<RedeemedTokenDoc>('redeemed_registration_tokens');

export const linkCodesOf = collectionOf<LinkCodeDoc>('link_codes');

export const linkCodeUsesOf = collectionOf<LinkCodeUseDoc>('link_code_uses');

/** Inserts `doc` unless its key exists; returns the stored document either way and whether it was ours. */
export async function insertOnce<T extends { _id: string }>(
  collection: Collection<T>,
  doc: T,
): Promise<{ inserted: boolean; stored: T }> {
  try {
    await collection.insertOne(doc as never);
    return { inserted: true, stored: doc };
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    const stored = (await collection.findOne({ _id: doc._id } as never)) as T | null;
    if (!stored) throw error;
    return { inserted: false, stored };
  }
}
