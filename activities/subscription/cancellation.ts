/** The side effects of a cancellation: billing state and the deployments, each idempotent. */
import type { Db } from 'mongodb';
import { accountsOf } from '../../lib/store/accounts';
import {
  cancellationsOf,
  customerKey,
  marketplaceLinksOf,
  restoreMarketplaceBilling,
} from '../../lib/store/marketplace';
import type { AwsCustomer } from '../../domain/link-model';
import type { DeleteOutcome, DeploymentControl, DeploymentView, StopOutcome } from './deployment-control';

export interface CancellationDeps {
  db: Db;
  deployments: DeploymentControl;
}

export function createCancellationActivities({ db, deployments }: CancellationDeps) {
  const links = marketplaceLinksOf(db);
  return {
    /** The platform account linked to this AWS customer, and since when its current subscription runs. */
    async findLinkedAccount(
      customer: AwsCustomer,
    ): Promise<{ accountId: string; subscribedSince: string } | undefined> {
      const link = await links.findOne({ _id: customerKey(customer), state: { $ne: 'reserved' } });
      if (!link) return undefined;
      const since = link.resubscribedAt ?? link.activatedAt ?? link.reservedAt;
      return { accountId: link.accountId, subscribedSince: since.toISOString() };
    },

    /** unsubscribe-pending: still metered (final hour), but on its way out. */
    async markCancellationPending(customer: AwsCustomer): Promise<void> {
      await links.updateOne(
        { _id: customerKey(customer), state: 'active' },
        { $set: { state: 'unsubscribe-pending' } },
      );
    },

    /** unsubscribe-success: no more metering, and the account no longer pays through AWS Marketplace. */
    async endMarketplaceBilling(input: { customer: AwsCustomer; accountId: string }): Promise<void> {
      const cancelledAt = new Date();
      await links.updateOne(
        { _id: customerKey(input.customer), state: { $in: ['active', 'unsubscribe-pending'] } },
        { $set: { state: 'cancelled', cancelledAt } },
      );
      await accountsOf(db).updateOne(
        { _id: input.accountId, paymentMethod: 'aws-marketplace' },
        { $set: { paymentMethod: 'none', 'marketplace.cancelledAt': cancelledAt } },
      );
    },

    /** A resubscription before the deletion. */
    restoreMarketplaceBilling(input: {
      customer: AwsCustomer;
      accountId: string;
    }): Promise<'restored' | 'kept-cancelled'> {
      return restoreMarketplaceBilling(db, input.customer, input.accountId);
    },

    /** What the Billing page shows; each write replaces the last, as the workflow's steps are sequential. */
    async saveCancellation(input: {
      customer: AwsCustomer;
      accountId: string;
      phase: string;
      deletionDueAt?: string;
      stopped: Array<{ id: string; name: string }>;
      deleted: string[];
    }): Promise<void> {
      const _id = customerKey(input.customer);
      await cancellationsOf(db).replaceOne(
        { _id },
        {
          accountId: input.accountId,
          phase: input.phase,
          ...(input.deletionDueAt ? { deletionDueAt: new Date(input.deletionDueAt) } : {}),
          stopped: input.stopped,
          deleted: input.deleted,
          updatedAt: new Date(),
        },
        { upsert: true },
      );
    },

    listRunningDeployments(accountId: string): Promise<DeploymentView[]> {
      return deployments.listRunning(accountId);
    },

    stopDeployment(input: { deploymentId: string; stoppedBy: string }): Promise<StopOutcome> {
      return deployments.stop(input.deploymentId, input.stoppedBy);
    },

    deleteDeploymentIfStillStopped(input: { deploymentId: string; stoppedBy: string }): Promise<DeleteOutcome> {
      return deployments.deleteIfStillStopped(input.deploymentId, input.stoppedBy);
    },
  };
}
