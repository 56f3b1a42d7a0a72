/**
 * The index page. With a link code in its address it first asks the buyer to
 * confirm, naming the AWS account that will pay, the product and the platform
 * account; only the Link button's click links. A modal then shows the link to
 * the AWS Billing Account and a pop-up the AWS sync; both poll
 * GET /api/links/current, which reads the store, so the page works while
 * Temporal is busy or down.
 */
import { escapeHtml } from '../../lib/html';
import type { AccountDoc, DeploymentDoc } from '../../lib/store/accounts';
import type { LinkCodeDoc } from '../../lib/store/registrations';
import { linkCodeErrors, spelledAwsAccountId, type LinkOffer } from '../link-codes';
import { INDEX_SCRIPT_PATH } from './index-script';
import { accountPage } from './layout';

const dialogStyle = 'position:fixed;inset:20% 25% auto;background:#fff;border:1px solid #9fb3c8;border-radius:8px;padding:1rem 1.5rem;box-shadow:0 8px 30px #0003';

/**
 * Names only what AWS vouched for (ResolveCustomer's account and product) and
 * the signed-in account. The offer type comes from the form the browser
 * posted, which anyone can write, so it is not shown: "free trial" must not
 * make a planted code look more convincing.
 */
function confirmation(account: AccountDoc, offer: LinkCodeDoc): string {
  return `<div id="link-confirmation" role="dialog" aria-modal="true" aria-labelledby="link-confirmation-title" style="${dialogStyle}">
<h2 id="link-confirmation-title">Pay through AWS Marketplace?</h2>
<p>AWS account <strong>${escapeHtml(spelledAwsAccountId(offer.awsAccountId))}</strong> will pay for <strong>${escapeHtml(account.name)}</strong>
(${escapeHtml(account.email)}): AWS Marketplace product <code>${escapeHtml(offer.productCode)}</code>.
The usage of every deployment of this account will be billed to that AWS account.</p>
<p class="note">Link only if you just subscribed on AWS Marketplace with this AWS account and clicked <strong>Set Up Your Account</strong>.
If you did not, or this is not the account you meant, choose <strong>Not me</strong>: nothing is linked.</p>
<p><button id="link-confirm" disabled>Link</button> <button id="link-decline">Not me, cancel</button></p></div>`;
}

function deploymentRow(deployment: DeploymentDoc): string {
  const trial = deployment.plan === 'trial' && deployment.trialEndsAt ? ` (trial until ${deployment.trialEndsAt.toISOString().slice(0, 10)})` : '';
  return `<tr><td>${escapeHtml(deployment.name)}</td><td>${escapeHtml(deployment.plan)}${escapeHtml(trial)}</td><td>${escapeHtml(deployment.state)}</td></tr>`;
}

/** `link`: what the code in the page's address allows, if it carried one. */
export function indexPage(account: AccountDoc, deployments: DeploymentDoc[], link?: LinkOffer): string {
  // A code that cannot be used is explained at once; the script then leaves the modal alone.
  const problem = link && 'problem' in link ? linkCodeErrors[link.problem].message : undefined;
  const modalState = problem ? 'data-phase="error"' : 'hidden';
  return accountPage(
    'Deployments',
    account.name,
    `<h1>Deployments</h1>
<table><tr><th>Name</th><th>Plan</th><th>State</th></tr>${deployments.map(deploymentRow).join('')}</table>
<div id="link-modal" role="dialog" aria-labelledby="link-title" ${modalState} style="${dialogStyle}">
<h2 id="link-title">AWS Billing Account</h2><p id="link-message">${escapeHtml(problem ?? '')}</p>
<p><a href="/billing">Billing</a> <button id="link-close">Close</button></p></div>
${link && 'offer' in link ? confirmation(account, link.offer) : ''}
<div id="sync-popup" role="status" hidden style="position:fixed;right:1rem;bottom:1rem;background:#243b53;color:#fff;padding:.8rem 1rem;border-radius:6px">
<span id="sync-message"></span></div>
<script src="${INDEX_SCRIPT_PATH}" defer></script>`,
  );
}
