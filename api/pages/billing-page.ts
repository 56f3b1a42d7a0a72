import { escapeHtml } from '../../lib/html';
import type { billingView } from '../routes/billing';
import { accountPage } from './layout';

export function billingPage(billing: ReturnType<typeof billingView>): string {
  const marketplace = billing.marketplace
    ? `<p>AWS account <code>${escapeHtml(billing.marketplace.awsAccountId)}</code>, product <code>${escapeHtml(billing.marketplace.productCode)}</code>, linked ${escapeHtml(billing.marketplace.linkedAt.slice(0, 10))}.</p>`
    : '';
  return accountPage(
    'Billing',
    billing.name,
    `<h1>Billing</h1>
<table><tr><th>Payment Method</th><td id="payment-method" data-method="${escapeHtml(billing.paymentMethod)}">${escapeHtml(billing.paymentMethodLabel)}</td></tr></table>
${marketplace}`,
  );
}
