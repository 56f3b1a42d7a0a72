/**
 * Account linking end to end on the real stack: the registration webhook
 * redeems a sandbox token with ResolveCustomer, the buyer signs in and links,
 * the sandbox publishes subscribe-success through SNS into SQS, the poller
 * signals the subscription's workflow, and the payment method changes in MongoDB.
 */
import { randomBytes } from 'node:crypto';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Connection, Client } from '@temporalio/client';
import { hashPassword } from '../lib/passwords';
import { createSqsClient } from '../lib/aws';
import { accountsOf } from '../lib/store/accounts';
import { DEMO_PASSWORD, seedDemoAccounts } from '../lib/store/demo-accounts';
import { linkStatusesOf } from '../lib/store/link-status';
import { marketplaceCustomersOf, marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { linkCodesOf, linkCodeUsesOf, redeemedTokensOf } from '../lib/store/registrations';
import { Browser, sessionFor, startApi } from './helpers/api';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { eventuallyState, subscriptionHandle, subscriptionIdOf } from './helpers/subscription';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

/** The shape of a real token (long padded base64), that AWS never issued. */
const wellFormedUnknownToken = () => randomBytes(64).toString('base64');

interface Subscription {
  customer: { _id: string; customerAwsAccountId: string; customerIdentifier?: string; licenseArn: string };
  token: string;
}

describe('account linking on the real stack', () => {
  let stack: LinkingStack;
  const sqs = () => createSqsClient(testServers.aws());

  beforeAll(async () => {
    stack = await startLinkingStack();
    await seedDemoAccounts(stack.mongo.db);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const subscribe = async (body: Record<string, unknown> = {}) => {
    const created = await stack.sandbox.control<Subscription>('POST', '/control/customers', body);
    expect(created.status).toBe(201);
    return created.body;
  };
  const notify = (subscription: Subscription, action: string) =>
    stack.sandbox.control('POST', `/control/customers/${subscription.customer._id}/notifications`, { action });
  const register = (browser: Browser, token: string, extra: Record<string, string> = {}) =>
    browser.postForm('/marketplace/register', { 'x-amzn-marketplace-token': token, ...extra });
  const linkCodeOf = (location: string) => new URL(decodeURIComponent(location), 'http://x').searchParams.get('link')!;
  const signIn = (browser: Browser, email: string, next = '/') =>
    browser.postForm('/signin', { email, password: DEMO_PASSWORD, next });
  /** Everything a request could store or change, to show that a refused one changed nothing. */
  const counts = async () => ({
    customers: await marketplaceCustomersOf(stack.mongo.db).countDocuments(),
    tokens: await redeemedTokensOf(stack.mongo.db).countDocuments(),
    codes: await linkCodesOf(stack.mongo.db).countDocuments(),
    uses: await linkCodeUsesOf(stack.mongo.db).countDocuments(),
    statuses: await linkStatusesOf(stack.mongo.db).countDocuments(),
    links: await marketplaceLinksOf(stack.mongo.db).countDocuments(),
    accounts: await accountsOf(stack.mongo.db)
      .find({}, { sort: { _id: 1 } })
      .toArray(),
  });
  /** A fresh eligible account that signs in with the demo password, so tests do not share buyers. */
  const newBuyer = async () => {
    const _id = uniqueName('acct');
    const email = `${_id}@example.com`;
    await accountsOf(stack.mongo.db).insertOne({
      _id,
      email,
      name: _id,
      paymentMethod: 'none',
      passwordHash: await hashPassword(DEMO_PASSWORD),
      createdAt: new Date(),
    });
    return { _id, email };
  };
  const currentStatus = (browser: Browser) => browser.get('/api/links/current');
  const phaseOf = async (browser: Browser) => (await currentStatus(browser)).json<{ phase?: string }>().phase;

  /** Registration and sign-in as a buyer does them; returns the link code the index page offers for confirmation (the Link button posts it). */
  async function arriveFromAws(
    browser: Browser,
    subscription: Subscription,
    email: string,
    offer: Record<string, string> = {},
  ) {
    const registered = await register(browser, subscription.token, offer);
    expect(registered.status).toBe(303);
    const location = registered.headers.get('location')!;
    expect(location).toMatch(/^\/signin\?next=/);
    expect((await browser.get(location)).status).toBe(200);
    const signedIn = await signIn(browser, email, decodeURIComponent(location.split('next=')[1]!));
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toMatch(/^\/\?link=/);
    // The index page asks; nothing links until the buyer's click (test/security/02-forced-linking.test.ts).
    expect((await browser.get(signedIn.headers.get('location')!)).text).toContain('id="link-confirm"');
    return linkCodeOf(signedIn.headers.get('location')!);
  }

  it('links a buyer from the webhook through subscribe-success to the payment method', async () => {
    const subscription = await subscribe({ freeTrial: true });
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, 'alice@example.com', {
      'x-amzn-marketplace-offer-type': 'free-trial',
    });
    expect(browser.cookies.get('mp_link_binding')).toBeTruthy();

    const stored = await marketplaceCustomersOf(stack.mongo.db).findOne({
      awsAccountId: subscription.customer.customerAwsAccountId,
    });
    expect(stored).toMatchObject({
      productCode: stack.productCode,
      licenseArn: subscription.customer.licenseArn,
      offerType: 'free-trial',
    });

    const linked = await browser.postJson('/api/links', { linkCode: code });
    // The workflow's decision, not a promise of one: the account holds the subscription and waits for AWS.
    expect(linked.status).toBe(202);
    expect(linked.json()).toMatchObject({
      phase: 'waiting-for-aws',
      accountId: 'acct-alice',
      awsAccountId: subscription.customer.customerAwsAccountId,
    });
    // The answer comes once it is published: the index page's status agrees with it.
    expect(await phaseOf(browser)).toBe('waiting-for-aws');
    expect((await browser.get('/api/billing')).json()).toMatchObject({ paymentMethod: 'none' });

    expect((await notify(subscription, 'subscribe-success')).status).toBe(202);
    const done = await eventually(
      () => currentStatus(browser).then((r) => r.json()),
      (s) => s.phase === 'linked',
    );
    expect(Object.keys(done).sort()).toEqual(
      ['accountId', 'awsAccountId', 'message', 'paymentProblem', 'phase', 'productCode', 'updatedAt'].sort(),
    );
    expect((await browser.get('/api/billing')).json()).toMatchObject({
      paymentMethod: 'aws-marketplace',
      paymentMethodLabel: 'AWS Marketplace Subscription',
      marketplace: { awsAccountId: subscription.customer.customerAwsAccountId, productCode: stack.productCode },
    });
    expect(await accountsOf(stack.mongo.db).findOne({ _id: 'acct-alice' })).toMatchObject({
      paymentMethod: 'aws-marketplace',
    });
    expect(
      await notificationsOf(stack.mongo.db).countDocuments({
        awsAccountId: subscription.customer.customerAwsAccountId,
      }),
    ).toBe(1);
    const billingPage = await browser.get('/billing');
    expect(billingPage.text).toContain('AWS Marketplace Subscription');

    // The notification was deleted after the hand-off: nothing is left in flight.
    const attributes = await sqs().send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.aws.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(attributes.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });

  it('links a legacy (CustomerIdentifier) buyer whose subscribe-success arrived before the link', async () => {
    const subscription = await subscribe({ model: 'legacy' });
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, 'bob@example.com');
    await notify(subscription, 'subscribe-success');
    await eventually(
      () =>
        notificationsOf(stack.mongo.db).countDocuments({
          customerIdentifier: subscription.customer.customerIdentifier,
        }),
      (n) => n === 1,
    );
    const linked = await browser.postJson('/api/links', { linkCode: code });
    expect(linked.status).toBe(202);
    expect(['waiting-for-aws', 'linked']).toContain(linked.json().phase);
    await eventually(
      () => phaseOf(browser),
      (phase) => phase === 'linked',
    );
    const workflow = await subscriptionHandle(stack.temporal, stack.mongo.db, {
      awsAccountId: subscription.customer.customerAwsAccountId,
      productCode: stack.productCode,
    });
    const state = await eventuallyState(workflow, (s) => s.phase === 'active');
    expect(state).toMatchObject({ phase: 'active', owner: 'acct-bob', aws: { status: 'subscribed' } });
    expect(state.history).toEqual([expect.objectContaining({ action: 'subscribe-success', verdict: 'subscribed' })]);
  });

  it('links a legacy buyer whose subscribe-success arrived before we had ever heard of them', async () => {
    const subscription = await subscribe({ model: 'legacy' });
    const buyer = await newBuyer();
    await notify(subscription, 'subscribe-success');
    // Only a customer-identifier we cannot map yet: the poller records it and hands nothing to Temporal.
    await eventually(
      () =>
        notificationsOf(stack.mongo.db).countDocuments({
          customerIdentifier: subscription.customer.customerIdentifier,
        }),
      (n) => n === 1,
    );
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, buyer.email);
    const workflowId = await subscriptionIdOf(stack.mongo.db, {
      awsAccountId: subscription.customer.customerAwsAccountId,
      productCode: stack.productCode,
    });
    await expect(stack.temporal.workflow.getHandle(workflowId).describe()).rejects.toThrow(/not found/i);
    expect((await browser.postJson('/api/links', { linkCode: code })).status).toBe(202);
    await eventually(
      () => phaseOf(browser),
      (phase) => phase === 'linked',
    );
    // The workflow the link request started read the recorded notification.
    const state = await eventuallyState(stack.temporal.workflow.getHandle(workflowId), (s) => s.phase === 'active');
    expect(state).toMatchObject({
      owner: buyer._id,
      history: [expect.objectContaining({ action: 'subscribe-success', verdict: 'subscribed' })],
    });
  });

  it('shows the refusal for an account with a credit card, changes nothing, and links once the card is gone', async () => {
    const subscription = await subscribe();
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, 'carol@example.com');
    const answer = await browser.postJson('/api/links', { linkCode: code });
    // The refusal is the answer itself (200), and the index page shows it too.
    expect(answer.status).toBe(200);
    expect(answer.json()).toMatchObject({
      phase: 'refused',
      accountId: 'acct-carol',
      refusal: 'CreditCardOnFile',
      message: expect.stringMatching(/credit card/),
    });
    const refused = (await currentStatus(browser)).json();
    expect(refused).toMatchObject({
      phase: 'refused',
      refusal: 'CreditCardOnFile',
      message: expect.stringMatching(/credit card/),
    });
    expect(await accountsOf(stack.mongo.db).findOne({ _id: 'acct-carol' })).toMatchObject({
      paymentMethod: 'credit-card',
    });

    // Carol removes her card (the platform's account service does that) and sets up her account again from AWS.
    await accountsOf(stack.mongo.db).updateOne(
      { _id: 'acct-carol' },
      { $set: { paymentMethod: 'none' }, $unset: { creditCard: '' } },
    );
    const again = await stack.sandbox.control<{ token: string }>(
      'POST',
      `/control/customers/${subscription.customer._id}/tokens`,
      {},
    );
    const registered = await register(browser, again.body.token);
    expect(registered.headers.get('location')).toMatch(/^\/\?link=/);
    const retried = await browser.postJson('/api/links', { linkCode: linkCodeOf(registered.headers.get('location')!) });
    expect([retried.status, retried.json().phase]).toEqual([202, 'waiting-for-aws']);
    // The old refusal is not shown for the new attempt.
    expect(await phaseOf(browser)).toBe('waiting-for-aws');
    await notify(subscription, 'subscribe-success');
    await eventually(
      () => phaseOf(browser),
      (phase) => phase === 'linked',
    );
    expect(await accountsOf(stack.mongo.db).findOne({ _id: 'acct-carol' })).toMatchObject({
      paymentMethod: 'aws-marketplace',
    });
  });

  it('retries throttled and failing ResolveCustomer calls with backoff, and never retries an invalid token', async () => {
    const subscription = await subscribe();
    await stack.sandbox.control('PUT', '/control/faults', [
      { operation: 'ResolveCustomer', fault: 'throttle', count: 2 },
      { operation: 'ResolveCustomer', fault: 'internal', count: 1 },
    ]);
    const before =
      (
        await stack.sandbox.control<Record<string, { outcomes: Record<string, number> }>>(
          'GET',
          '/control/calls/summary',
        )
      ).body.ResolveCustomer?.outcomes ?? {};
    const registered = await register(new Browser(stack.api.url), subscription.token);
    expect(registered.status).toBe(303);
    const after = (
      await stack.sandbox.control<Record<string, { outcomes: Record<string, number> }>>('GET', '/control/calls/summary')
    ).body.ResolveCustomer!.outcomes;
    const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    expect([delta('ThrottlingException'), delta('InternalServiceErrorException'), delta('ok')]).toEqual([2, 1, 1]);

    const invalid = await register(new Browser(stack.api.url), wellFormedUnknownToken());
    expect(invalid.status).toBe(403);
    const again = (
      await stack.sandbox.control<Record<string, { outcomes: Record<string, number> }>>('GET', '/control/calls/summary')
    ).body.ResolveCustomer!.outcomes;
    expect((again.InvalidTokenException ?? 0) - (after.InvalidTokenException ?? 0)).toBe(1);
  });

  it('answers a missing, garbage, invalid, expired or replayed token with a clear page and stores nothing', async () => {
    const expiring = await subscribe({ tokenTtlSeconds: 1 });
    const used = await subscribe();
    const first = new Browser(stack.api.url);
    expect((await register(first, used.token)).status).toBe(303);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const before = await counts();

    const cases: Array<[string, Record<string, string>, number, string]> = [
      ['missing', {}, 400, 'invalid'],
      ['garbage', { 'x-amzn-marketplace-token': '<script>alert(1)</script>' }, 400, 'invalid'],
      ['short', { 'x-amzn-marketplace-token': 'dW5rbm93bi10b2tlbg==' }, 400, 'invalid'],
      ['unknown', { 'x-amzn-marketplace-token': wellFormedUnknownToken() }, 403, 'invalid'],
      ['expired', { 'x-amzn-marketplace-token': expiring.token }, 403, 'expired'],
      ['replayed from another browser', { 'x-amzn-marketplace-token': used.token }, 409, 'replayed'],
    ];
    for (const [name, form, status, problem] of cases) {
      const response = await new Browser(stack.api.url).postForm('/marketplace/register', form);
      expect({ name, status: response.status }).toEqual({ name, status });
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      expect(response.text).toContain(`data-problem="${problem}"`);
      expect(response.text).toContain('Set Up Your Account');
      expect(response.headers.get('set-cookie')).toBeNull();
    }
    expect(await counts()).toEqual(before);

    // The browser that redeemed it may post again (a double click) and simply goes on.
    const repeat = await register(first, used.token);
    expect(repeat.status).toBe(303);
  });

  it('accepts POST only, and limits the body size', async () => {
    const browser = new Browser(stack.api.url);
    const get = await browser.get('/marketplace/register');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const huge = await browser.postForm('/marketplace/register', { 'x-amzn-marketplace-token': 'A'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(huge.text).toContain('Set Up Your Account');
    const json = await browser.postJson('/marketplace/register', { 'x-amzn-marketplace-token': 'abc' });
    expect(json.status).toBe(415);
    expect(json.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('sends only buyers to pages of this site after sign-in', async () => {
    const browser = new Browser(stack.api.url);
    browser.cookies.set('mp_session', sessionFor('acct-alice'));
    for (const next of [
      '/%09/evil.example',
      '//evil.example',
      '/\\evil.example',
      'https://evil.example',
      '/%0a/evil.example',
    ]) {
      const response = await browser.get(`/signin?next=${next}`);
      expect([next, response.status, response.headers.get('location')]).toEqual([next, 303, '/']);
    }
    const local = await browser.get(`/signin?next=${encodeURIComponent('/billing?x=1')}`);
    expect(local.headers.get('location')).toBe('/billing?x=1');
  });

  it('refuses cross-site posts to the cookie-authenticated routes', async () => {
    const browser = new Browser(stack.api.url);
    const session = sessionFor('acct-alice');
    browser.cookies.set('mp_session', session);
    const evil = { origin: 'https://evil.example' };
    const link = await browser.request('POST', '/api/links', { json: { linkCode: 'A'.repeat(43) } }, evil);
    expect([link.status, link.json().error]).toEqual([403, 'CrossSiteRequest']);
    const signIn = await browser.request(
      'POST',
      '/signin',
      { form: { email: 'bob@example.com', password: DEMO_PASSWORD } },
      evil,
    );
    expect(signIn.status).toBe(403);
    // The forged sign-in did not replace the victim's session.
    expect(browser.cookies.get('mp_session')).toBe(session);
  });

  it('binds the link code with a cookie that survives the cross-site POST from AWS when served over https', async () => {
    const https = await startApi({
      db: stack.mongo.db,
      temporal: stack.temporal,
      resolveCustomer: stack.resolveCustomer,
      settings: { publicBaseUrl: 'https://billing.example' },
    });
    try {
      const subscription = await subscribe();
      const registered = await new Browser(https.url).postForm('/marketplace/register', {
        'x-amzn-marketplace-token': subscription.token,
      });
      expect(registered.status).toBe(303);
      const binding = registered.headers.getSetCookie().find((c) => c.startsWith('__Host-mp_link_binding='))!;
      expect(binding).toMatch(/; HttpOnly/);
      expect(binding).toMatch(/; SameSite=None/);
      expect(binding).toMatch(/; Secure/);
    } finally {
      await https.close();
    }
  });

  it('changes nothing but the code claim and says so when Temporal cannot take the link request; the same account retries', async () => {
    const down = new Client({
      connection: Connection.lazy({ address: '127.0.0.1:9', connectTimeout: 500 }),
      namespace: 'test',
    });
    const api = await startApi({ db: stack.mongo.db, temporal: down, resolveCustomer: stack.resolveCustomer });
    try {
      const subscription = await subscribe();
      const buyer = await newBuyer();
      const browser = new Browser(api.url);
      const code = await arriveFromAws(browser, subscription, buyer.email);
      const before = await counts();
      const refused = await browser.postJson('/api/links', { linkCode: code });
      expect([refused.status, refused.json().error, refused.headers.get('retry-after')]).toEqual([
        503,
        'LinkingUnavailable',
        '10',
      ]);
      // The code stays claimed by this account (nobody else can take it meanwhile); nothing else changed.
      expect(await counts()).toEqual({ ...before, uses: before.uses + 1 });
      // Once Temporal is back, the same account's retry with the same code works.
      const healthy = new Browser(stack.api.url);
      healthy.cookies.set('mp_session', browser.cookies.get('mp_session')!);
      healthy.cookies.set('mp_link_binding', browser.cookies.get('mp_link_binding')!);
      const retried = await healthy.postJson('/api/links', { linkCode: code });
      expect([retried.status, retried.json().phase]).toEqual([202, 'waiting-for-aws']);
      // Let the workflow settle, so its reservation does not land in the middle of another test's snapshot.
      await eventually(
        () => phaseOf(healthy),
        (phase) => phase === 'waiting-for-aws',
      );
    } finally {
      await api.close();
    }
  });

  it("refuses a link without a session, with another user's code, with a replayed or expired code", async () => {
    const subscription = await subscribe();
    // An eligible buyer of its own, so that the use that takes effect is accepted (alice is linked by an earlier test).
    const owner = await newBuyer();
    const buyer = new Browser(stack.api.url);
    const code = await arriveFromAws(buyer, subscription, owner.email);
    const before = await counts();
    const workflowId = await subscriptionIdOf(stack.mongo.db, {
      awsAccountId: subscription.customer.customerAwsAccountId,
      productCode: stack.productCode,
    });

    const anonymous = new Browser(stack.api.url);
    anonymous.cookies.set('mp_link_binding', buyer.cookies.get('mp_link_binding')!);
    const noSession = await anonymous.postJson('/api/links', { linkCode: code });
    expect([noSession.status, noSession.json().error]).toEqual([401, 'Unauthorized']);

    const forged = await anonymous.request(
      'POST',
      '/api/links',
      { json: { linkCode: code } },
      { authorization: `Bearer ${sessionFor('acct-bob')}x` },
    );
    expect(forged.status).toBe(401);

    const otherUser = new Browser(stack.api.url);
    otherUser.cookies.set('mp_session', sessionFor('acct-bob'));
    const stolen = await otherUser.postJson('/api/links', { linkCode: code });
    expect([stolen.status, stolen.json().error]).toEqual([403, 'LinkCodeNotYours']);

    const garbage = await buyer.postJson('/api/links', { linkCode: 'not a code' });
    expect([garbage.status, garbage.json().error]).toEqual([400, 'ValidationError']);
    const unknown = await buyer.postJson('/api/links', { linkCode: 'A'.repeat(43) });
    expect([unknown.status, unknown.json().error]).toEqual([404, 'UnknownLinkCode']);

    expect(await counts()).toEqual(before);
    await expect(stack.temporal.workflow.getHandle(workflowId).describe()).rejects.toThrow(/not found/i);

    // A double click: two concurrent uses by the same account have one effect. A use still waiting for its answer
    // is repeated (so a crash or a timeout is healed by a retry), and gets the same answer; an answered one is a replay.
    const both = await Promise.all([
      buyer.postJson('/api/links', { linkCode: code }),
      buyer.postJson('/api/links', { linkCode: code }),
    ]);
    expect(both.map((r) => r.status)).toContain(202);
    for (const answer of both) expect([202, 409]).toContain(answer.status);
    for (const answer of both.filter((r) => r.status === 202))
      expect(answer.json()).toMatchObject({ phase: 'waiting-for-aws', accountId: owner._id });
    expect(await marketplaceLinksOf(stack.mongo.db).countDocuments({ accountId: owner._id })).toBe(1);
    const replay = await buyer.postJson('/api/links', { linkCode: code });
    expect([replay.status, replay.json().error]).toEqual([409, 'LinkCodeUsed']);
    // Another account in the same browser cannot take a used code over.
    const sameBrowserOtherUser = new Browser(stack.api.url);
    sameBrowserOtherUser.cookies.set('mp_link_binding', buyer.cookies.get('mp_link_binding')!);
    sameBrowserOtherUser.cookies.set('mp_session', sessionFor('acct-bob'));
    const takeover = await sameBrowserOtherUser.postJson('/api/links', { linkCode: code });
    expect([takeover.status, takeover.json().error]).toEqual([403, 'LinkCodeNotYours']);
    expect(
      await linkStatusesOf(stack.mongo.db).countDocuments({
        accountId: 'acct-bob',
        awsAccountId: subscription.customer.customerAwsAccountId,
      }),
    ).toBe(0);

    // An expired code: a second registration, whose code we age past its expiry in the store.
    const second = await subscribe();
    const late = new Browser(stack.api.url);
    const lateCode = await arriveFromAws(late, second, 'bob@example.com');
    await linkCodesOf(stack.mongo.db).updateMany(
      { awsAccountId: second.customer.customerAwsAccountId },
      { $set: { expiresAt: new Date(Date.now() - 1000) } },
    );
    const expired = await late.postJson('/api/links', { linkCode: lateCode });
    expect([expired.status, expired.json().error]).toEqual([410, 'LinkCodeExpired']);
    expect(
      await linkStatusesOf(stack.mongo.db).countDocuments({ awsAccountId: second.customer.customerAwsAccountId }),
    ).toBe(0);
  });

  it('dead-letters an unreadable message at once without stalling the others', async () => {
    const client = sqs();
    await client.send(new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: 'this is not json' }));
    const subscription = await subscribe();
    const buyer = await newBuyer();
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, buyer.email);
    expect((await browser.postJson('/api/links', { linkCode: code })).status).toBe(202);
    await notify(subscription, 'subscribe-success');
    // The poison message goes to the dead-letter queue; the good one still gets through.
    await eventually(
      () => phaseOf(browser),
      (phase) => phase === 'linked',
    );
    const deadLettered = await eventually(
      async () =>
        (
          await client.send(
            new ReceiveMessageCommand({
              QueueUrl: stack.aws.deadLetterQueueUrl,
              WaitTimeSeconds: 1,
              MessageAttributeNames: ['All'],
            }),
          )
        ).Messages ?? [],
      (messages) => messages.length === 1,
    );
    expect(deadLettered[0]!.Body).toBe('this is not json');
    // Nothing AWS sends is anything but a JSON object: this was not sent by AWS.
    expect(deadLettered[0]!.MessageAttributes?.reason?.StringValue).toBe('untrusted: the body is not a JSON object');
    client.destroy();
  });

  it('answers queries for operators and serves an OpenAPI document', async () => {
    const subscription = await subscribe();
    const buyer = await newBuyer();
    const browser = new Browser(stack.api.url);
    const code = await arriveFromAws(browser, subscription, buyer.email);
    expect((await browser.postJson('/api/links', { linkCode: code })).status).toBe(202);
    const names = { awsAccountId: subscription.customer.customerAwsAccountId, productCode: stack.productCode };
    const handle = await subscriptionHandle(stack.temporal, stack.mongo.db, names);
    expect(handle.workflowId).toMatch(/^subscription:license:l-/);
    const state = await eventuallyState(handle, (s) => s.owner !== undefined);
    expect(state).toMatchObject({
      phase: 'awaiting-aws',
      owner: buyer._id,
      ref: names,
      aws: { status: 'unknown' },
      pendingRequests: 0,
    });
    // The search attributes operators filter on; BillingStatus is the subscription's phase.
    const attributes = await eventually(
      async () =>
        Object.fromEntries(
          (await handle.describe()).typedSearchAttributes.getAll().map((pair) => [pair.key.name, pair.value]),
        ),
      (a) => a.PlatformAccountId !== undefined,
    );
    expect(attributes).toMatchObject({
      AwsAccountId: names.awsAccountId,
      AwsProductCode: names.productCode,
      AwsLicenseArn: expect.stringMatching(/license[/:]l-/),
      PlatformAccountId: buyer._id,
      BillingStatus: 'awaiting-aws',
    });

    const openapi = (await browser.get('/openapi.json')).json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(openapi.openapi).toBe('3.1.0');
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/marketplace/register', '/api/links', '/api/links/current', '/api/billing']),
    );
  });
});
