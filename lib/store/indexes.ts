import type { Db } from 'mongodb';
import { accountsOf, deploymentsOf } from './accounts';
import { linkStatusesOf } from './link-status';
import { marketplaceCustomersOf, marketplaceLinksOf, notificationsOf } from './marketplace';
import { usageOf } from './usage';

/**
 * Every index the service relies on. The unique ones carry correctness: one
 * platform account per AWS customer and one AWS customer per platform account.
 * The indexes on expiry fields are the worker's (retention.ts): on MongoDB they
 * are TTL indexes, which a plain index on the same field would conflict with.
 */
export async function ensureIndexes(db: Db): Promise<void> {
  await Promise.all([
    accountsOf(db).createIndex({ email: 1 }, { unique: true }),
    deploymentsOf(db).createIndex({ accountId: 1 }),
    marketplaceCustomersOf(db).createIndex({ productCode: 1, customerIdentifier: 1 }),
    marketplaceLinksOf(db).createIndex({ accountId: 1 }, { unique: true }),
    notificationsOf(db).createIndex({ productCode: 1, awsAccountId: 1 }),
    notificationsOf(db).createIndex({ productCode: 1, customerIdentifier: 1 }),
    linkStatusesOf(db).createIndex({ accountId: 1, updatedAt: -1 }),
    marketplaceLinksOf(db).createIndex({ state: 1, _id: 1 }),
    usageOf(db).createIndex({ hour: 1, accountId: 1 }),
    // The poller and a starting subscription find customers by account and product.
    marketplaceCustomersOf(db).createIndex({ awsAccountId: 1, productCode: 1 }),
    // A starting subscription reads its recorded notifications by each of the names AWS gives it.
    notificationsOf(db).createIndex({ licenseId: 1 }),
    notificationsOf(db).createIndex({ licenseArn: 1 }),
    notificationsOf(db).createIndex({ awsAccountId: 1 }),
  ]);
}
