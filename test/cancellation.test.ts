/**
 * Cancellation on the real stack: the sandbox publishes unsubscribe-pending
 * and unsubscribe-success through moto SNS into SQS, the poller starts the
 * cancelSubscription workflow on the dev server, final metering reaches the
 * sandbox ledger, the deployments stop in MongoDB, and with the grace period
 * set to seconds they are deleted.
 */
import { deploymentsOf } from '../lib/store/accounts';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { cancellationStateQuery, type CancellationState } from '../workflows/cancel-subscription';
import { cancellationWorkflowId } from '../workflows/ids';
import { linkNewBuyer } from './helpers/buyer';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
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
      { _id: `${accountId}-trial`, accountId, name: 'trial', plan: 'trial', state: 'running', trialEndsAt: new Date(now.getTime() + 7 * 24 * HOUR_MS), createdAt: now },
      { _id: `${accountId}-prod`, accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
    ]);
    await usageOf(stack.mongo.db).insertOne({ _id: `${accountId}-prod|now`, accountId, deploymentId: `${accountId}-prod`, hour: hourStart(now), quantities: { session_hours: 3, traffic_gb: 1 } });
  }
  const states = async (accountId: string) =>
    Object.fromEntries((await deploymentsOf(stack.mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]));

  it('meters one last time, stops all but the trial, ends billing, and deletes after the grace period', async () => {
    const buyer = await linkNewBuyer(stack);
    await withDeployments(buyer.accountId);
    const ledgerBefore = (await stack.sandbox.control<Array<{ customerId: string }>>('GET', '/control/usage')).body.filter((u) => u.customerId === buyer.sandboxCustomerId).length;

    await buyer.notify('unsubscribe-pending');
    await eventually(() => marketplaceLinksOf(stack.mongo.db).findOne({ accountId: buyer.accountId }), (link) => link?.state === 'unsubscribe-pending');
    expect((await buyer.browser.get('/billing')).text).toContain('is being cancelled');
    const ledger = (await stack.sandbox.control<Array<{ customerId: string; dimension: string; quantity: number }>>('GET', '/control/usage')).body.filter(
      (u) => u.customerId === buyer.sandboxCustomerId,
    );
    expect(ledger.length).toBeGreaterThan(ledgerBefore);
    expect(ledger).toContainEqual(expect.objectContaining({ dimension: 'session_hours', quantity: 3 }));

    await buyer.notify('unsubscribe-success');
    await eventually(() => states(buyer.accountId), (s) => s.prod === 'stopped');
    expect(await states(buyer.accountId)).toEqual({ trial: 'running', prod: 'stopped' });
    const billing = await eventually(
      () => buyer.browser.get('/api/billing').then((r) => r.json<{ paymentMethod: string; cancellation?: { phase: string; deletionDueAt?: string } }>()),
      (b) => b.cancellation?.phase === 'grace-period',
    );
    expect(billing.paymentMethod).toBe('none');
    expect(new Date(billing.cancellation!.deletionDueAt!).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const page = await buyer.browser.get('/billing');
    expect(page.text).toContain('Your AWS Marketplace subscription is cancelled');
    expect(page.text).toMatch(/prod<\/td><td data-deployment="[^"]+">stopped; to be deleted on /);

    const handle = stack.temporal.workflow.getHandle(cancellationWorkflowId({ awsAccountId: buyer.awsAccountId, productCode: stack.productCode }));
    const done = (await handle.result()) as CancellationState;
    expect(done).toMatchObject({ phase: 'deleted', deleted: [{ id: `${buyer.accountId}-prod`, outcome: 'deleted' }] });
    expect(await states(buyer.accountId)).toEqual({ trial: 'running', prod: 'deleted' });
    expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({
      cancellation: { phase: 'deleted', stoppedDeployments: [{ name: 'prod', deleted: true }] },
    });
    expect((await handle.query(cancellationStateQuery)).keptRunning.map((d) => d.name)).toEqual(['trial']);
  });

  it('makes the link active again when the buyer resubscribes before the deletion', async () => {
    // A grace period long enough that the resubscription always comes first.
    const slow = await startLinkingStack({ gracePeriodMs: 10 * 60_000 });
    try {
      const buyer = await linkNewBuyer(slow);
      await deploymentsOf(slow.mongo.db).insertOne({ _id: `${buyer.accountId}-prod`, accountId: buyer.accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: new Date() });
      await buyer.notify('unsubscribe-success');
      await eventually(() => deploymentsOf(slow.mongo.db).findOne({ _id: `${buyer.accountId}-prod` }), (d) => d?.state === 'stopped');
      expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({ paymentMethod: 'none' });
      await buyer.notify('subscribe-success');
      const handle = slow.temporal.workflow.getHandle(cancellationWorkflowId({ awsAccountId: buyer.awsAccountId, productCode: slow.productCode }));
      expect(await handle.result()).toMatchObject({ phase: 'aborted', abortedBy: 'resubscription', deleted: [] });
      // Kept, and stopped: restarting is the buyer's choice.
      expect(await deploymentsOf(slow.mongo.db).findOne({ _id: `${buyer.accountId}-prod` })).toMatchObject({ state: 'stopped' });
      expect((await buyer.browser.get('/api/billing')).json()).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(await marketplaceLinksOf(slow.mongo.db).findOne({ accountId: buyer.accountId })).toMatchObject({ state: 'active' });
    } finally {
      await slow.stop();
    }
  });
});
