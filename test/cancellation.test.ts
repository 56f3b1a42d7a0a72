/**
 * Cancellation on the real stack: the sandbox publishes unsubscribe-pending
 * and unsubscribe-success through moto SNS into SQS, the poller signals the
 * subscription's workflow on the dev server, final metering reaches the
 * sandbox ledger, the deployments stop in MongoDB, and with the grace period
 * set to seconds they are deleted.
 */
import { deploymentsOf } from '../lib/store/accounts';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { linkNewBuyer } from './helpers/buyer';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { eventuallyState, subscriptionHandle } from './helpers/subscription';
import { eventually } from './helpers/time-skipping';

describe('cancellation on the real stack', () => {
  let stack: LinkingStack;

  beforeAll(async () => {
    stack = await startLinkingStack({ gracePeriodMs: 3000 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function withDeployments(accountId: string) {
    const now = new Date();
    await deploymentsOf(stack.mongo.db).insertMany([
      {
        _id: `${accountId}-trial`,
        accountId,
        name: 'trial',
        plan: 'trial',
        state: 'running',
        trialEndsAt: new Date(now.getTime() + 7 * 24 * HOUR_MS),
        createdAt: now,
      },
      { _id: `${accountId}-prod`, accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
    ]);
    await usageOf(stack.mongo.db).insertOne({
      _id: `${accountId}-prod|now`,
      accountId,
      deploymentId: `${accountId}-prod`,
      hour: hourStart(now),
      quantities: { session_hours: 3, traffic_gb: 1 },
    });
  }
  const states = async (accountId: string) =>
    Object.fromEntries(
      (await deploymentsOf(stack.mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]),
    );

  it('meters one last time, stops all but the trial, ends billing, and deletes after the grace period', async () => {
    const buyer = await linkNewBuyer(stack);
    await withDeployments(buyer.accountId);
    const ledgerBefore = (
      await stack.sandbox.control<Array<{ customerId: string }>>('GET', '/control/usage')
    ).body.filter((u) => u.customerId === buyer.sandboxCustomerId).length;

    const handle = await subscriptionHandle(stack.temporal, stack.mongo.db, {
      awsAccountId: buyer.awsAccountId,
      productCode: stack.productCode,
    });
    await buyer.notify('unsubscribe-pending');
    await eventually(
      () => marketplaceLinksOf(stack.mongo.db).findOne({ accountId: buyer.accountId }),
      (link) => link?.state === 'unsubscribe-pending',
    );
    expect((await buyer.browser.get('/billing')).text).toContain('is being cancelled');
    // Final metering is done once the workflow waits for AWS's unsubscribe-success.
    const leaving = await eventuallyState(handle, (s) => s.phase === 'awaiting-unsubscribe-success');
    expect(leaving.cancellation?.finalMetering).toMatchObject({
      records: expect.any(Number),
      sent: expect.any(Number),
    });
    const ledger = (
      await stack.sandbox.control<Array<{ customerId: string; dimension: string; quantity: number }>>(
        'GET',
        '/control/usage',
      )
    ).body.filter((u) => u.customerId === buyer.sandboxCustomerId);
    expect(ledger.length).toBeGreaterThan(ledgerBefore);
    expect(ledger).toContainEqual(expect.objectContaining({ dimension: 'session_hours', quantity: 3 }));

    await buyer.notify('unsubscribe-success');
    await eventually(
      () => states(buyer.accountId),
      (s) => s.prod === 'stopped',
    );
    expect(await states(buyer.accountId)).toEqual({ trial: 'running', prod: 'stopped' });
    const billing = await eventually(
      () =>
        buyer.browser
          .get('/api/billing')
          .then((r) => r.json<{ paymentMethod: string; cancellation?: { phase: string; deletionDueAt?: string } }>()),
      (b) => b.cancellation?.phase === 'grace-period',
    );
    expect(billing.paymentMethod).toBe('none');
    expect(new Date(billing.cancellation!.deletionDueAt!).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const page = await buyer.browser.get('/billing');
    expect(page.text).toContain('Your AWS Marketplace subscription is cancelled');
    expect(page.text).toMatch(/prod<\/td><td data-deployment="[^"]+">stopped; to be deleted on /);
    // The buyer's link status says the subscription is cancelled.
    expect((await buyer.browser.get('/api/links/current')).json()).toMatchObject({
      accountId: buyer.accountId,
      phase: 'cancelled',
    });

    // The subscription's workflow lives on (a resubscription would revive it): the deletion is a phase, not its end.
    const done = await eventuallyState(handle, (s) => s.phase === 'deleted');
    expect(done.cancellation).toMatchObject({ deleted: [{ id: `${buyer.accountId}-prod`, outcome: 'deleted' }] });
    expect(await states(buyer.accountId)).toEqual({ trial: 'running', prod: 'deleted' });
    expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({
      cancellation: { phase: 'deleted', stoppedDeployments: [{ name: 'prod', deleted: true }] },
    });
    expect(done.cancellation!.keptRunning.map((d) => d.name)).toEqual(['trial']);
  });

  it('makes the link active again when the buyer resubscribes before the deletion', async () => {
    // A grace period long enough that the resubscription always comes first.
    const slow = await startLinkingStack({ gracePeriodMs: 10 * 60_000 });
    try {
      const buyer = await linkNewBuyer(slow);
      await deploymentsOf(slow.mongo.db).insertOne({
        _id: `${buyer.accountId}-prod`,
        accountId: buyer.accountId,
        name: 'prod',
        plan: 'standard',
        state: 'running',
        createdAt: new Date(),
      });
      await buyer.notify('unsubscribe-success');
      await eventually(
        () => deploymentsOf(slow.mongo.db).findOne({ _id: `${buyer.accountId}-prod` }),
        (d) => d?.state === 'stopped',
      );
      expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({ paymentMethod: 'none' });
      const handle = await subscriptionHandle(slow.temporal, slow.mongo.db, {
        awsAccountId: buyer.awsAccountId,
        productCode: slow.productCode,
      });
      await eventuallyState(handle, (s) => s.phase === 'grace-period');
      await buyer.notify('subscribe-success');
      const resubscribed = await eventuallyState(handle, (s) => s.phase === 'active');
      expect(resubscribed.cancellation).toMatchObject({ abortedBy: 'resubscription', deleted: [] });
      expect(resubscribed.cancellation?.deletionDueAt).toBeUndefined();
      // Kept, and stopped: restarting is the buyer's choice.
      expect(await deploymentsOf(slow.mongo.db).findOne({ _id: `${buyer.accountId}-prod` })).toMatchObject({
        state: 'stopped',
      });
      expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(await marketplaceLinksOf(slow.mongo.db).findOne({ accountId: buyer.accountId })).toMatchObject({
        state: 'active',
      });
      await eventually(
        () => buyer.browser.get('/api/links/current').then((r) => r.json<{ phase?: string }>().phase),
        (phase) => phase === 'linked',
      );
    } finally {
      await slow.stop();
    }
  });
});
