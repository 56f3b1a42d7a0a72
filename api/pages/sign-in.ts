import { escapeHtml, page } from '../../lib/html';

export function signInPage(next: string, error?: string, demo = false): string {
  const demoNote = demo
    ? `<p class="note">Local demo: sign in as <code>alice@example.com</code> or <code>bob@example.com</code> (eligible),
<code>carol@example.com</code> (credit card on file), <code>dave@example.com</code> (Available Credits) or
<code>erin@example.com</code> (already linked). The password of each is in the README.</p>`
    : '';
  return page(
    'Sign in',
    `<h1>Sign in to the platform</h1>
${error ? `<p id="sign-in-error" role="alert" class="note">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/signin">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<p><label>Email <input id="email" name="email" type="email" autocomplete="username" required></label></p>
<p><label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label></p>
<button id="sign-in">Sign in</button></form>${demoNote}`,
  );
}
