/**
 * What we know about AWS Marketplace customers: who ResolveCustomer said they
 * are, which platform account each one is linked to, and every notification AWS
 * sent about them. The key of an AWS customer is its AWS account plus product.
 */
import type { Db } from 'mongodb';
import { sameLicense, subscriptionKey, type SubscriptionRef } from '../../domain/subscription-identity';
import { collectionOf, insertNew, isDuplicateKeyError } from '../mongo';
import { accountsOf, mayPayThroughMarketplace } from './accounts';

export type AwsCustomerRef = SubscriptionRef;

/** The store key of one subscription: its license when AWS gave one, else the AWS account and product. */
export function customerKey(ref: AwsCustomerRef): string {
  return subscriptionKey(ref);
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
  /** The SNS MessageId or EventBridge event id: a redelivery has the same one. */
  _id: string;
  /** How it arrived: the SNS envelope, raw SNS delivery, or an EventBridge event. */
  format?: 'sns' | 'sns-raw' | 'eventbridge';
  action: NotificationAction;
  /** Absent only from an EventBridge agreement event, which AWS sends without `detail.product`. */
  productCode?: string;
  customerIdentifier?: string;
  awsAccountId?: string;
  offerIdentifier?: string;
  licenseArn?: string;
  /** The `l-…` id of `licenseArn`: AWS spells the ARN several ways. */
  licenseId?: string;
  /** EventBridge: the agreement (`agmt-…`), the one name every agreement event carries. */
  agreementId?: string;
  /** EventBridge `detail.agreement.intent`: NEW, RENEW, REPLACE or AMEND. */
  intent?: string;
  /** A changed agreement, not a new subscription: it never (re)activates anything. */
  amendment?: boolean;
  detailType?: string;
  freeTrial?: boolean;
  sentAt?: Date;
  receivedAt: Date;
  /** When the workflows had it (the record is written after the hand-off). */
  handedOffAt?: Date;
}

/**
 * A queue message that was not handed over, and why: understood but of no
 * concern to us (acknowledged), or dead-lettered (unreadable, untrusted, or a
 * hand-off that kept failing). Operators read the reason here and in the
 * dead-letter message's `reason` attribute.
 */
export interface UnprocessedNotificationDoc {
  /** The notification's id when known, else `sqs:<SQS MessageId>`. */
  _id: string;
  outcome: 'ignored' | 'dead-lettered';
  reason: string;
  sqsMessageId: string;
  format?: string;
  productCode?: string;
  awsAccountId?: string;
  customerIdentifier?: string;
  detailType?: string;
  sentAt?: Date;
  receives?: number;
  /** The start of the body, for a dead-lettered message. */
  body?: string;
  recordedAt: Date;
  /** When a copy reached the dead-letter queue. */
  forwardedAt?: Date;
}

export const marketplaceCustomersOf = collectionOf<MarketplaceCustomerDoc>('marketplace_customers');

export const marketplaceLinksOf = collectionOf<MarketplaceLinkDoc>('marketplace_links');

export const notificationsOf = collectionOf<NotificationDoc>('notifications');

export const unprocessedNotificationsOf = collectionOf<UnprocessedNotificationDoc>('unprocessed_notifications');

export interface ResolvedCustomer extends AwsCustomerRef {
  customerIdentifier?: string;
  licenseArn?: string;
  offerType: OfferType;
}

/** Idempotent: a replayed registration refreshes what AWS said and keeps the first-seen time. */
export async function saveResolvedCustomer(
  db: Db,
  customer: ResolvedCustomer,
  now = new Date(),
): Promise<MarketplaceCustomerDoc> {
  const customers = marketplaceCustomersOf(db);
  const legacyKey = customerKey({ awsAccountId: customer.awsAccountId, productCode: customer.productCode });
  // A customer registered before licenses were keys keeps its key when it registers again with the same license.
  const legacy = customer.licenseArn ? await customers.findOne({ _id: legacyKey }) : null;
  const sameSubscription = legacy && (!legacy.licenseArn || sameLicense(legacy.licenseArn, customer.licenseArn));
  const _id = sameSubscription ? legacyKey : customerKey(customer);
  const fields = {
    awsAccountId: customer.awsAccountId,
    productCode: customer.productCode,
    offerType: customer.offerType,
    lastResolvedAt: now,
    ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
    ...(customer.licenseArn ? { licenseArn: customer.licenseArn } : {}),
  };
  const upsert = () =>
    customers.findOneAndUpdate(
      { _id },
      { $set: fields, $setOnInsert: { firstResolvedAt: now } },
      { upsert: true, returnDocument: 'after' },
    );
  // Two concurrent first registrations can both try the insert; the loser simply updates.
  const saved = await upsert().catch((error: unknown) => {
    if (isDuplicateKeyError(error)) return upsert();
    throw error;
  });
  if (!saved) throw new Error(`customer ${_id} was not saved`);
  return saved;
}

/** Records a notification once; returns false when this MessageId was already recorded. */
export async function recordNotification(db: Db, notification: NotificationDoc): Promise<boolean> {
  return (await insertNew(notificationsOf(db), [notification])).size === 0;
}

/** Records an acknowledged-but-unused or dead-lettered message once; returns the record as it now stands. */
export async function recordUnprocessed(db: Db, doc: UnprocessedNotificationDoc): Promise<UnprocessedNotificationDoc> {
  const collection = unprocessedNotificationsOf(db);
  if ((await insertNew(collection, [doc])).size === 0) return doc;
  return (await collection.findOne({ _id: doc._id })) ?? doc;
}

export async function markForwarded(db: Db, id: string, at = new Date()): Promise<void> {
  await unprocessedNotificationsOf(db).updateOne({ _id: id }, { $set: { forwardedAt: at } });
}

/** Finds the AWS account of a customer known only by its legacy CustomerIdentifier. */
export async function findAwsAccountId(
  db: Db,
  productCode: string,
  customerIdentifier: string,
): Promise<string | undefined> {
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
  /** The mark the cancellation put on the deployments it stopped. */
  stoppedBy?: string;
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
