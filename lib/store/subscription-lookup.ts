/**
 * Which registered subscription a notification is about. EventBridge names the
 * license; SNS names only the AWS account (or the legacy CustomerIdentifier)
 * and the product, which is enough unless the account holds several purchases
 * of the product (Concurrent Agreements need EventBridge for that); AWS's
 * agreement events may name only the buyer's account. What cannot be
 * attributed to exactly one subscription is recorded, never guessed.
 */
import type { Db } from 'mongodb';
import { sameLicense, subscriptionKey, type SubscriptionRef } from '../../domain/subscription-identity';
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

/** The four questions a lookup asks of the registered customers; each list is cut at two (one is the only answer that counts). */
interface Customers {
  byId(id: string): Promise<MarketplaceCustomerDoc | null | undefined>;
  ofAccount(awsAccountId: string): Promise<MarketplaceCustomerDoc[]>;
  ofAccountAndProduct(awsAccountId: string, productCode: string): Promise<MarketplaceCustomerDoc[]>;
  ofIdentifier(productCode: string, customerIdentifier: string): Promise<MarketplaceCustomerDoc[]>;
}

function storeCustomers(db: Db): Customers {
  const customers = marketplaceCustomersOf(db);
  return {
    byId: (_id) => customers.findOne({ _id }),
    ofAccount: (awsAccountId) => customers.find({ awsAccountId }).limit(2).toArray(),
    ofAccountAndProduct: (awsAccountId, productCode) =>
      customers.find({ productCode, awsAccountId }).limit(2).toArray(),
    ofIdentifier: (productCode, customerIdentifier) =>
      customers.find({ productCode, customerIdentifier }).limit(2).toArray(),
  };
}

async function lookUp(customers: Customers, names: NotificationNames): Promise<SubscriptionRef | undefined> {
  if (names.licenseArn) {
    const licensed = await customers.byId(
      subscriptionKey({ awsAccountId: '', productCode: '', licenseArn: names.licenseArn }),
    );
    if (licensed) return refOfCustomer(licensed);
  }
  // An event naming a license belongs to another purchase than a customer registered with a different one.
  const sole = (matches: MarketplaceCustomerDoc[]) =>
    matches.length === 1 &&
    !(names.licenseArn && matches[0]!.licenseArn && !sameLicense(names.licenseArn, matches[0]!.licenseArn))
      ? refOfCustomer(matches[0]!)
      : undefined;
  // AWS's agreement events may name only the buyer's account (no product, no license): enough when it has one subscription with us.
  if (!names.productCode) return names.awsAccountId ? sole(await customers.ofAccount(names.awsAccountId)) : undefined;
  // Two purchases of one product by one account: a message without a license cannot say which one it means.
  if (names.awsAccountId) return sole(await customers.ofAccountAndProduct(names.awsAccountId, names.productCode));
  if (names.customerIdentifier) return sole(await customers.ofIdentifier(names.productCode, names.customerIdentifier));
  return undefined;
}

export function findSubscriptionOf(db: Db, names: NotificationNames): Promise<SubscriptionRef | undefined> {
  return lookUp(storeCustomers(db), names);
}

/**
 * The poller's lookup: the registered customers kept in memory, brought up to
 * date every `refreshMs` with the ones (re)registered since the last refresh
 * began, less an overlap. It spares every message a store round trip (and,
 * before the embedded store used its indexes, a scan of the collection, which
 * cost more than the rest of the hand-off together). Memory answers what it knows;
 * anything it cannot attribute is asked of the store, which has the last word,
 * so a registration newer than the last refresh is never missed. A second
 * purchase of a product by the same account makes SNS messages ambiguous only
 * once memory knows of it, within `refreshMs`.
 */
export function createSubscriptionLookup(db: Db, options: { refreshMs?: number } = {}) {
  const refreshMs = options.refreshMs ?? 10_000;
  const store = storeCustomers(db);
  const byId = new Map<string, MarketplaceCustomerDoc>();
  const index = new Map<string, Set<string>>();
  /** Saves take their time before they land, and other instances' clocks differ: each refresh re-reads this much. */
  const OVERLAP_MS = 30_000;
  let lastRefreshStart: number | undefined;
  let refreshedAt = 0;
  let refreshing: Promise<void> | undefined;

  const add = (key: string, id: string) => (index.get(key) ?? index.set(key, new Set()).get(key)!).add(id);
  const keysOf = (doc: MarketplaceCustomerDoc) => [
    `a|${doc.awsAccountId}`,
    `ap|${doc.awsAccountId}|${doc.productCode}`,
    ...(doc.customerIdentifier ? [`ci|${doc.productCode}|${doc.customerIdentifier}`] : []),
  ];
  const docsOf = (key: string) => [...(index.get(key) ?? [])].slice(0, 2).map((id) => byId.get(id)!);

  async function refresh(): Promise<void> {
    const start = Date.now();
    const from = lastRefreshStart === undefined ? undefined : new Date(lastRefreshStart - OVERLAP_MS);
    const fresh = await marketplaceCustomersOf(db)
      .find(from ? { lastResolvedAt: { $gte: from } } : {})
      .toArray();
    for (const doc of fresh) {
      // A customer saved again under other names leaves the old ones, so memory never answers for names the store no longer has.
      const previous = byId.get(doc._id);
      if (previous) keysOf(previous).forEach((key) => index.get(key)?.delete(doc._id));
      byId.set(doc._id, doc);
      keysOf(doc).forEach((key) => add(key, doc._id));
    }
    lastRefreshStart = start;
  }

  const memory: Customers = {
    byId: async (id) => byId.get(id),
    ofAccount: async (awsAccountId) => docsOf(`a|${awsAccountId}`),
    ofAccountAndProduct: async (awsAccountId, productCode) => docsOf(`ap|${awsAccountId}|${productCode}`),
    ofIdentifier: async (productCode, customerIdentifier) => docsOf(`ci|${productCode}|${customerIdentifier}`),
  };

  /** Later refreshes run behind the lookups: a slow or failing one never holds a hand-off, the store answers meanwhile. */
  function refreshInBackground(): Promise<void> {
    refreshing ??= refresh()
      .catch(() => undefined)
      .finally(() => {
        refreshedAt = Date.now();
        refreshing = undefined;
      });
    return refreshing;
  }

  return async function findSubscription(names: NotificationNames): Promise<SubscriptionRef | undefined> {
    // The first load is awaited (memory is empty until then); the ones after it are not.
    if (lastRefreshStart === undefined) await refreshInBackground();
    else if (Date.now() - refreshedAt >= refreshMs) void refreshInBackground();
    return (await lookUp(memory, names)) ?? lookUp(store, names);
  };
}
