/**
 * The subscription workflow (workflows/subscription.ts) on the time-skipping
 * server, with its real activities on FerretDB and final metering against the
 * sandbox. Every case reaches the workflow the way production does
 * (lib/subscription-client: signal-with-start for AWS events, update-with-start
 * for link requests; operator updates on the handle) and checks what the pages
 * read: link_statuses, subscriptions, cancellations, the account's payment
 * method, the deployments and marketplace_links.
 *
 * AWS send times come from a per-test clock (`at(minute)`): the workflow
 * orders events by them only, never against its own clock. The
 * continue-as-new cases run on the dev server global-setup starts, in real
 * time (see withDevServerWorker).
 */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createUsageMeteringClient } from '../lib/aws';
import { loadMeteringConfig, loadSubscriptionSettings } from '../lib/config';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { BillingStatus } from '../domain/search-attributes';
import { connectClient } from '../lib/temporal';
import { accountsOf, deploymentsOf, type AccountDoc } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { linkStatusesOf } from '../lib/store/link-status';
import { cancellationsOf, customerKey, marketplaceLinksOf, saveResolvedCustomer } from '../lib/store/marketplace';
import { subscriptionsOf } from '../lib/store/subscriptions';
import { HOUR_MS } from '../lib/store/usage';
import { requestLink, signalAwsEvent, type SubscriptionTarget } from '../clients/subscription-client';
import type { AwsAction } from '../domain/aws-ordering';
import type { LinkPhase, LinkStatus } from '../domain/link-model';
import type { subscription } from '../workflows/subscription/subscription';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import {
  abortDeletionUpdate,
  cancelLinkUpdate,
  confirmUnsubscribedUpdate,
  deleteNowUpdate,
  extendGracePeriodUpdate,
  requestLinkUpdate,
  restoreSubscriptionUpdate,
  retryNowUpdate,
  retrySyncUpdate,
  subscriptionStateQuery,
} from '../domain/subscription-messages';
import type {
  SubscriptionEvent,
  SubscriptionPhase,
  SubscriptionSettings,
  SubscriptionSnapshot,
  SubscriptionView,
} from '../domain/subscription-model';
import { historyIsQuiet } from '../infra/history-quiet';
import { startSandbox, type RunningSandbox } from './helpers/sandbox';
import { testServers, uniqueName } from './helpers/test-env';
import { createTimeSkippingEnv, eventually, withTestWorker } from './helpers/time-skipping';

jest.setTimeout(180_000);

const DAY_MS = 24 * HOUR_MS;
const SYNC_TIMEOUT_MS = 10 * 60_000;
/** The production default (CANCELLATION_GRACE_SECONDS): 3 days. */
const GRACE_MS = loadSubscriptionSettings({}).cancellation.gracePeriodMs;
const EventType = temporal.api.enums.v1.EventType;

type Activities = ReturnType<typeof createActivities>;
type Hook = (...args: never[]) => unknown;

describe('subscription workflow', () => {
  let env: TestWorkflowEnvironment;
  /** The client of the server the current test runs on (the time-skipping one unless the test chose the dev server). */
  let client: Client;
  let mongo: MongoHandle;
  let sandbox: RunningSandbox;
  let metering: ReturnType<typeof createUsageMeteringClient>;
  let activities: Activities;
  /** Activity calls per name in the current test. */
  let calls: Record<string, number>;
  /** Run before an activity, awaited: lets a test hold one back. */
  let hooks: Partial<Record<keyof Activities, Hook>>;
  /** The AWS clock of the current test. */
  let awsEpoch: number;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('subscription-wf'));
    await ensureIndexes(mongo.db);
    sandbox = await startSandbox();
    metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: sandbox.url } });
    const real = createActivities({
      db: mongo.db,
      metering,
      usageMetering: metering,
      meteringConfig: loadMeteringConfig({}),
    });
    // The real activities, counted (so duplicates can be shown to have one effect) and hookable.
    activities = Object.fromEntries(
      Object.entries(real).map(([name, fn]) => [
        name,
        async (...args: unknown[]) => {
          calls[name] = (calls[name] ?? 0) + 1;
          await (hooks[name as keyof Activities] as ((...a: unknown[]) => unknown) | undefined)?.(...args);
          return (fn as (...a: unknown[]) => unknown)(...args);
        },
      ]),
    ) as Activities;
  });
  afterAll(async () => {
    metering?.destroy();
    await sandbox?.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });
  // One test server per test: time skipping is global to a server.
  beforeEach(async () => {
    calls = {};
    hooks = {};
    awsEpoch = Date.now() - DAY_MS;
    env = await createTimeSkippingEnv();
    client = env.client;
  });
  afterEach(async () => {
    await env?.teardown();
  });

  // --- Seeding: an AWS subscription the sandbox meters, and platform accounts with deployments. ---

  /** A subscription as ResolveCustomer left it (licensed model), subscribed in the sandbox so final metering is accepted. */
  async function newSubscription(): Promise<SubscriptionRef> {
    const created = await sandbox.control<{
      customer: { customerAwsAccountId: string; productCode: string; licenseArn: string };
    }>('POST', '/control/customers', {
      subscribed: true,
    });
    const c = created.body.customer;
    const ref = { awsAccountId: c.customerAwsAccountId, productCode: c.productCode, licenseArn: c.licenseArn };
    await saveResolvedCustomer(mongo.db, { ...ref, offerType: 'standard' });
    return ref;
  }

  /** An account (eligible unless `fields` say otherwise) with a running trial, a running production deployment and one the buyer stopped. */
  async function newAccount(fields: Partial<AccountDoc> = {}): Promise<string> {
    const _id = uniqueName('acct');
    const now = new Date();
    await accountsOf(mongo.db).insertOne({
      _id,
      email: `${_id}@example.com`,
      name: _id,
      paymentMethod: 'none',
      createdAt: now,
      ...fields,
    });
    await deploymentsOf(mongo.db).insertMany([
      {
        _id: `${_id}-trial`,
        accountId: _id,
        name: 'trial',
        plan: 'trial',
        state: 'running',
        trialEndsAt: new Date(now.getTime() + 7 * DAY_MS),
        createdAt: now,
      },
      { _id: `${_id}-prod`, accountId: _id, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
      {
        _id: `${_id}-old`,
        accountId: _id,
        name: 'old',
        plan: 'standard',
        state: 'stopped',
        stoppedBy: 'the buyer',
        createdAt: now,
      },
    ]);
    return _id;
  }

  const withWorker = <T>(
    run: (target: SubscriptionTarget) => Promise<T>,
    settings: Partial<SubscriptionSettings> = {},
  ): Promise<T> =>
    withTestWorker(env, activities, (taskQueue) =>
      run({
        temporal: env.client,
        taskQueue,
        settings: { syncTimeoutMs: SYNC_TIMEOUT_MS, gracePeriodMs: GRACE_MS, ...settings },
      }),
    );

  /**
   * Runs `run` on the dev server global-setup started (real time, real server
   * semantics) with a worker on a fresh task queue. For continue-as-new, whose
   * chains of runs the time-skipping server routes updates through unreliably.
   */
  async function withDevServerWorker<T>(
    run: (target: SubscriptionTarget) => Promise<T>,
    settings: Partial<SubscriptionSettings> = {},
  ): Promise<T> {
    const config = testServers.temporal();
    const connection = await NativeConnection.connect({ address: config.address });
    const devClient = await connectClient(config);
    try {
      const worker = await Worker.create({
        connection,
        namespace: config.namespace,
        taskQueue: config.taskQueue,
        workflowsPath: require.resolve('../workflows'),
        activities,
      });
      client = devClient;
      return await worker.runUntil(
        run({
          temporal: devClient,
          taskQueue: config.taskQueue,
          settings: { syncTimeoutMs: SYNC_TIMEOUT_MS, gracePeriodMs: GRACE_MS, ...settings },
        }),
      );
    } finally {
      client = env.client;
      await devClient.connection.close();
      await connection.close();
    }
  }

  // --- AWS events. ---

  const at = (minute: number) => new Date(awsEpoch + minute * 60_000).toISOString();
  const event = (action: AwsAction, minute: number, id = uniqueName(action)): SubscriptionEvent => ({
    id,
    action,
    sentAt: at(minute),
  });
  /** An EventBridge event names the license; an SNS message (`event`) does not. */
  const licensed = (ref: SubscriptionRef, action: AwsAction, minute: number): SubscriptionEvent => ({
    ...event(action, minute),
    licenseArn: ref.licenseArn,
  });
  const send = (target: SubscriptionTarget, ref: SubscriptionRef, e: SubscriptionEvent) =>
    signalAwsEvent(target, ref, e);

  // --- What the pages and operators read. ---

  const handleOf = (ref: SubscriptionRef) =>
    client.workflow.getHandle<typeof subscription>(subscriptionWorkflowId(ref));
  const viewOf = (ref: SubscriptionRef) => handleOf(ref).query(subscriptionStateQuery);
  const statusOf = (ref: SubscriptionRef, accountId: string) =>
    linkStatusesOf(mongo.db).findOne({ accountId, awsAccountId: ref.awsAccountId }) as Promise<LinkStatus | null>;
  const linkStatusIs = (ref: SubscriptionRef, accountId: string, phase: LinkPhase) =>
    eventually(
      () => statusOf(ref, accountId),
      (s) => s?.phase === phase,
    );
  const accountOf = (accountId: string) => accountsOf(mongo.db).findOne({ _id: accountId });
  const linkOf = (ref: SubscriptionRef) => marketplaceLinksOf(mongo.db).findOne({ _id: customerKey(ref) });
  const cancellationOf = (ref: SubscriptionRef) => cancellationsOf(mongo.db).findOne({ _id: customerKey(ref) });
  const savedOf = (ref: SubscriptionRef) => subscriptionsOf(mongo.db).findOne({ _id: customerKey(ref) });
  const states = async (accountId: string) =>
    Object.fromEntries((await deploymentsOf(mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]));
  const billingStatusOf = async (ref: SubscriptionRef) =>
    (await handleOf(ref).describe()).typedSearchAttributes.get(BillingStatus);

  /**
   * The workflow waits in `phase`: its latest run has no workflow task and no
   * activity open, the query shows the phase and the store saved it. Only then may a test skip time or check the store.
   */
  async function waitsIn(
    ref: SubscriptionRef,
    phase: SubscriptionPhase | SubscriptionPhase[],
  ): Promise<SubscriptionView> {
    const phases = Array.isArray(phase) ? phase : [phase];
    const settled = await eventually(
      async () => {
        const handle = handleOf(ref);
        const [view, { events }, saved] = await Promise.all([
          handle.query(subscriptionStateQuery),
          handle.fetchHistory(),
          savedOf(ref),
        ]);
        const quiet = historyIsQuiet(events!);
        return { view, quiet, saved: saved?.phase };
      },
      (s) => s.quiet && phases.includes(s.view.phase) && s.saved === s.view.phase,
      400,
    );
    return settled.view;
  }

  /** The update was refused by its validator: rejected with `message`, not retried, nothing in the history. */
  async function expectRefused(update: Promise<unknown>, message: RegExp): Promise<void> {
    const error = await update.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((error as WorkflowUpdateFailedError).cause?.message).toMatch(message);
  }

  /** Nothing in the latest run's history failed a workflow task (a validator refusal must not). */
  async function expectNoTaskFailures(ref: SubscriptionRef): Promise<void> {
    const { events } = await handleOf(ref).fetchHistory();
    expect(events!.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)).toEqual([]);
  }

  // --- Steps many cases share. ---

  /** The account asks, AWS confirms: linked, billed through AWS Marketplace. */
  async function link(
    target: SubscriptionTarget,
    ref: SubscriptionRef,
    accountId: string,
    success = event('subscribe-success', 0),
  ): Promise<void> {
    expect(await requestLink(target, ref, accountId)).toMatchObject({ accountId, phase: 'waiting-for-aws' });
    await send(target, ref, success);
    await waitsIn(ref, 'active');
    await linkStatusIs(ref, accountId, 'linked');
  }

  /** Linked, then AWS ends it (unsubscribe-pending at minute 60, unsubscribe-success at 61). */
  async function cancelled(
    target: SubscriptionTarget,
    ref: SubscriptionRef,
    accountId: string,
    success = event('subscribe-success', 0),
  ): Promise<SubscriptionView> {
    await link(target, ref, accountId, success);
    await send(target, ref, event('unsubscribe-pending', 60));
    await waitsIn(ref, 'awaiting-unsubscribe-success');
    await send(target, ref, event('unsubscribe-success', 61));
    return waitsIn(ref, 'grace-period');
  }

  describe('link requests', () => {
    it('refuses an account with a credit card: no reservation, the account unchanged', async () => {
      const ref = await newSubscription();
      const carol = await newAccount({ paymentMethod: 'credit-card', creditCard: { brand: 'Visa', last4: '4242' } });
      const before = await accountOf(carol);
      await withWorker(async (target) => {
        const answer = await requestLink(target, ref, carol);
        expect(answer).toMatchObject({
          accountId: carol,
          phase: 'refused',
          refusal: 'CreditCardOnFile',
          message: expect.stringMatching(/credit card/),
        });
        const view = await waitsIn(ref, 'registered');
        expect(view.owner).toBeUndefined();
        expect(view.pendingRequests).toBe(0);
      });
      expect(await statusOf(ref, carol)).toMatchObject({ phase: 'refused', refusal: 'CreditCardOnFile' });
      expect(await accountOf(carol)).toEqual(before);
      expect(await marketplaceLinksOf(mongo.db).countDocuments({ accountId: carol })).toBe(0);
      expect(await states(carol)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
      expect(calls.claimSubscription).toBe(1);
      expect(calls.activateSubscription).toBeUndefined();
    });

    it('answers waiting-for-aws, then links on subscribe-success: payment method AWS Marketplace', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        const answer = await requestLink(target, ref, alice);
        expect(answer).toMatchObject({
          accountId: alice,
          phase: 'waiting-for-aws',
          message: expect.stringMatching(/Waiting for AWS/),
        });
        expect(await waitsIn(ref, 'awaiting-aws')).toMatchObject({ owner: alice });
        expect(await statusOf(ref, alice)).toMatchObject({ phase: 'waiting-for-aws' });
        expect(await linkOf(ref)).toMatchObject({ accountId: alice, state: 'reserved' });
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
        expect(await billingStatusOf(ref)).toBe('awaiting-aws');

        await send(target, ref, event('subscribe-success', 0));
        await waitsIn(ref, 'active');
        expect(await billingStatusOf(ref)).toBe('active');
      });
      expect(await statusOf(ref, alice)).toMatchObject({
        phase: 'linked',
        message: expect.stringMatching(/AWS Marketplace Subscription/),
      });
      expect(await accountOf(alice)).toMatchObject({
        paymentMethod: 'aws-marketplace',
        marketplace: { awsAccountId: ref.awsAccountId, productCode: ref.productCode, licenseArn: ref.licenseArn },
      });
      expect(await linkOf(ref)).toMatchObject({ accountId: alice, state: 'active', licenseArn: ref.licenseArn });
      expect(await savedOf(ref)).toMatchObject({ phase: 'active', accountId: alice });
      expect(calls.activateSubscription).toBe(1);
    });

    it('switches billing as the first step after subscribe-success, and saves the confirmed state after it', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      const confirmation = event('subscribe-success', 0);
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        await waitsIn(ref, 'awaiting-aws');
        await send(target, ref, confirmation);
        await waitsIn(ref, 'active');
        const { events } = await handleOf(ref).fetchHistory();
        const signalled = events!.findIndex((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
        const stepsAfter = events!
          .slice(signalled)
          .flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []))
          .map((scheduled) => scheduled.activityType!.name);
        // The buyer waits for the activation: no save of the state goes before it.
        expect(signalled).toBeGreaterThan(0);
        expect(stepsAfter[0]).toBe('activateSubscription');
        expect(stepsAfter.slice(1)).toContain('saveSubscription');
      });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(await savedOf(ref)).toMatchObject({
        phase: 'active',
        state: { aws: { status: 'subscribed' }, seen: expect.arrayContaining([confirmation.id]) },
      });
      expect(calls.activateSubscription).toBe(1);
    });

    it('refuses a second account (CustomerLinkedToAnotherAccount)', async () => {
      const ref = await newSubscription();
      const [alice, bob] = [await newAccount(), await newAccount()];
      await withWorker(async (target) => {
        await link(target, ref, alice);
        expect(await requestLink(target, ref, bob)).toMatchObject({
          accountId: bob,
          phase: 'refused',
          refusal: 'CustomerLinkedToAnotherAccount',
        });
        await linkStatusIs(ref, bob, 'refused');
        expect(await waitsIn(ref, 'active')).toMatchObject({ owner: alice });
      });
      expect(await statusOf(ref, bob)).toMatchObject({ refusal: 'CustomerLinkedToAnotherAccount' });
      expect(await accountOf(bob)).toMatchObject({ paymentMethod: 'none' });
      expect(await accountOf(bob)).not.toHaveProperty('marketplace');
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(calls.claimSubscription).toBe(1);
    });

    it('answers the owner asking again (a reload of the page) at once, while waiting for AWS and once linked', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      const again = (target: SubscriptionTarget) =>
        requestLink(target, ref, alice).then(
          (answer) => answer.phase,
          (error: Error) => `${error.name}: ${error.message}`,
        );
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        await waitsIn(ref, 'awaiting-aws');
        const whileWaiting = await again(target);
        await send(target, ref, event('subscribe-success', 0));
        await waitsIn(ref, 'active');
        await linkStatusIs(ref, alice, 'linked');
        const onceLinked = await again(target);
        expect({ whileWaiting, onceLinked }).toEqual({ whileWaiting: 'waiting-for-aws', onceLinked: 'linked' });
      });
    });

    it('answers a request made after subscribe-success, and activates at once', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await send(target, ref, event('subscribe-success', 0));
        const early = await waitsIn(ref, 'registered');
        expect(early.aws.status).toBe('subscribed');
        expect(early.owner).toBeUndefined();
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });

        const answer = await requestLink(target, ref, alice);
        expect(answer).toMatchObject({ accountId: alice });
        expect(['waiting-for-aws', 'linked']).toContain(answer.phase);
        await waitsIn(ref, 'active');
      });
      expect(await statusOf(ref, alice)).toMatchObject({ phase: 'linked' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(await linkOf(ref)).toMatchObject({ state: 'active' });
    });

    it('refuses an account id the validator does not accept, without a task failure', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        await expectRefused(
          handleOf(ref).executeUpdate(requestLinkUpdate, { args: [{ accountId: 'not an id!' }] }),
          /accountId must be a platform account id/,
        );
        await waitsIn(ref, 'awaiting-aws');
        await expectNoTaskFailures(ref);
      });
    });
  });

  describe('sync timeout', () => {
    it('ends the wait in sync-timed-out, refuses an early retrySync, and waits for AWS again after one', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        await waitsIn(ref, 'awaiting-aws');
        const handle = handleOf(ref);
        await expectRefused(
          handle.executeUpdate(retrySyncUpdate),
          /retrySync is only possible in sync-timed-out; the subscription is "awaiting-aws"/,
        );

        await env.sleep(SYNC_TIMEOUT_MS + 60_000);
        expect(await waitsIn(ref, 'sync-timed-out')).toMatchObject({ owner: alice });
        expect(
          await eventually(
            () => billingStatusOf(ref),
            (s) => s === 'sync-timed-out',
          ),
        ).toBe('sync-timed-out');
        expect(await statusOf(ref, alice)).toMatchObject({
          phase: 'sync-timed-out',
          message: expect.stringMatching(/has not confirmed/),
        });
        expect(await linkOf(ref)).toMatchObject({ state: 'reserved' });

        const retried = await handle.executeUpdate(retrySyncUpdate);
        expect(retried.phase).toBe('awaiting-aws');
        await waitsIn(ref, 'awaiting-aws');
        await linkStatusIs(ref, alice, 'waiting-for-aws');
        expect(await billingStatusOf(ref)).toBe('awaiting-aws');
        // A full sync timeout again: half of it passes without a timeout.
        await env.sleep(SYNC_TIMEOUT_MS / 2);
        await waitsIn(ref, 'awaiting-aws');

        await send(target, ref, event('subscribe-success', 0));
        await waitsIn(ref, 'active');
        await expectNoTaskFailures(ref);
      });
      expect(await statusOf(ref, alice)).toMatchObject({ phase: 'linked' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
    });

    it.each(['awaiting-aws', 'sync-timed-out'] as const)(
      'cancelLink in %s returns once the reservation is released (link gone, status LinkCancelled); the account may link elsewhere',
      async (from) => {
        const [ref, other] = [await newSubscription(), await newSubscription()];
        const alice = await newAccount();
        await withWorker(async (target) => {
          // Started by AWS, nobody linked yet: nothing to cancel.
          await send(target, ref, event('subscribe-fail', 0));
          await waitsIn(ref, 'registered');
          await expectRefused(
            handleOf(ref).executeUpdate(cancelLinkUpdate),
            /cancelLink is only possible in awaiting-aws or sync-timed-out; the subscription is "registered"/,
          );

          await requestLink(target, ref, alice);
          await waitsIn(ref, 'awaiting-aws');
          if (from === 'sync-timed-out') {
            await env.sleep(SYNC_TIMEOUT_MS + 60_000);
            await waitsIn(ref, 'sync-timed-out');
          }
          // A slow store: the update must still return only once the buyer's status shows the cancellation.
          hooks.publishLinkStatus = async (...args: never[]) => {
            const [status] = args as unknown as [LinkStatus];
            if (status.refusal === 'LinkCancelled') await new Promise((resolve) => setTimeout(resolve, 1000));
          };
          const returned = await handleOf(ref).executeUpdate(cancelLinkUpdate);
          const [linkWhenReturned, statusWhenReturned] = [await linkOf(ref), await statusOf(ref, alice)];
          expect(returned.owner).toBeUndefined();
          expect(linkWhenReturned).toBeNull();
          expect(statusWhenReturned).toMatchObject({ phase: 'refused', refusal: 'LinkCancelled' });

          await waitsIn(ref, 'registered');
          expect(await statusOf(ref, alice)).toMatchObject({ phase: 'refused', refusal: 'LinkCancelled' });
          expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
          expect(await requestLink(target, other, alice)).toMatchObject({ phase: 'waiting-for-aws' });
          await expectNoTaskFailures(ref);
        });
      },
    );
  });

  describe('cancellation', () => {
    it('is 3 days of grace by default', () => {
      expect(GRACE_MS).toBe(3 * DAY_MS);
    });

    it('meters for the last time on unsubscribe-pending, stops all but the trial on unsubscribe-success, and deletes after 3 days, not before', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      const usageBefore = (await sandbox.control<unknown[]>('GET', '/control/usage')).body.length;
      await withWorker(async (target) => {
        await link(target, ref, alice);
        await send(target, ref, event('unsubscribe-pending', 60));
        const pending = await waitsIn(ref, 'awaiting-unsubscribe-success');
        expect(calls.meterCustomerNow).toBe(1);
        expect(pending.cancellation?.finalMetering).toEqual({ records: expect.any(Number), sent: expect.any(Number) });
        expect((pending.cancellation!.finalMetering as { sent: number }).sent).toBeGreaterThan(0);
        expect((await sandbox.control<unknown[]>('GET', '/control/usage')).body.length).toBeGreaterThan(usageBefore);
        expect(await linkOf(ref)).toMatchObject({ state: 'unsubscribe-pending' });
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
        expect(await states(alice)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
        expect(await cancellationOf(ref)).toMatchObject({
          accountId: alice,
          phase: 'awaiting-unsubscribe-success',
          stopped: [],
          deleted: [],
        });
        expect(await billingStatusOf(ref)).toBe('awaiting-unsubscribe-success');

        await send(target, ref, event('unsubscribe-success', 61));
        const grace = await waitsIn(ref, 'grace-period');
        expect(grace.cancellation).toMatchObject({
          stopped: [{ id: `${alice}-prod`, name: 'prod', outcome: 'stopped' }],
          keptRunning: [expect.objectContaining({ id: `${alice}-trial`, name: 'trial' })],
          deleted: [],
        });
        expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
        expect(await linkOf(ref)).toMatchObject({ state: 'cancelled' });
        expect(await statusOf(ref, alice)).toMatchObject({ phase: 'cancelled' });
        expect(await cancellationOf(ref)).toMatchObject({
          phase: 'grace-period',
          deletionDueAt: new Date(grace.cancellation!.deletionDueAt!),
          stopped: [{ id: `${alice}-prod`, name: 'prod' }],
        });
        expect(await billingStatusOf(ref)).toBe('grace-period');

        await env.sleep(GRACE_MS - HOUR_MS);
        const almost = await waitsIn(ref, 'grace-period');
        expect(almost.cancellation!.deleted).toEqual([]);
        expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });

        await env.sleep(2 * HOUR_MS);
        const done = await waitsIn(ref, 'deleted');
        expect(done.cancellation!.deleted).toEqual([{ id: `${alice}-prod`, outcome: 'deleted' }]);
        expect(done.cancellation!.deletionDueAt).toBeUndefined();
        expect(await billingStatusOf(ref)).toBe('deleted');
        await expectNoTaskFailures(ref);
      });
      // The trial runs on, and a deployment the buyer had stopped themselves is not ours to delete.
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
      expect(await cancellationOf(ref)).toMatchObject({ phase: 'deleted', deleted: [`${alice}-prod`] });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
    });

    it('deleteNow deletes at once and returns the deleted list', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await cancelled(target, ref, alice);
        const record = await handleOf(ref).executeUpdate(deleteNowUpdate);
        expect(record.deleted).toEqual([{ id: `${alice}-prod`, outcome: 'deleted' }]);
        expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
        await waitsIn(ref, 'deleted');
        await expectRefused(
          handleOf(ref).executeUpdate(deleteNowUpdate),
          /deleteNow is only possible in grace-period; the subscription is "deleted"/,
        );
      });
    });

    it('extendGracePeriod moves the due date, and refuses 0, -1 and 1000 hours', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        const grace = await cancelled(target, ref, alice);
        const handle = handleOf(ref);
        for (const hours of [0, -1, 1000]) {
          await expectRefused(
            handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours }] }),
            /hours must be a number above 0 and at most 720/,
          );
        }
        const due = Date.parse(grace.cancellation!.deletionDueAt!);
        const extended = await handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 24 }] });
        expect(Date.parse(extended.deletionDueAt!)).toBe(due + DAY_MS);
        await waitsIn(ref, 'grace-period');
        expect((await cancellationOf(ref))?.deletionDueAt?.getTime()).toBe(due + DAY_MS);

        // Past the first due date: still waiting.
        await env.sleep(GRACE_MS + HOUR_MS);
        await waitsIn(ref, 'grace-period');
        expect(await states(alice)).toMatchObject({ prod: 'stopped' });
        // Past the new one: deleted.
        await env.sleep(DAY_MS);
        await waitsIn(ref, 'deleted');
        await expectNoTaskFailures(ref);
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
    });

    it('abortDeletion keeps the deployments stopped and billing ended: phase cancelled', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await cancelled(target, ref, alice);
        const record = await handleOf(ref).executeUpdate(abortDeletionUpdate);
        expect(record).toMatchObject({ abortedBy: 'operator', deleted: [] });
        expect(record.deletionDueAt).toBeUndefined();
        await waitsIn(ref, 'cancelled');
        await env.sleep(GRACE_MS + DAY_MS);
        expect(await waitsIn(ref, 'cancelled')).toMatchObject({ owner: alice });
        expect(await billingStatusOf(ref)).toBe('cancelled');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
      expect(await linkOf(ref)).toMatchObject({ state: 'cancelled' });
      expect(await cancellationOf(ref)).toMatchObject({ phase: 'cancelled' });
    });

    it('restoreSubscription restores billing and returns to active; the stopped deployments stay stopped and are not deleted', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await cancelled(target, ref, alice);
        const handle = handleOf(ref);
        await expectRefused(
          handle.executeUpdate(restoreSubscriptionUpdate, { args: [{ reason: ' ' }] }),
          /give the reason/,
        );
        const returned = await handle.executeUpdate(restoreSubscriptionUpdate, {
          args: [{ reason: 'AWS support confirmed the buyer is still subscribed' }],
        });
        // Let whatever follows the restore run, then look at where it ended.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const after = await eventually(
          () => viewOf(ref),
          (v) => ['active', 'grace-period', 'deleted', 'cancelled'].includes(v.phase),
        );
        const [account, linkDoc, saved] = [await accountOf(alice), await linkOf(ref), await savedOf(ref)];
        expect({
          phase: after.phase,
          saved: saved?.phase,
          paymentMethod: account?.paymentMethod,
          link: linkDoc?.state,
        }).toEqual({
          phase: 'active',
          saved: 'active',
          paymentMethod: 'aws-marketplace',
          link: 'active',
        });
        expect(after.cancellation).toMatchObject({ abortedBy: 'operator' });
        expect(returned.phase).toBe('active');
        await env.sleep(GRACE_MS + DAY_MS);
        await waitsIn(ref, 'active');
        await linkStatusIs(ref, alice, 'linked');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
    });

    it('a resubscription in the middle of a deleteNow answers the update, and the next cancellation gets its full grace period', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await deploymentsOf(mongo.db).insertOne({
        _id: `${alice}-prod2`,
        accountId: alice,
        name: 'prod2',
        plan: 'standard',
        state: 'running',
        createdAt: new Date(),
      });
      let release: () => void = () => undefined;
      const firstDeletion = new Promise<void>((started) => {
        hooks.deleteDeploymentIfStillStopped = async () => {
          delete hooks.deleteDeploymentIfStillStopped;
          started();
          await new Promise<void>((resolve) => (release = resolve));
        };
      });
      await withWorker(async (target) => {
        const grace = await cancelled(target, ref, alice);
        expect(grace.cancellation!.stopped.map((d) => d.name)).toEqual(['prod', 'prod2']);
        const deleting = handleOf(ref)
          .executeUpdate(deleteNowUpdate)
          .then(
            (record) => ({ returned: record.deleted.map((d) => d.id) }),
            (error: Error) => ({ failed: error.message }),
          );
        // The buyer resubscribes while the first deployment is being deleted.
        await firstDeletion;
        try {
          await send(target, ref, licensed(ref, 'subscribe-success', 3000));
          await eventually(
            () => viewOf(ref),
            (v) => v.aws.status === 'subscribed',
          );
        } finally {
          release();
        }
        await waitsIn(ref, 'active');
        const deleteNow = await Promise.race([
          deleting,
          new Promise((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000)),
        ]);
        expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', prod2: 'stopped', old: 'stopped' });

        // Later the buyer restarts prod2, and cancels again: a new grace period, nothing deleted at once.
        await deploymentsOf(mongo.db).updateOne(
          { _id: `${alice}-prod2` },
          { $set: { state: 'running' }, $unset: { stoppedBy: '', stoppedAt: '' } },
        );
        await send(target, ref, event('unsubscribe-success', 4000));
        const second = await waitsIn(ref, ['grace-period', 'deleted']);
        const prod2 = (await states(alice)).prod2;
        expect({ deleteNow, phase: second.phase, prod2 }).toEqual({
          deleteNow: { returned: [`${alice}-prod`] },
          phase: 'grace-period',
          prod2: 'stopped',
        });
      });
    });

    it('confirmUnsubscribed proceeds as if unsubscribe-success had arrived', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await link(target, ref, alice);
        await send(target, ref, event('unsubscribe-pending', 60));
        await waitsIn(ref, 'awaiting-unsubscribe-success');
        // Past the 6 hours AWS usually takes: still waiting (metered), and an operator may confirm.
        await env.sleep(7 * HOUR_MS);
        await waitsIn(ref, 'awaiting-unsubscribe-success');
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
        await handleOf(ref).executeUpdate(confirmUnsubscribedUpdate);
        await waitsIn(ref, 'grace-period');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
    });

    it('refuses operator updates in the wrong phase with a clear message, not retried', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await link(target, ref, alice);
        const handle = handleOf(ref);
        const inActive = /is only possible in .+; the subscription is "active"/;
        await expectRefused(handle.executeUpdate(retrySyncUpdate), inActive);
        await expectRefused(handle.executeUpdate(cancelLinkUpdate), inActive);
        await expectRefused(handle.executeUpdate(confirmUnsubscribedUpdate), inActive);
        await expectRefused(handle.executeUpdate(deleteNowUpdate), inActive);
        await expectRefused(handle.executeUpdate(abortDeletionUpdate), inActive);
        await expectRefused(handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 5 }] }), inActive);
        await expectRefused(
          handle.executeUpdate(restoreSubscriptionUpdate, { args: [{ reason: 'a good reason' }] }),
          inActive,
        );

        await send(target, ref, event('unsubscribe-pending', 60));
        await waitsIn(ref, 'awaiting-unsubscribe-success');
        await expectRefused(
          handle.executeUpdate(deleteNowUpdate),
          /deleteNow is only possible in grace-period; the subscription is "awaiting-unsubscribe-success"/,
        );
        await expectRefused(
          handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 5 }] }),
          /extendGracePeriod is only possible in grace-period; the subscription is "awaiting-unsubscribe-success"/,
        );

        // Nothing changed, nothing failed, and no refused update reached the history.
        const view = await waitsIn(ref, 'awaiting-unsubscribe-success');
        expect(view.cancellation?.deletionDueAt).toBeUndefined();
        await expectNoTaskFailures(ref);
        const { events } = await handle.fetchHistory();
        expect(
          events!
            .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
            .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name),
        ).toEqual(['requestLink']);
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
    });
  });

  describe('failures', () => {
    it('a deployment the platform refuses to stop is recorded as failed; the cancellation goes on and the run does not fail', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      hooks.stopDeployment = (input: { deploymentId: string }) => {
        if (input.deploymentId === `${alice}-prod`)
          throw ApplicationFailure.nonRetryable(
            'platform API POST deployments/x/stop answered 403',
            'DeploymentRequestRefused',
          );
      };
      await withWorker(async (target) => {
        const view = await cancelled(target, ref, alice);
        expect(view.cancellation!.stopped).toEqual([{ id: `${alice}-prod`, name: 'prod', outcome: 'failed' }]);
        expect((await handleOf(ref).describe()).status.name).toBe('RUNNING');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
    });

    it('a step that fails beyond its retries waits, visible, for retryNow, which only a failure allows', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      let refuse = true;
      hooks.endMarketplaceBilling = () => {
        if (refuse) throw ApplicationFailure.nonRetryable('the store refused the write', 'StoreRefused');
      };
      await withWorker(async (target) => {
        await link(target, ref, alice);
        await expectRefused(
          handleOf(ref).executeUpdate(retryNowUpdate),
          /retryNow is only possible after a step failed/,
        );
        await send(target, ref, event('unsubscribe-success', 61));
        const stuck = await eventually(
          () => handleOf(ref).query(subscriptionStateQuery),
          (v) => v.failure !== undefined,
        );
        expect(stuck).toMatchObject({
          phase: 'stopping',
          failure: { phase: 'stopping', message: 'the store refused the write' },
        });
        expect((await handleOf(ref).describe()).status.name).toBe('RUNNING');
        refuse = false;
        const after = await handleOf(ref).executeUpdate(retryNowUpdate);
        expect(after.failure).toBeUndefined();
        await waitsIn(ref, 'grace-period');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
    });
  });

  describe('resubscription', () => {
    it('a subscribe-success sent after the unsubscribe, during the grace period: nothing deleted, billing restored, active', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await cancelled(target, ref, alice);
        await env.sleep(2 * DAY_MS);
        await waitsIn(ref, 'grace-period');
        await send(target, ref, licensed(ref, 'subscribe-success', 3000));
        const active = await waitsIn(ref, 'active');
        expect(active.cancellation).toMatchObject({ abortedBy: 'resubscription', deleted: [] });
        expect(active.cancellation!.deletionDueAt).toBeUndefined();
        expect(active.history.at(-1)).toMatchObject({ action: 'subscribe-success', verdict: 'resubscribed' });
        await linkStatusIs(ref, alice, 'linked');
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
        expect(await linkOf(ref)).toMatchObject({ state: 'active' });
        // Well past the old due date: nothing was deleted.
        await env.sleep(2 * DAY_MS);
        await waitsIn(ref, 'active');
      });
      // Restarting the stopped deployment is the buyer's choice.
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
      expect(calls.deleteDeploymentIfStillStopped).toBeUndefined();
    });

    it('an old subscribe-success replayed during the grace period is stale: deleted at the end, payment method stays none', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      const original = event('subscribe-success', 0);
      await withWorker(async (target) => {
        await cancelled(target, ref, alice, original);
        // Sent before the unsubscribe (another id, as a second delivery path would give it), and the original again.
        const replayed = event('subscribe-success', 30);
        await send(target, ref, replayed);
        await send(target, ref, original);
        const grace = await eventually(
          () => viewOf(ref),
          (v) => v.history.some((h) => h.id === replayed.id),
        );
        expect(grace.phase).toBe('grace-period');
        expect(grace.history.find((h) => h.id === replayed.id)).toMatchObject({ verdict: 'stale' });
        expect(grace.history.filter((h) => h.id === original.id)).toHaveLength(1);
        expect(grace.aws.status).toBe('unsubscribed');
        expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });

        await env.sleep(GRACE_MS + HOUR_MS);
        await waitsIn(ref, 'deleted');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
      expect(await linkOf(ref)).toMatchObject({ state: 'cancelled' });
      expect(calls.restoreMarketplaceBilling).toBeUndefined();
    });

    it('a subscribe-success instead of unsubscribe-success keeps everything running and billed', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await link(target, ref, alice);
        await send(target, ref, event('unsubscribe-pending', 60));
        await waitsIn(ref, 'awaiting-unsubscribe-success');
        await send(target, ref, event('subscribe-success', 90));
        await waitsIn(ref, 'active');
      });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
      expect(await linkOf(ref)).toMatchObject({ state: 'active' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
    });
  });

  describe('order and duplicates', () => {
    it('gives the same event id one effect (seen once in the history)', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      const success = event('subscribe-success', 0);
      const pending = event('unsubscribe-pending', 60);
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        for (let i = 0; i < 3; i += 1) await send(target, ref, success);
        await waitsIn(ref, 'active');
        for (let i = 0; i < 2; i += 1) await send(target, ref, pending);
        const view = await waitsIn(ref, 'awaiting-unsubscribe-success');
        expect(view.history.filter((h) => h.id === success.id)).toEqual([
          expect.objectContaining({ verdict: 'subscribed' }),
        ]);
        expect(view.history.filter((h) => h.id === pending.id)).toEqual([
          expect.objectContaining({ verdict: 'leaving' }),
        ]);
        expect(view.seen.filter((id) => id === success.id)).toHaveLength(1);
        // Redelivered once more, later: still nothing.
        await send(target, ref, success);
        await send(target, ref, pending);
        expect((await waitsIn(ref, 'awaiting-unsubscribe-success')).history).toHaveLength(2);
      });
      expect(calls.activateSubscription).toBe(1);
      expect(calls.meterCustomerNow).toBe(1);
      expect(calls.markCancellationPending).toBe(1);
    });

    it('unsubscribe-success while the link is only reserved releases it; a later subscribe-success sent earlier does not activate', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await requestLink(target, ref, alice);
        await waitsIn(ref, 'awaiting-aws');
        expect(await linkOf(ref)).toMatchObject({ state: 'reserved' });
        await send(target, ref, event('unsubscribe-success', 60));
        const ended = await waitsIn(ref, 'cancelled');
        expect(ended.owner).toBeUndefined();
        expect(await linkOf(ref)).toBeNull();
        expect(await statusOf(ref, alice)).toMatchObject({ phase: 'cancelled' });

        await send(target, ref, event('subscribe-success', 30));
        const still = await eventually(
          () => viewOf(ref),
          (v) => v.history.length === 2,
        );
        expect(still.history.at(-1)).toMatchObject({ action: 'subscribe-success', verdict: 'stale' });
        expect(await waitsIn(ref, 'cancelled')).toMatchObject({ aws: { status: 'unsubscribed' } });
        // And a request now is told the subscription ended.
        expect(await requestLink(target, ref, alice)).toMatchObject({ phase: 'refused', refusal: 'SubscriptionEnded' });
      });
      expect(calls.activateSubscription).toBeUndefined();
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
      expect(await accountOf(alice)).not.toHaveProperty('marketplace');
      expect(await linkOf(ref)).toBeNull();
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'running', old: 'stopped' });
    });
  });

  describe('runs', () => {
    // On the dev server, in real time: a short grace period stands in for the 3 days.
    it('continues as new after every step (maxHistoryEvents 1) and carries the whole state across', async () => {
      const ref = await newSubscription();
      const [alice, bob] = [await newAccount(), await newAccount()];
      const success = event('subscribe-success', 0);
      const runs = new Set<string>();
      const step = async (phase: SubscriptionPhase) => {
        const view = await waitsIn(ref, phase);
        runs.add((await handleOf(ref).describe()).runId);
        return view;
      };
      await withDevServerWorker(
        async (target) => {
          expect(await requestLink(target, ref, alice)).toMatchObject({ phase: 'waiting-for-aws' });
          await step('awaiting-aws');
          await send(target, ref, success);
          await step('active');
          await linkStatusIs(ref, alice, 'linked');
          expect(await requestLink(target, ref, bob)).toMatchObject({
            phase: 'refused',
            refusal: 'CustomerLinkedToAnotherAccount',
          });
          await step('active');
          // The id seen two runs ago is still known.
          await send(target, ref, success);
          await send(target, ref, event('unsubscribe-pending', 60));
          const pending = await step('awaiting-unsubscribe-success');
          expect(pending.cancellation?.finalMetering).toMatchObject({ sent: expect.any(Number) });
          await send(target, ref, event('unsubscribe-success', 61));
          const grace = await step('grace-period');
          expect(await states(alice)).toEqual({ trial: 'running', prod: 'stopped', old: 'stopped' });
          const extended = await handleOf(ref).executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 0.002 }] });
          expect(Date.parse(extended.deletionDueAt!)).toBe(
            Date.parse(grace.cancellation!.deletionDueAt!) + 0.002 * HOUR_MS,
          );
          await step('grace-period');
          const done = await step('deleted');
          expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(extended.deletionDueAt!));
          expect(done.cancellation!.deleted).toEqual([{ id: `${alice}-prod`, outcome: 'deleted' }]);
          expect(done.history.filter((h) => h.id === success.id)).toHaveLength(1);
          expect(done.owner).toBe(alice);
          const { events } = await handleOf(ref).fetchHistory();
          expect(events!.length).toBeLessThan(60);
        },
        { maxHistoryEvents: 1, gracePeriodMs: 4000 },
      );
      expect(runs.size).toBeGreaterThanOrEqual(5);
      expect(calls.activateSubscription).toBe(1);
      expect(calls.claimSubscription).toBe(1);
      expect(calls.meterCustomerNow).toBe(1);
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'none' });
      expect(await accountOf(bob)).toMatchObject({ paymentMethod: 'none' });
    });

    it('answers a link request that arrives while a run saves its state before continuing as new', async () => {
      const ref = await newSubscription();
      const [alice, bob] = [await newAccount(), await newAccount()];
      let hold: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        hooks.saveSubscription = async (...args: never[]) => {
          const [{ snapshot }] = args as unknown as [{ snapshot: SubscriptionSnapshot }];
          if (snapshot.phase !== 'active') return;
          delete hooks.saveSubscription;
          resolve();
          await new Promise<void>((release) => (hold = release));
        };
      });
      await withDevServerWorker(
        async (target) => {
          await requestLink(target, ref, alice);
          await waitsIn(ref, 'awaiting-aws');
          const before = (await handleOf(ref).describe()).runId;
          await send(target, ref, event('subscribe-success', 0));
          // Activated; the run now saves 'active' before it continues as new (maxHistoryEvents 1), slowly.
          await held;
          const asked = requestLink(target, ref, bob).then(
            (answer) => answer,
            (error: unknown) => error,
          );
          await eventually(
            () => viewOf(ref),
            (v) => v.pendingRequests === 1,
          );
          hold();
          const answer = await asked;
          const after = await eventually(
            async () => (await handleOf(ref).describe()).runId,
            (runId) => runId !== before,
            100,
          ).catch(() => before);
          const view = await viewOf(ref);
          // Leave nothing stuck on the shared dev server.
          if (view.pendingRequests > 0) await handleOf(ref).terminate('test: stuck before continue-as-new');
          expect({ answer, pendingRequests: view.pendingRequests, continuedAsNew: after !== before }).toEqual({
            answer: expect.objectContaining({
              accountId: bob,
              phase: 'refused',
              refusal: 'CustomerLinkedToAnotherAccount',
            }),
            pendingRequests: 0,
            continuedAsNew: true,
          });
        },
        { maxHistoryEvents: 1 },
      );
    });

    it('ends an idle run with its state saved; the next event starts a run from it (a resubscription after the deletion)', async () => {
      const ref = await newSubscription();
      const alice = await newAccount();
      await withWorker(async (target) => {
        await cancelled(target, ref, alice);
        await handleOf(ref).executeUpdate(deleteNowUpdate);
        await waitsIn(ref, 'deleted');
        const first = (await handleOf(ref).describe()).runId;
        // Ended and idle for 30 days: the run completes with what it saved.
        const result = await handleOf(ref).result();
        expect(result).toMatchObject({ phase: 'deleted', owner: alice });
        expect(await savedOf(ref)).toMatchObject({ phase: 'deleted', accountId: alice });

        await send(target, ref, licensed(ref, 'subscribe-success', 5000));
        const active = await waitsIn(ref, 'active');
        expect((await handleOf(ref).describe()).runId).not.toBe(first);
        expect(active.history.at(-1)).toMatchObject({ verdict: 'resubscribed' });
        await linkStatusIs(ref, alice, 'linked');
      });
      expect(await accountOf(alice)).toMatchObject({ paymentMethod: 'aws-marketplace' });
      expect(await linkOf(ref)).toMatchObject({ state: 'active' });
      expect(await states(alice)).toEqual({ trial: 'running', prod: 'deleted', old: 'stopped' });
    });
  });
});
