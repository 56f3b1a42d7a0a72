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

/** What a buyer's journey needs: the store, the sandbox's control API and the API's address (a built process's will do). */
interface BuyerStack {
  mongo: Pick<LinkingStack['mongo'], 'db'>;
  sandbox: Pick<LinkingStack['sandbox'], 'control'>;
  api: { url: string };
}

export interface RegisteredBuyer {
  accountId: string;
  browser: Browser;
  sandboxCustomerId: string;
  awsAccountId: string;
  linkCode: string;
  /** The request the index page's Link button sends once the buyer confirmed. */
  requestLink(): Promise<{ status: number; text: string; json<T>(): T }>;
}

/**
 * Subscribes on the sandbox (as `awsAccountId`, if given), registers through
 * the webhook and signs in; the link request is the caller's to make. Needs
 * only the store, the sandbox and where the API listens: the API may be the
 * built process.
 */
export async function registerNewBuyer(stack: BuyerStack, awsAccountId?: string): Promise<RegisteredBuyer> {
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
  }>('POST', '/control/customers', awsAccountId ? { customerAwsAccountId: awsAccountId } : {});
  const browser = new Browser(stack.api.url);
  const registered = await browser.postForm('/marketplace/register', {
    'x-amzn-marketplace-token': created.body.token,
  });
  const next = decodeURIComponent(registered.headers.get('location')!.split('next=')[1]!);
  const signedIn = await browser.postForm('/signin', { email, password: DEMO_PASSWORD, next });
  const linkCode = new URL(signedIn.headers.get('location')!, 'http://x').searchParams.get('link')!;
  return {
    accountId,
    browser,
    linkCode,
    sandboxCustomerId: created.body.customer._id,
    awsAccountId: created.body.customer.customerAwsAccountId,
    requestLink: () => browser.postJson('/api/links', { linkCode }),
  };
}

/** A registered buyer who linked, and whose subscription AWS confirmed. */
export async function linkNewBuyer(stack: BuyerStack): Promise<LinkedBuyer> {
  const buyer = await registerNewBuyer(stack);
  const linked = await buyer.requestLink();
  if (linked.status !== 202) throw new Error(`link request answered ${linked.status}: ${linked.text}`);
  const notify = (action: string) =>
    stack.sandbox.control('POST', `/control/customers/${buyer.sandboxCustomerId}/notifications`, { action });
  await notify('subscribe-success');
  await eventually(
    () => buyer.browser.get('/api/links/current').then((r) => r.json<{ phase?: string }>().phase),
    (phase) => phase === 'linked',
  );
  const { accountId, browser, sandboxCustomerId, awsAccountId } = buyer;
  return { accountId, browser, sandboxCustomerId, awsAccountId, notify };
}
