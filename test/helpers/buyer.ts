/** A buyer's whole way in, on the linking stack: subscribe on the sandbox, register, sign in, link, and AWS syncs. */
import { hashPassword } from '../../lib/passwords';
import { accountsOf } from '../../lib/store/accounts';
import { DEMO_PASSWORD } from '../../lib/store/demo-accounts';
import { Browser } from './api';
import type { LinkingStack } from './linking-stack';
import { uniqueName } from './test-env';
import { eventually } from './time-skipping';

export interface LinkedBuyer {
  accountId: string;
  browser: Browser;
  sandboxCustomerId: string;
  awsAccountId: string;
  notify(action: string): Promise<unknown>;
}

/** Needs only the store, the sandbox and where the API listens: the API may be the built process. */
export async function linkNewBuyer(
  stack: Pick<LinkingStack, 'mongo' | 'sandbox'> & { api: { url: string } },
): Promise<LinkedBuyer> {
  const accountId = uniqueName('acct');
  const email = `${accountId}@example.com`;
  await accountsOf(stack.mongo.db).insertOne({
    _id: accountId,
    email,
    name: accountId,
    paymentMethod: 'none',
    passwordHash: await hashPassword(DEMO_PASSWORD),
    createdAt: new Date(),
  });
  const created = await stack.sandbox.control<{
    customer: { _id: string; customerAwsAccountId: string };
    token: string;
  }>('POST', '/control/customers', {});
  const browser = new Browser(stack.api.url);
  const registered = await browser.postForm('/marketplace/register', {
    'x-amzn-marketplace-token': created.body.token,
  });
  const next = decodeURIComponent(registered.headers.get('location')!.split('next=')[1]!);
  const signedIn = await browser.postForm('/signin', { email, password: DEMO_PASSWORD, next });
  const linkCode = new URL(signedIn.headers.get('location')!, 'http://x').searchParams.get('link')!;
  // The request the index page's Link button sends once the buyer confirmed.
  const linked = await browser.postJson('/api/links', { linkCode });
  if (linked.status !== 202) throw new Error(`link request answered ${linked.status}: ${linked.text}`);
  const notify = (action: string) =>
    stack.sandbox.control('POST', `/control/customers/${created.body.customer._id}/notifications`, { action });
  await notify('subscribe-success');
  await eventually(
    () => browser.get('/api/links/current').then((r) => r.json<{ phase?: string }>().phase),
    (phase) => phase === 'linked',
  );
  return {
    accountId,
    browser,
    sandboxCustomerId: created.body.customer._id,
    awsAccountId: created.body.customer.customerAwsAccountId,
    notify,
  };
}
