/**
 * What we know about AWS Marketplace customers: who ResolveCustomer said they
 * are, which platform account each one is linked to, and every notification AWS
 * sent about them. The key of an AWS customer is its AWS account plus product.
 */
import type { Db } from 'mongodb';
import { collectionOf, insertNew, isDuplicateKeyError } from '../mongo';
import { accountsOf, mayPayThroughMarketplace } from './accounts';

export interface AwsCustomerRef {
  awsAccountId: string;
  productCode: string;
}

export function customerKey(ref: AwsCustomerRef): string {
  return `${ref.awsAccountId}:${ref.productCode}`;
}

export type OfferType = 'free-trial' | 'standard';

export interface MarketplaceCustomerDoc {
  _id: string;
  awsAccountId: string;
  productCode: string;
  /** Absent for products that use the CustomerAWSAccountId + LicenseArn model. */
  customerIdentifier?: string;
  licenseArn?: string;
  offerType: OfferType;
  firstResolvedAt: Date;
  lastResolvedAt: Date;
}

/** Link states in which the customer is metered every hour. */
export const METERED_LINK_STATES = ['active', 'unsubscribe-pending'] as const;

/** The reservation of an AWS customer by a platform account; unique both ways. */
export interface MarketplaceLinkDoc {
  _id: string;
  awsAccountId: string;
  productCode: string;
  accountId: string;
  /** reserved → active → unsubscribe-pending → cancelled; a resubscription makes it active again. */
  state: 'reserved' | (typeof METERED_LINK_STATES)[number] | 'cancelled';
  cancelledAt?: Date;
  /** Set when a resubscription reactivated the link: notifications sent before it belong to the old cycle. */
  resubscribedAt?: Date;
  reservedAt: Date;
  activatedAt?: Date;
  /** Copied from the resolved customer at activation: what metering records name the customer by. */
  licenseArn?: string;
  customerIdentifier?: string;
}

export type NotificationAction = 'subscribe-success' | 'subscribe-fail' | 'unsubscribe-pending' | 'unsubscribe-success';

export interface NotificationDoc {
  /** The SNS MessageId: a redelivery has the same one. */
  _id: string;
  action: NotificationAction;
  productCode: string;
  customerIdentifier?: string;
  awsAccountId?: string;
  offerIdentifier?: string;
  freeTrial?: boolean;
  sentAt?: Date;
  receivedAt: Date;
}

export const marketplaceCustomersOf = collectionOf<MarketplaceCustomerDoc>('marketplace_customers');

export const marketplaceLinksOf = collectionOf<MarketplaceLinkDoc>('marketplace_links');

export const notificationsOf = collectionOf<NotificationDoc>('notifications');

export interface ResolvedCustomer extends AwsCustomerRef {
  customerIdentifier?: string;
  licenseArn?: string;
  offerType: OfferType;
}

/** Idempotent: a replayed registration refreshes what AWS said and keeps the first-seen time. */
export async function saveResolvedCustomer(db: Db, customer: ResolvedCustomer, now = new Date()): Promise<MarketplaceCustomerDoc> {
  const customers = marketplaceCustomersOf(db);
  const _id = customerKey(customer);
  const fields = {
    awsAccountId: customer.awsAccountId,
    productCode: customer.productCode,
    offerType: customer.offerType,
    lastResolvedAt: now,
    ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
    ...(customer.licenseArn ? { licenseArn: customer.licenseArn } : {}),
  };
  const upsert = () =>
    customers.findOneAndUpdate({ _id }, { $set: fields, $setOnInsert: { firstResolvedAt: now } }, { upsert: true, returnDocument: 'after' });
  // Two concurrent first registrations can both try the insert; the loser simply updates.
  const saved = await upsert().catch((error: unknown) => (isDuplicateKeyError(error) ? upsert() : Promise.reject(error)));
  if (!saved) throw new Error(`customer ${_id} was not saved`);
  return saved;
}

/** Records a notification once; returns false when this MessageId was already recorded. */
export async function recordNotification(db: Db, notification: NotificationDoc): Promise<boolean> {
  return (await insertNew(notificationsOf(db), [notification])).size === 0;
}

/** Finds the AWS account of a customer known only by its legacy CustomerIdentifier. */
export async function findAwsAccountId(db: Db, productCode: string, customerIdentifier: string): Promise<string | undefined> {
  const customer = await marketplaceCustomersOf(db).findOne({ productCode, customerIdentifier });
  return customer?.awsAccountId;
}

/** A cancellation as the Billing page shows it, written by the cancellation workflow at each step. */
export interface CancellationDoc {
  /** The AWS customer's key. */
  _id: string;
  accountId: string;
  phase: string;
  cancelledAt?: Date;
  deletionDueAt?: Date;
  stopped: Array<{ id: string; name: string }>;
  deleted: string[];
  updatedAt: Date;
}

export const cancellationsOf = collectionOf<CancellationDoc>('cancellations');

/**
 * A resubscription: the account pays through AWS Marketplace again and the
 * link is active, unless the account took another way to pay meanwhile (a card,
 * credits); then the link stays cancelled and nothing is billed twice.
 */
export async function restoreMarketplaceBilling(
  db: Db,
  customer: AwsCustomerRef,
  accountId: string,
  linkFields: Partial<MarketplaceLinkDoc> = {},
): Promise<'restored' | 'kept-cancelled'> {
  const account = await accountsOf(db).updateOne(
    { _id: accountId, 'marketplace.awsAccountId': customer.awsAccountId, ...mayPayThroughMarketplace },
    { $set: { paymentMethod: 'aws-marketplace' }, $unset: { 'marketplace.cancelledAt': '' } },
  );
  if (account.matchedCount === 0) return 'kept-cancelled';
  await marketplaceLinksOf(db).updateOne(
    { _id: customerKey(customer), state: { $in: ['active', 'unsubscribe-pending', 'cancelled'] } },
    { $set: { ...linkFields, state: 'active', resubscribedAt: new Date() }, $unset: { cancelledAt: '' } },
  );
  return 'restored';
}
