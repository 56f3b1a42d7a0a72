import { escapeHtml, page } from '../../lib/html';

/** A signed-in page: the navigation, the account's name and a sign-out button. */
export function accountPage(title: string, accountName: string, body: string): string {
  return page(
    title,
    `<nav><a href="/">Deployments</a> · <a href="/billing">Billing</a> · signed in as <strong id="account-name">${escapeHtml(accountName)}</strong>
<form method="post" action="/signout" style="display:inline"><button>Sign out</button></form></nav>${body}`,
  );
}
