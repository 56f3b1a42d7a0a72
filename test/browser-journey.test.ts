/**
 * The buyer's whole journey in a real browser (Debian's Chromium, driven by
 * playwright-core; no browser is downloaded): subscribe on the sandbox, land
 * on the registration webhook, sign in, watch the modal wait, have AWS send
 * subscribe-success, watch it link, and read the Billing page.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { existsSync } from 'node:fs';
import { DEMO_PASSWORD, seedDemoAccounts } from '../lib/store/demo-accounts';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { eventually } from './helpers/time-skipping';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the buyer journey in Chromium', () => {
  let stack: LinkingStack;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: infra/install.sh installs Debian's chromium package`);
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

  const modalPhase = (page: Page) => page.locator('#link-modal').getAttribute('data-phase');

  /** Subscribe on the sandbox (its form posts the browser to our webhook), then sign in: lands on the index page. */
  async function subscribeAndSignIn(buyer: Page, email: string): Promise<void> {
    await buyer.goto(stack.sandbox.url);
    await Promise.all([buyer.waitForURL(/\/signin\?next=/), buyer.click('#subscribe')]);
    await buyer.fill('#email', email);
    await buyer.fill('#password', DEMO_PASSWORD);
    await Promise.all([buyer.waitForURL(`${stack.api.url}/`), buyer.click('#sign-in')]);
  }

  it('subscribes, registers, signs in, waits for AWS, links, and shows the payment method', async () => {
    const context = await browser.newContext();
    const buyer = await context.newPage();

    // 1-3. The sandbox subscribes, registration sends us to sign in, signing in lands on the index page with the link code.
    await subscribeAndSignIn(buyer, 'alice@example.com');
    expect(new URL(buyer.url()).search).toBe('');

    // 4. The modal shows that we wait for AWS, and the pop-up shows the sync status.
    await buyer.locator('#link-modal[data-phase="waiting-for-aws"]').waitFor();
    expect(await buyer.locator('#link-message').textContent()).toMatch(/Waiting for AWS/);
    await buyer.locator('#sync-popup[data-state="waiting-for-aws"]').waitFor();

    // 5. AWS sends subscribe-success (the sandbox publishes it through SNS into our queue).
    const [subscribed] = await stack.sandbox.store.customers.find().sort({ createdAt: -1 }).limit(1).toArray();
    const row = (page: Page) => page.locator('tr', { has: page.locator(`code:text-is("${subscribed!.customerAwsAccountId}")`) });
    const aws = await context.newPage();
    await aws.goto(stack.sandbox.url);
    await Promise.all([aws.waitForURL(stack.sandbox.url + '/'), row(aws).locator('button[value="subscribe-success"]').click()]);
    expect(await row(aws).locator('[data-status]').textContent()).toBe('subscribed');

    // 6. The modal shows the link is done.
    await buyer.locator('#link-modal[data-phase="linked"]').waitFor();
    expect(await modalPhase(buyer)).toBe('linked');
    expect(await buyer.locator('#sync-popup').getAttribute('data-state')).toBe('synced');

    // 7. Billing shows the new payment method.
    await Promise.all([buyer.waitForURL(`${stack.api.url}/billing`), buyer.click('#link-modal a[href="/billing"]')]);
    expect(await buyer.locator('#payment-method').textContent()).toBe('AWS Marketplace Subscription');
    await context.close();
  });

  it('follows an EventBridge (Proposer) subscription from link to cancellation, and never shows a cancelled buyer as linked', async () => {
    const context = await browser.newContext();
    const buyer = await context.newPage();
    await subscribeAndSignIn(buyer, 'bob@example.com');
    await buyer.locator('#link-modal[data-phase="waiting-for-aws"]').waitFor();

    // AWS's agreement events, as an ISV selling its own offer receives them (Proposer), from the sandbox's buyer page.
    const [subscribed] = await stack.sandbox.store.customers.find().sort({ createdAt: -1 }).limit(1).toArray();
    const aws = await context.newPage();
    const send = async (detailType: string) => {
      await aws.goto(stack.sandbox.url);
      const row = aws.locator('tr', { has: aws.locator(`code:text-is("${subscribed!.customerAwsAccountId}")`) });
      await Promise.all([aws.waitForURL(stack.sandbox.url + '/'), row.locator(`button[value="${detailType}"]`).click()]);
    };
    await send('Purchase Agreement Created - Proposer');
    await buyer.locator('#link-modal[data-phase="linked"]').waitFor();
    await buyer.goto(`${stack.api.url}/billing`);
    expect(await buyer.locator('#payment-method').textContent()).toBe('AWS Marketplace Subscription');

    // The agreement ends (final metering), then the license is deprovisioned: billing ends.
    await send('Purchase Agreement Ended - Proposer');
    const reloaded = (read: () => Promise<string | null>) => async () => (await buyer.reload(), read());
    const status = buyer.locator('#subscription-status');
    await eventually(reloaded(async () => ((await status.count()) > 0 ? status.getAttribute('data-phase') : null)), (phase) => phase === 'awaiting-unsubscribe-success');
    await send('License Deprovisioned - Manufacturer');
    await eventually(reloaded(() => buyer.locator('#payment-method').textContent()), (method) => method === 'None');
    expect(await buyer.locator('#subscription-status').textContent()).toMatch(/cancelled/);

    // A later visit to the index page does not congratulate a cancelled buyer.
    await buyer.goto(`${stack.api.url}/`);
    await buyer.waitForLoadState('networkidle');
    expect(await buyer.locator('#link-modal').isHidden()).toBe(true);
    expect(await buyer.locator('#sync-popup').isHidden()).toBe(true);
    expect(await buyer.locator('body').innerText()).not.toMatch(/AWS sync complete|Payment Method is now AWS Marketplace/);
    await context.close();
  });

  it('shows the refusal reason in the modal for an account with Available Credits', async () => {
    const context = await browser.newContext();
    const buyer = await context.newPage();
    await subscribeAndSignIn(buyer, 'dave@example.com');
    await buyer.locator('#link-modal[data-phase="refused"]').waitFor();
    expect(await buyer.locator('#link-message').textContent()).toMatch(/Available Credits/);
    await buyer.goto(`${stack.api.url}/billing`);
    expect(await buyer.locator('#payment-method').textContent()).toBe('Available Credits');
    await context.close();
  });
});
