import { escapeHtml } from '../../lib/html';
import type { billingView } from '../routes/billing';
import { accountPage } from './layout';

export function billingPage(billing: ReturnType<typeof billingView>): string {
  const marketplace = billing.marketplace
    ? `<p>AWS account <code>${escapeHtml(billing.marketplace.awsAccountId)}</code>, product <code>${escapeHtml(billing.marketplace.productCode)}</code>, linked ${escapeHtml(billing.marketplace.linkedAt.slice(0, 10))}.</p>`
    : '';
  const cancellation = billing.cancellation;
  const phase = cancellation?.phase ?? '';
  const due = cancellation?.deletionDueAt ? new Date(cancellation.deletionDueAt).toUTCString() : undefined;
  const stateOf = (d: { deleted: boolean }) =>
    d.deleted ? 'deleted' : phase === 'cancelled' || phase === 'deleted' ? 'stopped (kept)' : `stopped; to be deleted on ${due ?? 'the end of the grace period'}`;
  const rows = (cancellation?.stoppedDeployments ?? [])
    .map((d) => `<tr><td>${escapeHtml(d.name)}</td><td data-deployment="${escapeHtml(d.id)}">${escapeHtml(stateOf(d))}</td></tr>`)
    .join('');
  const leaving = phase === 'final-metering' || phase === 'awaiting-unsubscribe-success';
  const cancelled = ['stopping', 'grace-period', 'deleting', 'deleted', 'cancelled'].includes(phase);
  const cancellationHtml = leaving
    ? `<h2>Subscription</h2><p id="subscription-status" data-phase="${escapeHtml(phase)}">Your AWS Marketplace subscription is being cancelled; AWS confirms it shortly.</p>`
    : cancelled
      ? `<h2>Subscription</h2><p id="subscription-status" data-phase="${escapeHtml(phase)}">Your AWS Marketplace subscription is cancelled.
Running deployments were stopped, except your trial deployment, which runs until its trial ends.${phase === 'cancelled' ? ' Stopped deployments are kept for you to restart.' : ' Stopped deployments are deleted at the end of the grace period.'}</p>
<table><tr><th>Deployment</th><th>State</th></tr>${rows}</table>`
      : '';
  return accountPage(
    'Billing',
    billing.name,
    `<h1>Billing</h1>
<table><tr><th>Payment Method</th><td id="payment-method" data-method="${escapeHtml(billing.paymentMethod)}">${escapeHtml(billing.paymentMethodLabel)}</td></tr></table>
${marketplace}${cancellationHtml}`,
  );
}
