/** The side effects of account linking, each idempotent so Temporal may retry any of them. */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from 'mongodb';
import { accountsOf, mayPayThroughMarketplace, type AccountDoc } from '../../lib/store/accounts';
import { saveLinkStatus } from '../../lib/store/link-status';
import {
  customerKey,
  marketplaceCustomersOf,
  marketplaceLinksOf,
  notificationsOf,
  restoreMarketplaceBilling,
} from '../../lib/store/marketplace';
import { isDuplicateKeyError } from '../../lib/mongo';
import {
  refusalMessages,
  type AwsCustomer,
  type AwsSyncNotification,
  type LinkRefusal,
  type LinkStatus,
} from '../../domain/link-model';

export interface LinkingDeps {
  db: Db;
}

function refuse(refusal: LinkRefusal): never {
  throw ApplicationFailure.nonRetryable(refusalMessages[refusal], refusal);
}

/** The subscription an account pays through: stored since subscriptions have keys of their own, derived before. */
function billedKey(marketplace: NonNullable<AccountDoc['marketplace']>): string {
  return (
    marketplace.key ?? customerKey({ awsAccountId: marketplace.awsAccountId, productCode: marketplace.productCode })
  );
}

/** The three platform rules, for `customer`; throws the refusal. */
function assertEligible(account: AccountDoc | null, customer: AwsCustomer): asserts account is AccountDoc {
  if (!account) refuse('AccountNotFound');
  // A subscription that AWS ended (cancelledAt) frees the account for another purchase.
  const linkedElsewhere =
    account.marketplace !== undefined &&
    !account.marketplace.cancelledAt &&
    billedKey(account.marketplace) !== customerKey(customer);
  if (linkedElsewhere || (account.paymentMethod === 'aws-marketplace' && !account.marketplace))
    refuse('AccountAlreadyLinked');
  if (account.creditCard || account.paymentMethod === 'credit-card') refuse('CreditCardOnFile');
  if (account.paymentMethod === 'available-credits' || (account.availableCredits ?? 0) > 0)
    refuse('UsesAvailableCredits');
}

export interface LinkRecord {
  /** The platform account that reserved this AWS customer, if any. */
  owner?: { accountId: string; active: boolean };
  /** subscribe-* notifications since the last unsubscribe, recorded before this run could receive them as signals. */
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
        .find({ productCode: customer.productCode, $or: [{ awsAccountId: customer.awsAccountId }, ...byIdentifier] })
        .sort({ sentAt: 1, receivedAt: 1 })
        .toArray();
      // A subscription that ended does not confirm a new one: only what came after the last unsubscribe counts.
      const lastUnsubscribe = recorded.map((n) => n.action).lastIndexOf('unsubscribe-success');
      const current = recorded
        .slice(lastUnsubscribe + 1)
        .filter((n) => n.action === 'subscribe-success' || n.action === 'subscribe-fail');
      return {
        owner: link ? { accountId: link.accountId, active: link.state === 'active' } : undefined,
        notifications: current.map((n) => ({ messageId: n._id, action: n.action as AwsSyncNotification['action'] })),
      };
    },

    /** A refusal is a non-retryable ApplicationFailure whose type is the reason. */
    async checkEligibility(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      assertEligible(await accountsOf(db).findOne({ _id: input.accountId }), input.customer);
    },

    /**
     * Reserves the AWS customer for the account with one insert. The unique _id
     * (the AWS customer) and the unique accountId index make it atomic without
     * transactions; repeating it for the same pair is a no-op.
     */
    async reserveLink(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const links = marketplaceLinksOf(db);
      const _id = customerKey(input.customer);
      const reserve = () =>
        links.insertOne({
          _id,
          ...input.customer,
          accountId: input.accountId,
          state: 'reserved',
          reservedAt: new Date(),
        });
      try {
        await reserve().catch(async (error: unknown) => {
          // The account's earlier subscription ended: its cancelled link gives way to the new purchase.
          if (
            !isDuplicateKeyError(error) ||
            (await links.deleteOne({ accountId: input.accountId, state: 'cancelled', _id: { $ne: _id } }))
              .deletedCount === 0
          )
            throw error;
          await reserve();
        });
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        const forCustomer = await links.findOne({ _id });
        if (forCustomer?.accountId === input.accountId) return;
        if (forCustomer) refuse('CustomerLinkedToAnotherAccount');
        const forAccount = await links.findOne({ accountId: input.accountId });
        refuse(forAccount?.state === 'reserved' ? 'AccountLinkPending' : 'AccountAlreadyLinked');
      }
    },

    /** Gives a reservation back (an operator cancelled it, or the account stopped being eligible); never an active link. */
    async releaseLink(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      await marketplaceLinksOf(db).deleteOne({
        _id: customerKey(input.customer),
        accountId: input.accountId,
        state: 'reserved',
      });
    },

    async publishLinkStatus(status: LinkStatus): Promise<void> {
      await saveLinkStatus(db, status);
    },

    /**
     * AWS confirmed the subscription: the account now pays through AWS
     * Marketplace. The wait may have lasted hours, so the rules are checked
     * again, and the update's filter repeats them: a card added meanwhile is
     * never overwritten.
     */
    async activateMarketplaceBilling(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const key = customerKey(input.customer);
      const accounts = accountsOf(db);
      // Both reads at once: the buyer waits on this activity, and neither depends on the other.
      const [account, known] = await Promise.all([
        accounts.findOne({ _id: input.accountId }),
        marketplaceCustomersOf(db).findOne({ _id: key }),
      ]);
      assertEligible(account, input.customer);
      const identifiers = {
        ...(known?.customerIdentifier ? { customerIdentifier: known.customerIdentifier } : {}),
        ...(known?.licenseArn ? { licenseArn: known.licenseArn } : {}),
      };
      const endedElsewhere = account.marketplace?.cancelledAt !== undefined && billedKey(account.marketplace) !== key;
      if (!account.marketplace || endedElsewhere) {
        // A first link, or a new purchase after the account's earlier subscription ended.
        const activated = await accounts.updateOne(
          {
            _id: input.accountId,
            ...(endedElsewhere
              ? { 'marketplace.cancelledAt': { $exists: true } }
              : { marketplace: { $exists: false } }),
            ...mayPayThroughMarketplace,
          },
          {
            $set: {
              paymentMethod: 'aws-marketplace',
              marketplace: { ...input.customer, ...identifiers, key, linkedAt: new Date() },
            },
          },
        );
        // Changed between the read and the write: decide again on what is there now.
        if (activated.matchedCount === 0)
          assertEligible(await accounts.findOne({ _id: input.accountId }), input.customer);
      }
      // A resubscription after a completed cancellation finds the account still linked to this customer, with billing ended.
      if (account.marketplace?.cancelledAt && !endedElsewhere) {
        await restoreMarketplaceBilling(db, input.customer, input.accountId, identifiers);
        return;
      }
      await marketplaceLinksOf(db).updateOne(
        { _id: key, state: 'reserved' },
        { $set: { state: 'active', activatedAt: new Date(), ...identifiers } },
      );
    },
  };
}
