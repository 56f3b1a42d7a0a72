/**
 * What the registration webhook leaves behind: the hash of each redeemed
 * registration token, and one-time link codes that carry the buyer from the
 * webhook to the link request. Only hashes of secrets are stored. One-time use
 * is enforced with inserts on unique keys, the one atomic primitive FerretDB
 * offers under concurrency.
 */
import type { Collection, Db } from 'mongodb';
import { collectionOf, isDuplicateKeyError } from '../mongo';
import { saveResolvedCustomer, type AwsCustomerRef, type OfferType, type ResolvedCustomer } from './marketplace';
import { refOfCustomer } from './subscription-lookup';

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

/** What a link code grants, and to which browser. */
export interface LinkCodeGrant {
  /** sha256 of the link code. */
  codeHash: string;
  bindingHash: string;
  offerType: OfferType;
  ttlSeconds: number;
}

/** Stores a one-time link code for `customer`. Its lifetime starts when it is issued, after any wait for ResolveCustomer, as the cookie's does. */
export async function issueLinkCode(
  db: Db,
  customer: AwsCustomerRef,
  grant: LinkCodeGrant,
  now = Date.now(),
): Promise<void> {
  await linkCodesOf(db).insertOne({
    _id: grant.codeHash,
    awsAccountId: customer.awsAccountId,
    productCode: customer.productCode,
    ...(customer.licenseArn ? { licenseArn: customer.licenseArn } : {}),
    offerType: grant.offerType,
    bindingHash: grant.bindingHash,
    createdAt: new Date(now),
    expiresAt: new Date(now + grant.ttlSeconds * 1000),
  });
}

/**
 * A first redemption's writes: the customer (keyed as the store keys its subscription: by its license, or by
 * account and product when registered before licenses were keys), then the redeemed token and the link code
 * together. Returns the redeemed token as stored: another browser's when it redeemed the token meanwhile, in which
 * case the code is never shown to anyone and expires unused.
 */
export async function recordRedemption(
  db: Db,
  customer: Omit<ResolvedCustomer, 'offerType'>,
  tokenHash: string,
  grant: LinkCodeGrant,
): Promise<RedeemedTokenDoc> {
  const saved = refOfCustomer(await saveResolvedCustomer(db, { ...customer, offerType: grant.offerType }));
  const [{ stored }] = await Promise.all([
    insertOnce(redeemedTokensOf(db), {
      _id: tokenHash,
      ...saved,
      bindingHash: grant.bindingHash,
      redeemedAt: new Date(),
    }),
    issueLinkCode(db, saved, grant),
  ]);
  return stored;
}
