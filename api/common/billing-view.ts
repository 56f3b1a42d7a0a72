/** What an account's billing looks like, for the JSON API and the Billing page alike. */
import type { Db } from 'mongodb';
import { paymentMethodLabel, type AccountDoc } from '../../lib/store/accounts';
import { cancellationsOf, type CancellationDoc } from '../../lib/store/marketplace';

/** The account's most recent cancellation, as its workflow last recorded it. */
export function latestCancellation(db: Db, accountId: string): Promise<CancellationDoc | null> {
  return cancellationsOf(db).find({ accountId }).sort({ updatedAt: -1 }).limit(1).next();
}

export function billingView(account: AccountDoc, cancellation?: CancellationDoc | null) {
  // Once billing runs through AWS again (a resubscription), an earlier cancellation is history, not news.
  const current =
    account.paymentMethod !== 'aws-marketplace' ||
    cancellation?.phase === 'final-metering' ||
    cancellation?.phase === 'awaiting-unsubscribe-success';
  return {
    ...(cancellation && current
      ? {
          cancellation: {
            phase: cancellation.phase,
            ...(cancellation.deletionDueAt ? { deletionDueAt: cancellation.deletionDueAt.toISOString() } : {}),
            stoppedDeployments: cancellation.stopped.map((d) => ({
              ...d,
              deleted: cancellation.deleted.includes(d.id),
            })),
          },
        }
      : {}),
    accountId: account._id,
    name: account.name,
    paymentMethod: account.paymentMethod,
    paymentMethodLabel: paymentMethodLabel(account),
    ...(account.marketplace
      ? {
          marketplace: {
            awsAccountId: account.marketplace.awsAccountId,
            productCode: account.marketplace.productCode,
            linkedAt: account.marketplace.linkedAt.toISOString(),
          },
        }
      : {}),
  };
}

export type BillingView = ReturnType<typeof billingView>;
