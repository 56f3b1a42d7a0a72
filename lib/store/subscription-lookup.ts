/**
 * Which registered subscription a notification is about. EventBridge names the
 * license; SNS names only the AWS account (or the legacy CustomerIdentifier)
 * and the product, which is enough unless the account holds several purchases
 * of the product (Concurrent Agreements need EventBridge for that); AWS's
 * agreement events may name only the buyer's account. What cannot be
 * attributed to exactly one subscription is recorded, never guessed.
 */
import type { Db } from 'mongodb';
import { sameLicense, subscriptionKey, type SubscriptionRef } from '../../workflows/subscription-identity';
import { marketplaceCustomersOf, type MarketplaceCustomerDoc } from './marketplace';

export interface NotificationNames {
  licenseArn?: string;
  awsAccountId?: string;
  productCode?: string;
  customerIdentifier?: string;
}

/** The subscription's ref as it is keyed in the store (customers registered before licenses were keys keep their account+product key). */
export function refOfCustomer(doc: MarketplaceCustomerDoc): SubscriptionRef {
  return {
    awsAccountId: doc.awsAccountId,
    productCode: doc.productCode,
    ...(doc.licenseArn && doc._id.startsWith('license:') ? { licenseArn: doc.licenseArn } : {}),
  };
}

export async function findSubscriptionOf(db: Db, names: NotificationNames): Promise<SubscriptionRef | undefined> {
  const customers = marketplaceCustomersOf(db);
  if (names.licenseArn) {
    const licensed = await customers.findOne({ _id: subscriptionKey({ awsAccountId: '', productCode: '', licenseArn: names.licenseArn }) });
    if (licensed) return refOfCustomer(licensed);
  }
  // AWS's agreement events may name only the buyer's account (no product, no license): enough when it has one subscription with us.
  if (!names.productCode && names.awsAccountId) {
    const only = await customers.find({ awsAccountId: names.awsAccountId }).limit(2).toArray();
    return only.length === 1 && (!names.licenseArn || !only[0]!.licenseArn || sameLicense(names.licenseArn, only[0]!.licenseArn)) ? refOfCustomer(only[0]!) : undefined;
  }
  if (!names.productCode || (!names.awsAccountId && !names.customerIdentifier)) return undefined;
  const filter = names.awsAccountId
    ? { productCode: names.productCode, awsAccountId: names.awsAccountId }
    : { productCode: names.productCode, customerIdentifier: names.customerIdentifier };
  const matches = await customers.find(filter).limit(2).toArray();
  // Two purchases of one product by one account: a message without a license cannot say which one it means.
  if (matches.length !== 1) return undefined;
  const [match] = matches as [MarketplaceCustomerDoc];
  // An event naming a license belongs to another purchase than a customer registered with a different one.
  if (names.licenseArn && match.licenseArn && !sameLicense(names.licenseArn, match.licenseArn)) return undefined;
  return refOfCustomer(match);
}

/**
 * `findSubscriptionOf` with a memory of the subscriptions it found. A registered
 * subscription keeps its key, so a hit stays true; misses are never kept (a
 * registration may come any moment). On the embedded store a lookup scans the
 * customers, so the poller pays it once per subscription and period, not per
 * notification. The period bounds how long a second purchase of the same
 * product by the same account takes to make SNS messages ambiguous.
 */
export function createSubscriptionLookup(db: Db, options: { ttlMs?: number; capacity?: number } = {}) {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const capacity = options.capacity ?? 50_000;
  const found = new Map<string, { ref: SubscriptionRef; at: number }>();
  return async function lookup(names: NotificationNames): Promise<SubscriptionRef | undefined> {
    const key = JSON.stringify([names.licenseArn, names.awsAccountId, names.productCode, names.customerIdentifier]);
    const hit = found.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.ref;
    const ref = await findSubscriptionOf(db, names);
    found.delete(key);
    if (ref) found.set(key, { ref, at: Date.now() });
    if (found.size > capacity) found.delete(found.keys().next().value!);
    return ref;
  };
}
