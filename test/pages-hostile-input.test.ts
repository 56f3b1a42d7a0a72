/**
 * Issue 13: every page, rendered with hostile values wherever a value reaches
 * it (account names, emails, card brands, AWS account ids, product codes,
 * deployment names and ids, `next`, the sandbox's product and registration
 * URL), is compared with the same page rendered with plain values. Read as a
 * browser reads it (parse5), the hostile page must have exactly the plain
 * page's elements, attributes and comments, and the hostile value must
 * appear, whole, everywhere the plain one does: as text, never as markup.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { RegistrationError, type ResolvedRegistration } from '../activities/marketplace';
import { safeLocalPath, SESSION_COOKIE } from '../api/common/session';
import { INDEX_SCRIPT_PATH } from '../api/pages/index-script';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { hashPassword } from '../lib/passwords';
import { accountsOf, deploymentsOf, type AccountDoc } from '../lib/store/accounts';
import { cancellationsOf } from '../lib/store/marketplace';
import { connectClient } from '../lib/temporal';
import { Browser, sessionFor, startApi, type HttpResponse, type RunningApi } from './helpers/api';
import { parsePage } from './helpers/html';
import { startSandbox, type RunningSandbox } from './helpers/sandbox';
import { testServers, uniqueName } from './helpers/test-env';

/** Breaks out of every context a value lands in: text, a quoted attribute, a comment, a title, a textarea; and a URL scheme. */
const HOSTILE = `x"'><script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)></textarea></title></style><!-- {{title}} {{{body}}} javascript:alert(4) &amp; &#x3c; \`=`;
const PLAIN = 'plain-value';

const PASSWORD = 'correct horse battery staple';

/** How often `value` appears within the strings the page carries. */
const occurrences = (strings: string[], value: string) => strings.reduce((n, s) => n + s.split(value).length - 1, 0);

/**
 * The hostile page has the plain page's structure, and the hostile value shows, whole, exactly where the plain
 * one does. `shown`: the value as the page is expected to show it (for `next`, after safeLocalPath), or null
 * when the page drops it.
 */
function expectOnlyText(
  hostileHtml: string,
  plainHtml: string,
  shown: { hostile: string; plain: string } | null = { hostile: HOSTILE, plain: PLAIN },
): void {
  const hostile = parsePage(hostileHtml);
  const plain = parsePage(plainHtml);
  expect(hostile.shape()).toEqual(plain.shape());
  const values = hostile.values();
  const carrying = values.filter((v) => v.includes('alert('));
  if (shown) {
    expect(occurrences(values, shown.hostile)).toBe(occurrences(plain.values(), shown.plain));
    // No piece of the payload escaped on its own: every string that carries part of it carries all of it.
    for (const value of carrying) expect(value).toContain(shown.hostile);
  } else {
    expect(carrying).toEqual([]);
  }
  for (const element of hostile.elements) {
    for (const name of ['href', 'src', 'action', 'formaction']) {
      expect(element.attrs[name]?.trim().toLowerCase().startsWith('javascript:') ?? false).toBe(false);
    }
  }
}

/** The API's pages run no inline script: the only script is the index page's file. */
function expectOnlyOurScript(html: string): void {
  for (const script of parsePage(html).all('script')) {
    expect(script.attrs.src).toBe(INDEX_SCRIPT_PATH);
    expect(script.text).toBe('');
  }
}

describe('issue 13: pages escape every value', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;
  /** What the fake ResolveCustomer answers next: AWS's account and product, or a refusal. */
  let resolution: () => Promise<ResolvedRegistration>;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('hostile-pages'));
    temporal = await connectClient(testServers.temporal());
    api = await startApi({ db: mongo.db, temporal, resolveCustomer: () => resolution() });
  });
  afterAll(async () => {
    await api?.close();
    await temporal?.connection.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  async function account(value: string, fields: Partial<AccountDoc> = {}): Promise<{ id: string; browser: Browser }> {
    const id = uniqueName('acct');
    await accountsOf(mongo.db).insertOne({
      _id: id,
      email: `${id}-${value}@example.com`,
      name: value,
      paymentMethod: 'none',
      passwordHash: await hashPassword(PASSWORD),
      createdAt: new Date(),
      ...fields,
    });
    const browser = new Browser(api.url);
    browser.cookies.set(SESSION_COOKIE, sessionFor(id));
    return { id, browser };
  }

  async function page(response: Promise<HttpResponse>, status = 200): Promise<string> {
    const { status: actual, headers, text } = await response;
    expect(actual).toBe(status);
    expect(headers.get('content-type')).toBe('text/html; charset=utf-8');
    expectOnlyOurScript(text);
    return text;
  }

  /** Renders one scenario with each value, and compares. */
  async function compare(render: (value: string) => Promise<string>): Promise<string> {
    const [hostile, plain] = [await render(HOSTILE), await render(PLAIN)];
    expectOnlyText(hostile, plain);
    return hostile;
  }

  it('the index page: the account and its deployments', async () => {
    const html = await compare(async (value) => {
      const { id, browser } = await account(value);
      const trialEndsAt = new Date(Date.now() + 7 * 86_400_000);
      await deploymentsOf(mongo.db).insertMany([
        {
          _id: `${id}-a`,
          accountId: id,
          name: `a ${value}`,
          plan: 'trial',
          trialEndsAt,
          state: 'running',
          createdAt: new Date(),
        },
        {
          _id: `${id}-b`,
          accountId: id,
          name: `b ${value}`,
          plan: 'standard',
          state: 'stopped',
          createdAt: new Date(),
        },
      ]);
      return page(browser.get('/'));
    });
    const rendered = parsePage(html);
    expect(rendered.byId('account-name')?.text).toBe(HOSTILE);
    expect(rendered.all('td').map((cell) => cell.text)).toContain(`a ${HOSTILE}`);
    expect(rendered.byId('link-modal')?.attrs).toHaveProperty('hidden');
  });

  it('the index page: the link confirmation names what AWS vouched for, as text', async () => {
    const html = await compare(async (value) => {
      const { browser } = await account(value);
      resolution = async () => ({ awsAccountId: value, productCode: value });
      const registered = await browser.postForm('/marketplace/register', {
        'x-amzn-marketplace-token': randomBytes(64).toString('base64'),
      });
      expect(registered.status).toBe(303);
      return page(browser.get(registered.headers.get('location')!));
    });
    const confirmation = parsePage(html).byId('link-confirmation');
    expect(confirmation?.text).toContain(`AWS account ${HOSTILE} will pay for ${HOSTILE}`);
    expect(confirmation?.text).toContain(`AWS Marketplace product ${HOSTILE}.`);
  });

  it('the index page: a code that cannot be used opens the modal with its reason', async () => {
    const html = await compare(async (value) => {
      const { browser } = await account(value);
      return page(browser.get(`/?link=${'A'.repeat(43)}`));
    });
    const modal = parsePage(html).byId('link-modal');
    expect(modal?.attrs['data-phase']).toBe('error');
    expect(modal?.attrs).not.toHaveProperty('hidden');
  });

  const cancellation = (accountId: string, value: string, phase: string) => ({
    _id: uniqueName('customer'),
    accountId,
    phase,
    deletionDueAt: new Date(Date.now() + 86_400_000),
    stopped: [
      { id: `kept ${value}`, name: `kept ${value}` },
      { id: `gone ${value}`, name: `gone ${value}` },
    ],
    deleted: [`gone ${value}`],
    updatedAt: new Date(),
  });

  const billingStates: Array<[string, (value: string) => Promise<Browser>]> = [
    [
      'a card on file',
      async (value) =>
        (await account(value, { paymentMethod: 'credit-card', creditCard: { brand: value, last4: '4242' } })).browser,
    ],
    [
      'linked to AWS Marketplace',
      async (value) =>
        (
          await account(value, {
            paymentMethod: 'aws-marketplace',
            marketplace: { awsAccountId: value, productCode: value, linkedAt: new Date() },
          })
        ).browser,
    ],
    ...[
      'final-metering',
      'awaiting-unsubscribe-success',
      'stopping',
      'grace-period',
      'deleting',
      'deleted',
      'cancelled',
    ].map((phase): [string, (value: string) => Promise<Browser>] => [
      `a cancellation in phase ${phase}`,
      async (value) => {
        const { id, browser } = await account(value);
        await cancellationsOf(mongo.db).insertOne(cancellation(id, value, phase));
        return browser;
      },
    ]),
  ];

  it.each(billingStates)('the Billing page: %s', async (_state, setUp) => {
    const html = await compare(async (value) => page((await setUp(value)).get('/billing')));
    expect(parsePage(html).byId('account-name')?.text).toBe(HOSTILE);
  });

  it("the Billing page shows a cancellation's deployments by name and id, as text", async () => {
    const { id, browser } = await account(HOSTILE);
    await cancellationsOf(mongo.db).insertOne(cancellation(id, HOSTILE, 'grace-period'));
    const rendered = parsePage(await page(browser.get('/billing')));
    expect(rendered.byId('subscription-status')?.attrs['data-phase']).toBe('grace-period');
    const cells = rendered.elements.filter((element) => 'data-deployment' in element.attrs);
    expect(cells.map((cell) => [cell.attrs['data-deployment'], cell.text.slice(0, 7)])).toEqual([
      [`kept ${HOSTILE}`, 'stopped'],
      [`gone ${HOSTILE}`, 'deleted'],
    ]);
  });

  const nexts = [
    `/${HOSTILE}`,
    `/x?q=${HOSTILE}`,
    `/a' onmouseover='alert(1)`,
    '/"><script>alert(1)</script>',
    '/</textarea><script>alert(1)</script>',
    'javascript:alert(1)',
    `//evil.example/${HOSTILE}`,
  ];

  it.each(nexts)('the sign-in page keeps next=%j in its form as a value, never markup', async (next) => {
    const local = safeLocalPath(next);
    const shown = local === '/' ? null : { hostile: local, plain: '/plain' };
    const browser = new Browser(api.url);
    const forms = async (value: string) => [
      await page(browser.get(`/signin?next=${encodeURIComponent(value)}`)),
      // A wrong password and a missing one come back with the form, the error and `next`.
      await page(browser.postForm('/signin', { email: 'nobody@example.com', password: 'wrong', next: value }), 401),
      await page(browser.postForm('/signin', { email: 'nobody@example.com', next: value }), 400),
    ];
    const [hostile, plain] = [await forms(next), await forms('/plain')];
    hostile.forEach((html, i) => expectOnlyText(html, plain[i]!, shown));
    for (const html of hostile) {
      const field = parsePage(html).elements.find((element) => element.attrs.name === 'next');
      expect(field?.attrs.value).toBe(local);
    }
    expect(parsePage(hostile[1]!).byId('sign-in-error')?.text).toBe('That email and password do not match an account.');
  });

  it('the registration problem pages: each refusal, with a hostile token that is never reflected', async () => {
    const token = `${randomBytes(64).toString('base64')}`;
    const refusals: Array<[string, () => Promise<HttpResponse>, number]> = [
      ['not-post', () => new Browser(api.url).get('/marketplace/register'), 405],
      [
        'invalid',
        () => new Browser(api.url).postForm('/marketplace/register', { 'x-amzn-marketplace-token': HOSTILE }),
        400,
      ],
      [
        'invalid',
        () => new Browser(api.url).postJson('/marketplace/register', { 'x-amzn-marketplace-token': HOSTILE }),
        415,
      ],
    ];
    for (const [problem, awsError] of [
      ['invalid', 'invalid-token'],
      ['expired', 'expired-token'],
      ['unavailable', 'aws-unavailable'],
    ] as const) {
      refusals.push([
        problem,
        () => {
          resolution = () => Promise.reject(new RegistrationError(awsError, HOSTILE));
          return new Browser(api.url).postForm('/marketplace/register', { 'x-amzn-marketplace-token': token });
        },
        problem === 'unavailable' ? 503 : 403,
      ]);
    }
    refusals.push([
      'replayed',
      async () => {
        resolution = async () => ({ awsAccountId: '123456789012', productCode: HOSTILE });
        expect(
          (await new Browser(api.url).postForm('/marketplace/register', { 'x-amzn-marketplace-token': token })).status,
        ).toBe(303);
        return new Browser(api.url).postForm('/marketplace/register', { 'x-amzn-marketplace-token': token });
      },
      409,
    ]);
    const plainShape = parsePage(await page(new Browser(api.url).get('/marketplace/register'), 405)).shape();
    for (const [problem, send, status] of refusals) {
      const rendered = parsePage(await page(send(), status));
      expect(rendered.byId('registration-problem')?.attrs['data-problem']).toBe(problem);
      expect(rendered.shape()).toEqual(plainShape);
      expect(rendered.values().join('\n')).not.toContain('alert(');
      expect(rendered.html).not.toContain(token);
    }
  });

  describe("the sandbox's buyer pages", () => {
    const sandboxes: RunningSandbox[] = [];
    afterAll(async () => {
      for (const sandbox of sandboxes) {
        await sandbox.mongo.db.dropDatabase();
        await sandbox.close();
      }
    });

    const customerId = uniqueName('customer');

    /** A sandbox whose product and registration URL carry `value`, with a buyer whose fields all do (but its id, which the sandbox makes). */
    async function sandboxWith(value: string): Promise<RunningSandbox> {
      const sandbox = await startSandbox({
        productCode: value,
        registrationUrl: `http://seller.example/register?from=${value}`,
        signSns: false,
      });
      sandboxes.push(sandbox);
      await sandbox.store.customers.insertOne({
        _id: customerId,
        model: 'legacy',
        customerIdentifier: value,
        customerAwsAccountId: value,
        productCode: value,
        licenseArn: value,
        offerId: value,
        freeTrial: true,
        status: 'subscribing',
        createdAt: new Date(),
      });
      return sandbox;
    }

    it('the buyers page and the form that sends the browser to the seller', async () => {
      const rendered = { hostile: [] as string[], plain: [] as string[] };
      for (const [value, into] of [
        [HOSTILE, rendered.hostile],
        [PLAIN, rendered.plain],
      ] as const) {
        const sandbox = await sandboxWith(value);
        const buyers = await fetch(`${sandbox.url}/`);
        expect(buyers.status).toBe(200);
        into.push(await buyers.text());
        const handOff = await fetch(`${sandbox.url}/buyer/subscribe`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'model=account&freeTrial=true',
        });
        expect(handOff.status).toBe(200);
        into.push(await handOff.text());
      }
      rendered.hostile.forEach((html, i) => expectOnlyText(html, rendered.plain[i]!));
      const [buyers, handOff] = rendered.hostile.map(parsePage);
      expect(buyers!.all('form').map((form) => form.attrs.action)).toContain(`/buyer/customers/${customerId}/notify`);
      expect(buyers!.all('small').map((small) => small.text)).toContain(HOSTILE);
      expect(handOff!.byId('register')?.attrs.action).toBe(`http://seller.example/register?from=${HOSTILE}`);
      // The hand-off's one inline script is the sandbox's own auto-submit.
      expect(handOff!.all('script').map((script) => script.text)).toEqual([
        "document.getElementById('register').submit()",
      ]);
    });
  });
});
