/** The side effects of account linking, each idempotent so Temporal may retry any of them. */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from 'mongodb';
import { accountsOf } from '../lib/store/accounts';
import { saveLinkStatus } from '../lib/store/link-status';
import { customerKey, marketplaceCustomersOf, marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { isDuplicateKeyError } from '../lib/mongo';
import {
  refusalMessages,
  type AwsCustomer,
  type AwsSyncNotification,
  type LinkRefusal,
  type LinkStatus,
} from '../workflows/link-model';

export interface LinkingDeps {
  db: Db;
}

function refuse(refusal: LinkRefusal): never {
  throw ApplicationFailure.nonRetryable(refusalMessages[refusal], refusal);
}

export interface LinkRecord {
  /** The platform account that reserved this AWS customer, if any. */
  owner?: { accountId: string; active: boolean };
  /** subscribe-* notifications recorded before this run could receive them as signals. */
  notifications: AwsSyncNotification[];
}

export function createLinkingActivities({ db }: LinkingDeps) {
  return {
    /** What earlier runs and the poller left in the store for this AWS customer. */
    async loadLinkRecord(customer: AwsCustomer): Promise<LinkRecord> {
      const [link, known] = await Promise.all([
        marketplaceLinksOf(db).findOne({ _id: customerKey(customer) }),
        marketplaceCustomersOf(db).findOne({ _id: customerKey(customer) }),
      ]);
      const byIdentifier = known?.customerIdentifier ? [{ customerIdentifier: known.customerIdentifier }] : [];
      const recorded = await notificationsOf(db)
        .find({
          productCode: customer.productCode,
          action: { $in: ['subscribe-success', 'subscribe-fail'] },
          $or: [{ awsAccountId: customer.awsAccountId }, ...byIdentifier],
        })
        .sort({ receivedAt: 1 })
        .toArray();
      return {
        owner: link ? { accountId: link.accountId, active: link.state === 'active' } : undefined,
        notifications: recorded.map((n) => ({ messageId: n._id, action: n.action as AwsSyncNotification['action'] })),
      };
    },

    /** The three platform rules. A refusal is a non-retryable ApplicationFailure typed with its reason. */
    async checkEligibility(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const account = await accountsOf(db).findOne({ _id: input.accountId });
      if (!account) refuse('AccountNotFound');
      const linkedElsewhere =
        account.marketplace !== undefined &&
        customerKey(account.marketplace) !== customerKey(input.customer);
      if (linkedElsewhere || (account.paymentMethod === 'aws-marketplace' && !account.marketplace)) refuse('AccountAlreadyLinked');
      if (account.creditCard || account.paymentMethod === 'credit-card') refuse('CreditCardOnFile');
      if (account.paymentMethod === 'available-credits' || (account.availableCredits ?? 0) > 0) refuse('UsesAvailableCredits');
    },

    /**
     * Reserves the AWS customer for the account with one insert. The unique _id
     * (the AWS customer) and the unique accountId index make it atomic without
     * transactions; repeating it for the same pair is a no-op.
     */
    async reserveLink(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const links = marketplaceLinksOf(db);
      const _id = customerKey(input.customer);
      try {
        await links.insertOne({ _id, ...input.customer, accountId: input.accountId, state: 'reserved', reservedAt: new Date() });
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        const mine = await links.findOne({ _id });
        if (mine?.accountId === input.accountId) return;
        if (mine) refuse('CustomerLinkedToAnotherAccount');
        refuse('AccountAlreadyLinked');
      }
    },

    async publishLinkStatus(status: LinkStatus): Promise<void> {
      await saveLinkStatus(db, status);
    },

    /** AWS confirmed the subscription: the account now pays through AWS Marketplace. */
    async activateMarketplaceBilling(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const key = customerKey(input.customer);
      const known = await marketplaceCustomersOf(db).findOne({ _id: key });
      const activatedAt = new Date();
      await accountsOf(db).updateOne(
        { _id: input.accountId, 'marketplace.linkedAt': { $exists: false } },
        {
          $set: {
            paymentMethod: 'aws-marketplace',
            marketplace: {
              ...input.customer,
              ...(known?.customerIdentifier ? { customerIdentifier: known.customerIdentifier } : {}),
              ...(known?.licenseArn ? { licenseArn: known.licenseArn } : {}),
              linkedAt: activatedAt,
            },
          },
        },
      );
      await marketplaceLinksOf(db).updateOne({ _id: key, state: 'reserved' }, { $set: { state: 'active', activatedAt } });
    },
  };
}
