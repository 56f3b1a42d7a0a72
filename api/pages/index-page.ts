/**
 * The index page. A modal shows the link to the AWS Billing Account and a
 * pop-up the AWS sync; both poll GET /api/links/current, which reads the
 * store, so the page works while Temporal is busy or down.
 */
import { escapeHtml } from '../../lib/html';
import type { AccountDoc, DeploymentDoc } from '../../lib/store/accounts';
import { accountPage } from './layout';

const script = `
(() => {
  const modal = document.getElementById('link-modal');
  const modalText = document.getElementById('link-message');
  const popup = document.getElementById('sync-popup');
  const popupText = document.getElementById('sync-message');
  const done = new Set(['linked', 'refused', 'cancelled']);
  // On a plain visit only a link still in progress is news; the outcome of an old one lives on the Billing page.
  const inProgress = new Set(['checking', 'waiting-for-aws', 'sync-timed-out']);
  let following = false;
  const show = (phase, message) => {
    modal.hidden = false; modal.dataset.phase = phase; modalText.textContent = message;
  };
  const sync = (status) => {
    const waiting = status.phase === 'waiting-for-aws' || status.phase === 'sync-timed-out';
    popup.hidden = !(waiting || (following && status.phase === 'linked'));
    popup.dataset.state = status.phase === 'linked' ? 'synced' : status.paymentProblem ? 'payment-problem' : status.phase;
    popupText.textContent = status.phase === 'linked' ? 'AWS sync complete.'
      : status.paymentProblem ? 'AWS reported a payment problem; still waiting.'
      : status.phase === 'sync-timed-out' ? 'AWS has not confirmed your subscription yet.' : 'Waiting for AWS to finish syncing…';
  };
  async function poll() {
    const response = await fetch('/api/links/current', { headers: { accept: 'application/json' } });
    if (response.status === 404) return;
    if (!response.ok) return setTimeout(poll, 3000);
    const status = await response.json();
    if (!following && !inProgress.has(status.phase)) return;
    following = true;
    show(status.phase, status.message);
    sync(status);
    if (!done.has(status.phase)) setTimeout(poll, 1000);
  }
  async function redeem(code) {
    following = true;
    show('checking', 'Linking your account to your AWS Billing Account…');
    const response = await fetch('/api/links', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ linkCode: code }),
    });
    if (response.ok || response.status === 409) return poll();
    const problem = await response.json().catch(() => ({ message: 'Linking failed; please retry from AWS Marketplace.' }));
    show('error', problem.message);
  }
  document.getElementById('link-close').addEventListener('click', () => { modal.hidden = true; });
  const code = new URLSearchParams(location.search).get('link');
  // The code is a one-time secret: keep it out of history and bookmarks.
  if (code) history.replaceState(null, '', location.pathname);
  void (code ? redeem(code) : poll());
})();`;

function deploymentRow(deployment: DeploymentDoc): string {
  const trial = deployment.plan === 'trial' && deployment.trialEndsAt ? ` (trial until ${deployment.trialEndsAt.toISOString().slice(0, 10)})` : '';
  return `<tr><td>${escapeHtml(deployment.name)}</td><td>${escapeHtml(deployment.plan)}${escapeHtml(trial)}</td><td>${escapeHtml(deployment.state)}</td></tr>`;
}

export function indexPage(account: AccountDoc, deployments: DeploymentDoc[]): string {
  return accountPage(
    'Deployments',
    account.name,
    `<h1>Deployments</h1>
<table><tr><th>Name</th><th>Plan</th><th>State</th></tr>${deployments.map(deploymentRow).join('')}</table>
<div id="link-modal" role="dialog" aria-labelledby="link-title" hidden
 style="position:fixed;inset:20% 25% auto;background:#fff;border:1px solid #9fb3c8;border-radius:8px;padding:1rem 1.5rem;box-shadow:0 8px 30px #0003">
<h2 id="link-title">AWS Billing Account</h2><p id="link-message"></p>
<p><a href="/billing">Billing</a> <button id="link-close">Close</button></p></div>
<div id="sync-popup" role="status" hidden style="position:fixed;right:1rem;bottom:1rem;background:#243b53;color:#fff;padding:.8rem 1rem;border-radius:6px">
<span id="sync-message"></span></div>
<script>${script}</script>`,
  );
}
