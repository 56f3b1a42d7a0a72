/** The Billing page (templates/billing.hbs): the payment method, and a cancellation while it is news. */
import type { BillingView } from '../common/billing-view';

export interface BillingPage {
  title: string;
  accountName: string;
  paymentMethod: string;
  paymentMethodLabel: string;
  marketplace: { awsAccountId: string; productCode: string; linkedOn: string } | null;
  /** `leaving`: AWS has yet to confirm the cancellation; `cancelled`: deployments were stopped. */
  subscription: {
    phase: string;
    leaving: boolean;
    cancelled: boolean;
    /** Stopped deployments stay (`cancelled`) rather than being deleted at the end of the grace period. */
    kept: boolean;
    deployments: Array<{ id: string; name: string; state: string }>;
  } | null;
}

const LEAVING = ['final-metering', 'awaiting-unsubscribe-success'];
const CANCELLED = ['stopping', 'grace-period', 'deleting', 'deleted', 'cancelled'];

export function billingPage(billing: BillingView): BillingPage {
  const { cancellation } = billing;
  const phase = cancellation?.phase ?? '';
  const due = cancellation?.deletionDueAt ? new Date(cancellation.deletionDueAt).toUTCString() : undefined;
  const stateOf = (d: { deleted: boolean }) =>
    d.deleted
      ? 'deleted'
      : phase === 'cancelled' || phase === 'deleted'
        ? 'stopped (kept)'
        : `stopped; to be deleted on ${due ?? 'the end of the grace period'}`;
  const leaving = LEAVING.includes(phase);
  const cancelled = CANCELLED.includes(phase);
  return {
    title: 'Billing',
    accountName: billing.name,
    paymentMethod: billing.paymentMethod,
    paymentMethodLabel: billing.paymentMethodLabel,
    marketplace: billing.marketplace
      ? {
          awsAccountId: billing.marketplace.awsAccountId,
          productCode: billing.marketplace.productCode,
          linkedOn: billing.marketplace.linkedAt.slice(0, 10),
        }
      : null,
    subscription:
      leaving || cancelled
        ? {
            phase,
            leaving,
            cancelled,
            kept: phase === 'cancelled',
            deployments: (cancellation?.stoppedDeployments ?? []).map((d) => ({
              id: d.id,
              name: d.name,
              state: stateOf(d),
            })),
          }
        : null,
  };
}
