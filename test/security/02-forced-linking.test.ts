/**
 * Issue 12, point 2: forced linking. An attacker subscribes on AWS, keeps the
 * registration token, and has a signed-in victim's browser post it to our
 * webhook from another site. Nothing may link without the victim's click on
 * our own page: the index page asks, naming the AWS account, the product and
 * the platform account, and "Not me" spends the code. The browser version of
 * this scenario (a real cross-site form in Chromium) is in
 * test/browser-journey.test.ts; this file walks the same HTTP hops and covers
 * the decline endpoint's every answer.
 */
import { hashPassword } from '../../lib/passwords';
import { accountsOf } from '../../lib/store/accounts';
import { DEMO_PASSWORD } from '../../lib/store/demo-accounts';
import { linkStatusesOf } from '../../lib/store/link-status';
import { marketplaceLinksOf, notificationsOf } from '../../lib/store/marketplace';
import { linkCodesOf, linkCodeUsesOf } from '../../lib/store/registrations';
import { SESSION_COOKIE } from '../../api/common/session';
import { Browser, sessionFor, type HttpResponse } from '../helpers/api';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { uniqueName } from '../helpers/test-env';
import { eventually } from '../helpers/time-skipping';

interface Subscription {
  customer: { _id: string; customerAwsAccountId: string };
  token: string;
}

const spelled = (awsAccountId: string) => awsAccountId.replace(/^(\d{4})(\d{4})(\d{4})$/, '$1-$2-$3');

describe('issue 12 point 2: forced linking', () => {
  let stack: LinkingStack;

  beforeAll(async () => {
    stack = await startLinkingStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const subscribe = async (body: Record<string, unknown> = {}) => {
    const created = await stack.sandbox.control<Subscription>('POST', '/control/customers', body);
    expect(created.status).toBe(201);
    return created.body;
  };

  /** An eligible platform account, signed in in a browser of its own. */
  async function signedInVictim() {
    const _id = uniqueName('acct');
    const name = `Victim ${_id}`;
    await accountsOf(stack.mongo.db).insertOne({
      _id,
      email: `${_id}@example.com`,
      name,
      paymentMethod: 'none',
      passwordHash: await hashPassword(DEMO_PASSWORD),
      createdAt: new Date(),
    });
    const browser = new Browser(stack.api.url);
    expect((await browser.postForm('/signin', { email: `${_id}@example.com`, password: DEMO_PASSWORD })).status).toBe(
      303,
    );
    return { _id, name, browser };
  }

  /**
   * The attacker's page posts the token through the victim's browser. A
   * cross-site POST carries no SameSite=Lax session cookie; the redirects that
   * follow are top-level GETs, which do. Returns the last answer and the link code.
   */
  async function crossSitePost(
    browser: Browser,
    form: Record<string, string>,
  ): Promise<{ page: HttpResponse; code: string }> {
    const session = browser.cookies.get(SESSION_COOKIE)!;
    browser.cookies.delete(SESSION_COOKIE);
    let answer = await browser.postForm('/marketplace/register', form);
    browser.cookies.set(SESSION_COOKIE, session);
    let code = '';
    for (let hops = 0; answer.status === 303 && hops < 5; hops += 1) {
      const location = answer.headers.get('location')!;
      code = new URL(location, 'http://x').searchParams.get('link') ?? code;
      answer = await browser.get(location);
    }
    return { page: answer, code };
  }

  const nothingLinkedFor = async (victim: { _id: string; browser: Browser }) => {
    expect((await victim.browser.get('/api/links/current')).status).toBe(404);
    expect(
      await linkCodeUsesOf(stack.mongo.db).countDocuments({ accountId: victim._id, declinedAt: { $exists: false } }),
    ).toBe(0);
    expect(await linkStatusesOf(stack.mongo.db).countDocuments({ accountId: victim._id })).toBe(0);
    expect(await marketplaceLinksOf(stack.mongo.db).countDocuments({ accountId: victim._id })).toBe(0);
    expect(await accountsOf(stack.mongo.db).findOne({ _id: victim._id })).toMatchObject({ paymentMethod: 'none' });
  };

  it('the webhook and the index page link nothing: the page asks, naming the AWS account, the product and the account (never the unverified offer type)', async () => {
    const attacker = await subscribe({ freeTrial: true });
    const victim = await signedInVictim();
    const { page, code } = await crossSitePost(victim.browser, {
      'x-amzn-marketplace-token': attacker.token,
      'x-amzn-marketplace-offer-type': 'free-trial',
    });
    expect(page.status).toBe(200);
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);

    expect(page.text).toContain('id="link-confirmation"');
    expect(page.text).toContain(
      `AWS account <strong>${spelled(attacker.customer.customerAwsAccountId)}</strong> will pay for <strong>${victim.name}</strong>`,
    );
    expect(page.text).toContain(`<code>${stack.productCode}</code>`);
    // The offer type is whatever the posting page wrote: it must not make a planted code look genuine.
    expect(page.text).not.toMatch(/free trial/i);
    expect(page.text).toContain('id="link-confirm"');
    expect(page.text).toContain('id="link-decline"');
    // The page carries no secret of its own: its script reads the code from the address it drops.
    expect(page.text).not.toContain(code);
    await nothingLinkedFor(victim);

    // AWS confirms the attacker's subscription: the victim's account is still untouched.
    await stack.sandbox.control('POST', `/control/customers/${attacker.customer._id}/notifications`, {
      action: 'subscribe-success',
    });
    await eventually(
      () => notificationsOf(stack.mongo.db).countDocuments({ awsAccountId: attacker.customer.customerAwsAccountId }),
      (n) => n === 1,
    );
    await nothingLinkedFor(victim);

    // The buyer's own click (the Link button's request) is what links.
    const linked = await victim.browser.postJson('/api/links', { linkCode: code });
    expect([linked.status, linked.json().phase, linked.json().accountId]).toEqual([
      202,
      expect.stringMatching(/waiting-for-aws|linked/),
      victim._id,
    ]);
  });

  it('"Not me" spends the code: repeats answer the same, the Link request is refused, and nothing links', async () => {
    const attacker = await subscribe();
    const victim = await signedInVictim();
    const { code } = await crossSitePost(victim.browser, { 'x-amzn-marketplace-token': attacker.token });

    const declined = await victim.browser.postJson('/api/links/decline', { linkCode: code });
    expect(declined.status).toBe(200);
    expect(declined.json()).toEqual({
      state: 'declined',
      awsAccountId: attacker.customer.customerAwsAccountId,
      productCode: stack.productCode,
      message: expect.stringMatching(/Nothing was linked/),
    });
    const again = await victim.browser.postJson('/api/links/decline', { linkCode: code });
    expect([again.status, again.json()]).toEqual([200, declined.json()]);
    expect(await linkCodeUsesOf(stack.mongo.db).countDocuments({ accountId: victim._id })).toBe(1);

    const link = await victim.browser.postJson('/api/links', { linkCode: code });
    expect([link.status, link.json().error]).toEqual([410, 'LinkCodeDeclined']);
    // Reopening the address shows that it was cancelled, and offers nothing to click.
    const reopened = await victim.browser.get(`/?link=${code}`);
    expect(reopened.text).toContain('data-phase="error"');
    expect(reopened.text).toMatch(/cancelled this link/);
    expect(reopened.text).not.toContain('id="link-confirm"');
    await nothingLinkedFor(victim);
  });

  it('shows the details only to the browser the code was issued to, and only while the code is usable', async () => {
    const attacker = await subscribe();
    const victim = await signedInVictim();
    const { code } = await crossSitePost(victim.browser, { 'x-amzn-marketplace-token': attacker.token });
    const awsId = spelled(attacker.customer.customerAwsAccountId);

    const otherBrowser = new Browser(stack.api.url);
    otherBrowser.cookies.set(SESSION_COOKIE, sessionFor(victim._id));
    const elsewhere = await otherBrowser.get(`/?link=${code}`);
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.text).not.toContain(awsId);
    expect(elsewhere.text).toMatch(/issued to another browser/);

    const unknown = await victim.browser.get(`/?link=${'A'.repeat(43)}`);
    expect([unknown.text.includes(awsId), /not known/.test(unknown.text)]).toEqual([false, true]);
    const malformed = await victim.browser.get('/?link=%3Cscript%3E');
    expect([malformed.status, malformed.text.includes('<script>'), /not known/.test(malformed.text)]).toEqual([
      200,
      false,
      true,
    ]);

    await linkCodesOf(stack.mongo.db).updateOne(
      { awsAccountId: attacker.customer.customerAwsAccountId },
      { $set: { expiresAt: new Date(Date.now() - 1000) } },
    );
    const expired = await victim.browser.get(`/?link=${code}`);
    expect([
      expired.text.includes(awsId),
      /expired/.test(expired.text),
      expired.text.includes('id="link-confirm"'),
    ]).toEqual([false, true, false]);
    await nothingLinkedFor(victim);
  });

  it('refuses a decline without a session, from another site or browser, for a bad or unknown code, and after the code linked', async () => {
    const buyerSubscription = await subscribe();
    const buyer = await signedInVictim();
    const { code } = await crossSitePost(buyer.browser, { 'x-amzn-marketplace-token': buyerSubscription.token });
    const uses = () => linkCodeUsesOf(stack.mongo.db).countDocuments({});
    const before = await uses();

    const anonymous = new Browser(stack.api.url);
    for (const [name, value] of buyer.browser.cookies) if (name !== SESSION_COOKIE) anonymous.cookies.set(name, value);
    const noSession = await anonymous.postJson('/api/links/decline', { linkCode: code });
    expect([noSession.status, noSession.json().error]).toEqual([401, 'Unauthorized']);

    const crossSite = await buyer.browser.request(
      'POST',
      '/api/links/decline',
      { json: { linkCode: code } },
      { origin: 'https://evil.example' },
    );
    expect([crossSite.status, crossSite.json().error]).toEqual([403, 'CrossSiteRequest']);

    const otherBrowser = new Browser(stack.api.url);
    otherBrowser.cookies.set(SESSION_COOKIE, sessionFor(buyer._id));
    const notYours = await otherBrowser.postJson('/api/links/decline', { linkCode: code });
    expect([notYours.status, notYours.json().error]).toEqual([403, 'LinkCodeNotYours']);

    const garbage = await buyer.browser.postJson('/api/links/decline', { linkCode: 'not a code' });
    expect([garbage.status, garbage.json().error]).toEqual([400, 'ValidationError']);
    const unknown = await buyer.browser.postJson('/api/links/decline', { linkCode: 'A'.repeat(43) });
    expect([unknown.status, unknown.json().error]).toEqual([404, 'UnknownLinkCode']);
    expect(await uses()).toBe(before);

    // Once the buyer clicked Link, "Not me" cannot undo it here: the answer says so and changes nothing.
    expect((await buyer.browser.postJson('/api/links', { linkCode: code })).status).toBe(202);
    const late = await buyer.browser.postJson('/api/links/decline', { linkCode: code });
    expect([late.status, late.json().error]).toEqual([409, 'LinkCodeUsed']);
    expect(await linkCodeUsesOf(stack.mongo.db).findOne({ accountId: buyer._id })).not.toHaveProperty('declinedAt');

    // An expired code cannot be declined either; it is already unusable.
    const second = await subscribe();
    const late2 = await signedInVictim();
    const { code: expiring } = await crossSitePost(late2.browser, { 'x-amzn-marketplace-token': second.token });
    await linkCodesOf(stack.mongo.db).updateOne(
      { awsAccountId: second.customer.customerAwsAccountId },
      { $set: { expiresAt: new Date(Date.now() - 1000) } },
    );
    const expired = await late2.browser.postJson('/api/links/decline', { linkCode: expiring });
    expect([expired.status, expired.json().error]).toEqual([410, 'LinkCodeExpired']);
  });

  it('documents the decline endpoint and its answers in the OpenAPI document', async () => {
    const openapi = (await new Browser(stack.api.url).get('/openapi.json')).json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
    }>();
    const decline = openapi.paths['/api/links/decline']?.post;
    expect(decline).toBeDefined();
    expect(Object.keys(decline!.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '404', '409', '410']),
    );
    expect(decline!.requestBody).toBeDefined();
    expect(Object.keys(openapi.paths['/api/links']!.post!.responses)).toContain('410');
  });
});
