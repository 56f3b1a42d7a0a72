/**
 * The buyer's whole journey in a real browser (Debian's Chromium, driven by
 * playwright-core; no browser is downloaded): subscribe on the sandbox, land
 * on the registration webhook, sign in, confirm the link on our page, watch
 * the modal wait, have AWS send subscribe-success, watch it link, and read the
 * Billing page. Chromium enforces our Content-Security-Policy: every test
 * fails on any violation it reports.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ARM_DELAY_MS } from '../api/pages/index-script';
import { existsSync } from 'node:fs';
import { hashPassword } from '../lib/passwords';
import { accountsOf } from '../lib/store/accounts';
import { DEMO_PASSWORD, seedDemoAccounts } from '../lib/store/demo-accounts';
import { linkStatusesOf } from '../lib/store/link-status';
import { marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { linkCodeUsesOf } from '../lib/store/registrations';
import { REGISTRATION_PATH } from '../api/routes/linking/registration';
import { startAttackerSite } from './helpers/cross-site';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** How the confirmation spells an AWS account id, as the AWS console does. */
const spelled = (awsAccountId: string) => awsAccountId.replace(/^(\d{4})(\d{4})(\d{4})$/, '$1-$2-$3');

/** Everything Chromium reports about our Content-Security-Policy, from the console and from the DOM event. */
async function recordCspViolations(context: BrowserContext): Promise<string[]> {
  const violations: string[] = [];
  context.on('console', (message) => {
    if (/Content Security Policy|securitypolicyviolation/i.test(message.text())) violations.push(message.text());
  });
  // Page code, as a string: this project compiles without the DOM's types.
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      console.error('securitypolicyviolation ' + e.violatedDirective + ' ' + e.blockedURI + ' at ' + e.documentURI))`,
  });
  return violations;
}

describe('the buyer journey in Chromium', () => {
  let stack: LinkingStack;
  let browser: Browser;
  const contexts: Array<{ context: BrowserContext; violations: string[] }> = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: infra/install.sh installs Debian's chromium package`);
    stack = await startLinkingStack();
    await seedDemoAccounts(stack.mongo.db);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });
  afterEach(async () => {
    const violations = contexts.flatMap((c) => c.violations);
    await Promise.all(contexts.splice(0).map((c) => c.context.close()));
    expect(violations).toEqual([]);
  });

  /** A browser profile of its own, watched for CSP violations (checked after each test). */
  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext();
    contexts.push({ context, violations: await recordCspViolations(context) });
    return context;
  }

  const modalPhase = (page: Page) => page.locator('#link-modal').getAttribute('data-phase');
  const latestSandboxCustomer = async () =>
    (await stack.sandbox.store.customers.find().sort({ createdAt: -1 }).limit(1).toArray())[0]!;

  async function signIn(page: Page, email: string): Promise<void> {
    await page.fill('#email', email);
    await page.fill('#password', DEMO_PASSWORD);
    await Promise.all([
      page.waitForURL((url) => url.origin === stack.api.url && url.pathname === '/'),
      page.click('#sign-in'),
    ]);
  }

  /** Subscribe on the sandbox (its form posts the browser to our webhook), then sign in: lands on the index page. */
  async function subscribeAndSignIn(buyer: Page, email: string): Promise<void> {
    await buyer.goto(stack.sandbox.url);
    await Promise.all([buyer.waitForURL(/\/signin\?next=/), buyer.click('#subscribe')]);
    await signIn(buyer, email);
  }

  /** The index page asks before linking, naming the AWS account that will pay; the buyer clicks Link. */
  async function confirmLink(buyer: Page, accountName: string): Promise<void> {
    const subscribed = await latestSandboxCustomer();
    const confirmation = buyer.locator('#link-confirmation');
    await confirmation.waitFor();
    const text = await confirmation.innerText();
    expect(text).toContain(`AWS account ${spelled(subscribed.customerAwsAccountId)} will pay for ${accountName}`);
    expect(text).toContain(stack.productCode);
    await buyer.click('#link-confirm');
    expect(await confirmation.isHidden()).toBe(true);
  }

  it('subscribes, registers, signs in, confirms, waits for AWS, links, shows the payment method and signs out', async () => {
    const context = await newContext();
    const buyer = await context.newPage();

    // 1-3. The sandbox subscribes, registration sends us to sign in, signing in lands on the index page with the link code.
    await subscribeAndSignIn(buyer, 'alice@example.com');
    expect(new URL(buyer.url()).search).toBe('');
    // Nothing is linked before the buyer says so.
    await buyer.waitForLoadState('networkidle');
    expect((await buyer.request.get(`${stack.api.url}/api/links/current`)).status()).toBe(404);
    await confirmLink(buyer, 'Alice (eligible)');

    // 4. The modal shows that we wait for AWS, and the pop-up shows the sync status.
    await buyer.locator('#link-modal[data-phase="waiting-for-aws"]').waitFor();
    expect(await buyer.locator('#link-message').textContent()).toMatch(/Waiting for AWS/);
    await buyer.locator('#sync-popup[data-state="waiting-for-aws"]').waitFor();

    // 5. AWS sends subscribe-success (the sandbox publishes it through SNS into our queue).
    const subscribed = await latestSandboxCustomer();
    const row = (page: Page) =>
      page.locator('tr', { has: page.locator(`code:text-is("${subscribed.customerAwsAccountId}")`) });
    const aws = await context.newPage();
    await aws.goto(stack.sandbox.url);
    await Promise.all([
      aws.waitForURL(stack.sandbox.url + '/'),
      row(aws).locator('button[value="subscribe-success"]').click(),
    ]);
    expect(await row(aws).locator('[data-status]').textContent()).toBe('subscribed');

    // 6. The modal shows the link is done.
    await buyer.locator('#link-modal[data-phase="linked"]').waitFor();
    expect(await modalPhase(buyer)).toBe('linked');
    expect(await buyer.locator('#sync-popup').getAttribute('data-state')).toBe('synced');

    // 7. Billing shows the new payment method.
    await Promise.all([buyer.waitForURL(`${stack.api.url}/billing`), buyer.click('#link-modal a[href="/billing"]')]);
    expect(await buyer.locator('#payment-method').textContent()).toBe('AWS Marketplace Subscription');

    // 8. The sign-out form still posts under the CSP's form-action, and lands on sign-in.
    await Promise.all([buyer.waitForURL(/\/signin$/), buyer.click('nav form[action="/signout"] button')]);
    await buyer.locator('#sign-in').waitFor();
    expect((await buyer.request.get(`${stack.api.url}/api/billing`)).status()).toBe(401);
  });

  it('follows an EventBridge (Proposer) subscription from link to cancellation, and never shows a cancelled buyer as linked', async () => {
    const context = await newContext();
    const buyer = await context.newPage();
    await subscribeAndSignIn(buyer, 'bob@example.com');
    await confirmLink(buyer, 'Bob (eligible)');
    await buyer.locator('#link-modal[data-phase="waiting-for-aws"]').waitFor();

    // AWS's agreement events, as an ISV selling its own offer receives them (Proposer), from the sandbox's buyer page.
    const subscribed = await latestSandboxCustomer();
    const aws = await context.newPage();
    const send = async (detailType: string) => {
      await aws.goto(stack.sandbox.url);
      const row = aws.locator('tr', { has: aws.locator(`code:text-is("${subscribed.customerAwsAccountId}")`) });
      await Promise.all([
        aws.waitForURL(stack.sandbox.url + '/'),
        row.locator(`button[value="${detailType}"]`).click(),
      ]);
    };
    await send('Purchase Agreement Created - Proposer');
    await buyer.locator('#link-modal[data-phase="linked"]').waitFor();
    await buyer.goto(`${stack.api.url}/billing`);
    expect(await buyer.locator('#payment-method').textContent()).toBe('AWS Marketplace Subscription');

    // The agreement ends (final metering), then the license is deprovisioned: billing ends.
    await send('Purchase Agreement Ended - Proposer');
    const reloaded = (read: () => Promise<string | null>) => async () => (await buyer.reload(), read());
    const status = buyer.locator('#subscription-status');
    await eventually(
      reloaded(async () => ((await status.count()) > 0 ? status.getAttribute('data-phase') : null)),
      (phase) => phase === 'awaiting-unsubscribe-success',
    );
    await send('License Deprovisioned - Manufacturer');
    await eventually(
      reloaded(() => buyer.locator('#payment-method').textContent()),
      (method) => method === 'None',
    );
    expect(await buyer.locator('#subscription-status').textContent()).toMatch(/cancelled/);

    // A later visit to the index page does not congratulate a cancelled buyer.
    await buyer.goto(`${stack.api.url}/`);
    await buyer.waitForLoadState('networkidle');
    expect(await buyer.locator('#link-modal').isHidden()).toBe(true);
    expect(await buyer.locator('#sync-popup').isHidden()).toBe(true);
    expect(await buyer.locator('body').innerText()).not.toMatch(
      /AWS sync complete|Payment Method is now AWS Marketplace/,
    );
  });

  it('shows the refusal reason in the modal for an account with Available Credits', async () => {
    const context = await newContext();
    const buyer = await context.newPage();
    await subscribeAndSignIn(buyer, 'dave@example.com');
    await confirmLink(buyer, 'Dave (Available Credits)');
    await buyer.locator('#link-modal[data-phase="refused"]').waitFor();
    expect(await buyer.locator('#link-message').textContent()).toMatch(/Available Credits/);
    await buyer.goto(`${stack.api.url}/billing`);
    expect(await buyer.locator('#payment-method').textContent()).toBe('Available Credits');
  });

  describe('issue 12 point 2: forced linking', () => {
    it("links nothing when another site auto-submits the attacker's token through a signed-in victim's browser", async () => {
      const db = stack.mongo.db;
      // The attacker subscribes on AWS and keeps the token instead of following AWS's redirect.
      const attacker = await stack.sandbox.control<{
        customer: { _id: string; customerAwsAccountId: string };
        token: string;
      }>('POST', '/control/customers', {});
      expect(attacker.status).toBe(201);
      const evil = await startAttackerSite(`${stack.api.url}${REGISTRATION_PATH}`, {
        'x-amzn-marketplace-token': attacker.body.token,
      });
      try {
        const victimId = uniqueName('acct');
        const victimName = `Victim ${victimId}`;
        await accountsOf(db).insertOne({
          _id: victimId,
          email: `${victimId}@example.com`,
          name: victimName,
          paymentMethod: 'none',
          passwordHash: await hashPassword(DEMO_PASSWORD),
          createdAt: new Date(),
        });
        const context = await newContext();
        const victim = await context.newPage();
        await victim.goto(`${stack.api.url}/signin`);
        await signIn(victim, `${victimId}@example.com`);

        // The victim merely visits the attacker's page: its form posts the token to our webhook, cross-site.
        await Promise.all([
          victim.waitForURL((url) => url.origin === stack.api.url && url.pathname === '/'),
          victim.goto(evil.url),
        ]);
        await victim.waitForLoadState('networkidle');

        const current = async () => (await victim.request.get(`${stack.api.url}/api/links/current`)).status();
        const nothingLinked = async () => {
          expect(await current()).toBe(404);
          expect(await linkCodeUsesOf(db).countDocuments({ accountId: victimId, declinedAt: { $exists: false } })).toBe(
            0,
          );
          expect(await linkStatusesOf(db).countDocuments({ accountId: victimId })).toBe(0);
          expect(await marketplaceLinksOf(db).countDocuments({ accountId: victimId })).toBe(0);
          expect(await accountsOf(db).findOne({ _id: victimId })).toMatchObject({ paymentMethod: 'none' });
        };
        await nothingLinked();

        // Our page asks instead, naming the attacker's AWS account and the victim's own account.
        const confirmation = victim.locator('#link-confirmation');
        await confirmation.waitFor();
        expect(await confirmation.innerText()).toContain(
          `AWS account ${spelled(attacker.body.customer.customerAwsAccountId)} will pay for ${victimName}`,
        );
        expect(await victim.locator('#link-confirm').isVisible()).toBe(true);
        // Link is not clickable at once, nor while the page is out of focus: a click meant for a pop-up that closes
        // itself under the pointer (a double-click lure) cannot land on it.
        await victim.locator('#link-confirm:enabled').waitFor();
        // In the page: lose focus, regain it, and time how long Link stays disabled.
        const rearming = await victim.evaluate<{
          disabledOnBlur: boolean;
          disabledOnFocus: boolean;
          armedAfterMs: number;
        }>(`new Promise((resolve) => {
          const button = document.getElementById('link-confirm');
          window.dispatchEvent(new Event('blur'));
          const disabledOnBlur = button.disabled;
          window.dispatchEvent(new Event('focus'));
          const disabledOnFocus = button.disabled;
          const start = performance.now();
          const check = () => (button.disabled ? setTimeout(check, 10) : resolve({ disabledOnBlur, disabledOnFocus, armedAfterMs: performance.now() - start }));
          check();
        })`);
        expect(rearming).toEqual({ disabledOnBlur: true, disabledOnFocus: true, armedAfterMs: expect.any(Number) });
        expect(rearming.armedAfterMs).toBeGreaterThanOrEqual(ARM_DELAY_MS - 50);

        // AWS confirms the attacker's subscription: still nothing reaches the victim's account.
        await stack.sandbox.control('POST', `/control/customers/${attacker.body.customer._id}/notifications`, {
          action: 'subscribe-success',
        });
        await eventually(
          () => notificationsOf(db).countDocuments({ awsAccountId: attacker.body.customer.customerAwsAccountId }),
          (n) => n === 1,
        );
        await nothingLinked();

        // "Not me" spends the code: it can never link, from this page or any other.
        await victim.click('#link-decline');
        await victim.locator('#link-modal[data-phase="declined"]').waitFor();
        expect(await victim.locator('#link-message').textContent()).toMatch(/Nothing was linked/);
        expect(await confirmation.isHidden()).toBe(true);
        expect(await linkCodeUsesOf(db).findOne({ accountId: victimId })).toMatchObject({
          declinedAt: expect.any(Date),
        });
        await nothingLinked();
      } finally {
        await evil.close();
      }
    });
  });

  it('enforces the Content-Security-Policy: an inline script injected into our page does not run', async () => {
    const context = await browser.newContext();
    const violations = await recordCspViolations(context);
    const page = await context.newPage();
    await page.goto(`${stack.api.url}/signin`);
    await signIn(page, 'erin@example.com');
    const ran = await page.evaluate(`(async () => {
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return window.injected === true;
    })()`);
    expect(ran).toBe(false);
    await eventually(
      async () => violations.length,
      (n) => n > 0,
    );
    expect(violations.join('\n')).toMatch(/script-src/);
    await context.close();
  });
});
