/**
 * The cancelSubscription workflow on the time-skipping server, with its real
 * activities on FerretDB and final metering against the sandbox: the 3-day
 * timer, resubscription, operator updates, order and duplicates.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { createUsageMeteringClient } from '../lib/aws';
import { signalCancellation, type CancellationTarget } from '../lib/cancellation-client';
import { loadServiceConfig } from '../lib/config';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { accountsOf, deploymentsOf } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { HOUR_MS } from '../lib/store/usage';
import {
  abortDeletionUpdate,
  cancellationStateQuery,
  deleteNowUpdate,
  extendGracePeriodUpdate,
  THREE_DAYS_MS,
  type CancellationAction,
  type CancellationState,
} from '../workflows/cancel-subscription';
import { cancellationWorkflowId } from '../workflows/ids';
import type { AwsCustomer } from '../workflows/link-model';
import { startSandbox, type RunningSandbox } from './helpers/sandbox';
import { testServers, uniqueName } from './helpers/test-env';
import { createTimeSkippingEnv, eventually, withTestWorker } from './helpers/time-skipping';

const DAY_MS = 24 * HOUR_MS;

describe('cancelSubscription workflow', () => {
  let env: TestWorkflowEnvironment;
  let mongo: MongoHandle;
  let sandbox: RunningSandbox;
  let metering: ReturnType<typeof createUsageMeteringClient>;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('cancel-wf'));
    await ensureIndexes(mongo.db);
    sandbox = await startSandbox();
    metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: sandbox.url } });
  });
  afterAll(async () => {
    metering?.destroy();
    await sandbox?.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });
  beforeEach(async () => {
    env = await createTimeSkippingEnv();
  });
  afterEach(async () => {
    await env?.teardown();
  });

  /** A subscribed, linked buyer with a running trial, a running production deployment and one stopped long ago. */
  async function linkedBuyer(): Promise<{ customer: AwsCustomer; accountId: string }> {
    const created = await sandbox.control<{ customer: { customerAwsAccountId: string; productCode: string; licenseArn: string } }>('POST', '/control/customers', { subscribed: true });
    const c = created.body.customer;
    const customer = { awsAccountId: c.customerAwsAccountId, productCode: c.productCode };
    const accountId = uniqueName('acct');
    const now = new Date();
    await accountsOf(mongo.db).insertOne({
      _id: accountId, email: `${accountId}@example.com`, name: accountId, paymentMethod: 'aws-marketplace', createdAt: now,
      marketplace: { ...customer, licenseArn: c.licenseArn, linkedAt: new Date(now.getTime() - DAY_MS) },
    });
    await marketplaceLinksOf(mongo.db).insertOne({
      _id: `${customer.awsAccountId}:${customer.productCode}`, ...customer, accountId, state: 'active', licenseArn: c.licenseArn,
      reservedAt: new Date(now.getTime() - DAY_MS), activatedAt: new Date(now.getTime() - DAY_MS),
    });
    await deploymentsOf(mongo.db).insertMany([
      { _id: `${accountId}-trial`, accountId, name: 'trial', plan: 'trial', state: 'running', trialEndsAt: new Date(now.getTime() + 7 * DAY_MS), createdAt: now },
      { _id: `${accountId}-prod`, accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
      { _id: `${accountId}-old`, accountId, name: 'old', plan: 'standard', state: 'stopped', stoppedBy: 'the buyer', createdAt: now },
    ]);
    return { customer, accountId };
  }

  const withWorker = <T>(run: (target: CancellationTarget) => Promise<T>, gracePeriodMs = THREE_DAYS_MS): Promise<T> =>
    withTestWorker(env, createActivities({ db: mongo.db, metering, usageMetering: metering, meteringConfig: loadServiceConfig({}).metering }), (taskQueue) =>
      run({ temporal: env.client, taskQueue, gracePeriodMs }),
    );

  const handleOf = (customer: AwsCustomer) => env.client.workflow.getHandle(cancellationWorkflowId(customer));
  const send = (target: CancellationTarget, customer: AwsCustomer, action: CancellationAction, messageId = uniqueName('msg'), sentAt = new Date()) =>
    signalCancellation(target, customer, { messageId, action, sentAt: sentAt.toISOString() });
  const phaseIs = (customer: AwsCustomer, phase: CancellationState['phase']) =>
    eventually(() => handleOf(customer).query(cancellationStateQuery), (s) => s.phase === phase);
  const states = async (accountId: string) =>
    Object.fromEntries((await deploymentsOf(mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]));

  it('meters for the last time, stops all but the trial, and deletes after 3 days and not before', async () => {
    const { customer, accountId } = await linkedBuyer();
    await withWorker(async (target) => {
      await send(target, customer, 'unsubscribe-pending');
      const pending = await phaseIs(customer, 'awaiting-unsubscribe-success');
      expect(pending.finalMetering).toMatchObject({ sent: expect.any(Number) });
      expect((pending.finalMetering as { sent: number }).sent).toBeGreaterThan(0);
      expect(await marketplaceLinksOf(mongo.db).findOne({ accountId })).toMatchObject({ state: 'unsubscribe-pending' });

      await send(target, customer, 'unsubscribe-success');
      const grace = await phaseIs(customer, 'grace-period');
      expect(grace.keptRunning.map((d) => d.name)).toEqual(['trial']);
      expect(grace.stopped).toEqual([expect.objectContaining({ name: 'prod', outcome: 'stopped' })]);
      expect(await states(accountId)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
      expect(await accountsOf(mongo.db).findOne({ _id: accountId })).toMatchObject({ paymentMethod: 'none' });

      await env.sleep(THREE_DAYS_MS - HOUR_MS);
      expect((await handleOf(customer).query(cancellationStateQuery)).phase).toBe('grace-period');
      expect(await states(accountId)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });

      const done = (await handleOf(customer).result()) as CancellationState;
      // The deletion came when due, 3 days after the stop: not before (checked above), and not at some later timer.
      expect(Date.parse(done.deletingAt!) - Date.parse(grace.deletionDueAt!)).toBeLessThan(60_000);
      expect(Date.parse(done.deletingAt!)).toBeGreaterThanOrEqual(Date.parse(grace.deletionDueAt!));
      expect(done.phase).toBe('deleted');
      expect(done.deleted).toEqual([{ id: `${accountId}-prod`, outcome: 'deleted' }]);
    });
    // The trial runs on, and a deployment the buyer had stopped themselves is not ours to delete.
    expect(await states(accountId)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
    expect(await sandbox.control<unknown[]>('GET', '/control/usage').then((r) => r.body.length)).toBeGreaterThan(0);
  });

  it('aborts the deletion on a resubscription on day 2: deployments kept stopped, billing active again', async () => {
    const { customer, accountId } = await linkedBuyer();
    await withWorker(async (target) => {
      await send(target, customer, 'unsubscribe-pending');
      await send(target, customer, 'unsubscribe-success');
      await phaseIs(customer, 'grace-period');
      await env.sleep(2 * DAY_MS);
      expect(await send(target, customer, 'subscribe-success')).toBe('signalled');
      const done = (await handleOf(customer).result()) as CancellationState;
      expect(done).toMatchObject({ phase: 'aborted', abortedBy: 'resubscription', deleted: [] });
    });
    expect(await states(accountId)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
    expect(await accountsOf(mongo.db).findOne({ _id: accountId })).toMatchObject({ paymentMethod: 'aws-marketplace' });
    expect(await marketplaceLinksOf(mongo.db).findOne({ accountId })).toMatchObject({ state: 'active' });
  });

  it('aborts before anything stops when the buyer resubscribes after unsubscribe-pending (AWS then sends no unsubscribe-success)', async () => {
    const { customer, accountId } = await linkedBuyer();
    await withWorker(async (target) => {
      await send(target, customer, 'unsubscribe-pending');
      await phaseIs(customer, 'awaiting-unsubscribe-success');
      await send(target, customer, 'subscribe-success');
      expect(await handleOf(customer).result()).toMatchObject({ phase: 'aborted', abortedBy: 'resubscription', stopped: [] });
    });
    expect(await states(accountId)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
    expect(await marketplaceLinksOf(mongo.db).findOne({ accountId })).toMatchObject({ state: 'active' });
    expect(await accountsOf(mongo.db).findOne({ _id: accountId })).toMatchObject({ paymentMethod: 'aws-marketplace' });
  });

  it('lets an operator extend the grace period, and refuses updates that make no sense', async () => {
    const { customer, accountId } = await linkedBuyer();
    await withWorker(async (target) => {
      await send(target, customer, 'unsubscribe-pending');
      await phaseIs(customer, 'awaiting-unsubscribe-success');
      const handle = handleOf(customer);
      for (const refused of [deleteNowUpdate, abortDeletionUpdate]) {
        await expect(handle.executeUpdate(refused)).rejects.toHaveProperty('cause.message', expect.stringMatching(/only possible during the grace period/));
      }
      await expect(handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 5 }] })).rejects.toHaveProperty(
        'cause.message',
        expect.stringMatching(/only possible during the grace period/),
      );
      await send(target, customer, 'unsubscribe-success');
      await phaseIs(customer, 'grace-period');
      for (const hours of [0, -1, 1000]) {
        await expect(handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours }] })).rejects.toHaveProperty('cause.message', expect.stringMatching(/hours must be/));
      }
      const extended = await handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 24 }] });
      expect(new Date(extended.deletionDueAt!).getTime()).toBeGreaterThan(Date.now() + THREE_DAYS_MS + 20 * HOUR_MS);
      await env.sleep(THREE_DAYS_MS + HOUR_MS);
      expect((await handle.query(cancellationStateQuery)).phase).toBe('grace-period');
      expect(((await handle.result()) as CancellationState).phase).toBe('deleted');
    });
    expect(await states(accountId)).toMatchObject({ prod: 'deleted' });
  });

  it.each([
    ['deleteNow', deleteNowUpdate, 'deleted', 'deleted'],
    ['abortDeletion', abortDeletionUpdate, 'aborted', 'stopped'],
  ] as const)('carries out the operator update %s at once', async (_name, update, phase, prodState) => {
    const { customer, accountId } = await linkedBuyer();
    await withWorker(async (target) => {
      await send(target, customer, 'unsubscribe-success');
      const grace = await phaseIs(customer, 'grace-period');
      await handleOf(customer).executeUpdate(update);
      const done = (await handleOf(customer).result()) as CancellationState;
      expect(done.phase).toBe(phase);
      // At once: a deletion started well before it was due.
      if (done.deletingAt) expect(Date.parse(done.deletingAt)).toBeLessThan(Date.parse(grace.deletionDueAt!) - 2 * DAY_MS);
    });
    expect(await states(accountId)).toMatchObject({ prod: prodState });
    // An operator abort is not a resubscription: the account stays off AWS billing.
    if (phase === 'aborted') expect(await accountsOf(mongo.db).findOne({ _id: accountId })).toMatchObject({ paymentMethod: 'none' });
  });

  it('ignores notifications from an earlier subscription cycle: no cancellation of a paying customer, no false resubscription', async () => {
    const { customer, accountId } = await linkedBuyer();
    const twoDaysAgo = new Date(Date.now() - 2 * DAY_MS);
    await withWorker(async (target) => {
      // Sent before this subscription began (the link is a day old): stale, so nothing happens.
      await send(target, customer, 'unsubscribe-success', uniqueName('old'), twoDaysAgo);
      expect(((await handleOf(customer).result()) as CancellationState).phase).toBe('ignored-stale');
      expect(await states(accountId)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
      expect(await accountsOf(mongo.db).findOne({ _id: accountId })).toMatchObject({ paymentMethod: 'aws-marketplace' });

      // A real cancellation, then an old subscribe-success (a redelivery from before it): the deletion goes ahead.
      await send(target, customer, 'unsubscribe-success');
      await phaseIs(customer, 'grace-period');
      await send(target, customer, 'subscribe-success', uniqueName('old'), new Date(Date.now() - HOUR_MS));
      expect(((await handleOf(customer).result()) as CancellationState).phase).toBe('deleted');
    });
    expect(await states(accountId)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
  });

  it('handles unsubscribe-success before unsubscribe-pending, and duplicates, with one effect each', async () => {
    const { customer, accountId } = await linkedBuyer();
    const usageBefore = (await sandbox.control<unknown[]>('GET', '/control/usage')).body.length;
    await withWorker(async (target) => {
      for (const messageId of ['dup-success', 'dup-success', 'dup-success']) await send(target, customer, 'unsubscribe-success', messageId);
      await send(target, customer, 'unsubscribe-pending');
      await send(target, customer, 'unsubscribe-pending');
      const grace = await phaseIs(customer, 'grace-period');
      // After unsubscribe-success AWS accepts no metering: none is attempted.
      expect(grace.finalMetering).toBeUndefined();
      expect(grace.stopped).toHaveLength(1);
      expect(((await handleOf(customer).result()) as CancellationState).deleted).toHaveLength(1);
    });
    expect((await sandbox.control<unknown[]>('GET', '/control/usage')).body.length).toBe(usageBefore);
    expect(await states(accountId)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
  });
});
