/**
 * The index page's script, served as a file of its own (`INDEX_SCRIPT_PATH`)
 * so that the Content-Security-Policy can refuse every inline script.
 *
 * A link code in the address is only ever redeemed by a click on Link in the
 * confirmation the page renders: anyone can make a browser arrive here with a
 * code (see api/routes/registration.ts), so arriving proves nothing.
 */
export const INDEX_SCRIPT_PATH = '/assets/index.js';

/** How long the confirmation must be in front of the buyer before Link can be clicked. */
export const ARM_DELAY_MS = 1000;

export const indexScript = `'use strict';
(() => {
  const ARM_DELAY_MS = ${ARM_DELAY_MS};
  const modal = document.getElementById('link-modal');
  const modalText = document.getElementById('link-message');
  const popup = document.getElementById('sync-popup');
  const popupText = document.getElementById('sync-message');
  const confirmation = document.getElementById('link-confirmation');
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
  const post = (path, code) => fetch(path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ linkCode: code }),
  });
  const problemOf = (response, fallback) => response.json().catch(() => ({ message: fallback }));
  async function redeem(code) {
    following = true;
    show('checking', 'Linking your account to your AWS Billing Account…');
    const response = await post('/api/links', code);
    if (response.ok || response.status === 409) return poll();
    show('error', (await problemOf(response, 'Linking failed; please retry from AWS Marketplace.')).message);
  }
  async function decline(code) {
    const response = await post('/api/links/decline', code);
    const answer = await problemOf(response, 'We could not record your answer, but nothing was linked.');
    show(response.ok ? 'declined' : 'error', answer.message);
  }
  document.getElementById('link-close').addEventListener('click', () => { modal.hidden = true; });
  const code = new URLSearchParams(location.search).get('link');
  // The code is a one-time secret: keep it out of history and bookmarks.
  if (code) history.replaceState(null, '', location.pathname);
  if (confirmation && code) {
    const answer = (act) => () => { confirmation.hidden = true; void act(code); };
    const link = document.getElementById('link-confirm');
    // Link arms only after the dialog has been in front of the buyer for a second, and disarms whenever the
    // page loses focus: a click meant for something else (a pop-up that closes itself under a double click,
    // a window raised at the last moment) can never land on it.
    let arming;
    const disarm = () => { clearTimeout(arming); link.disabled = true; };
    const arm = () => {
      disarm();
      if (document.visibilityState === 'visible' && document.hasFocus()) arming = setTimeout(() => { link.disabled = false; }, ARM_DELAY_MS);
    };
    window.addEventListener('blur', disarm);
    window.addEventListener('focus', arm);
    document.addEventListener('visibilitychange', arm);
    arm();
    link.addEventListener('click', answer(redeem), { once: true });
    document.getElementById('link-decline').addEventListener('click', answer(decline), { once: true });
  } else if (modal.hidden) {
    void poll();
  }
})();
`;
