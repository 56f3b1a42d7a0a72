/**
 * The linkAccount workflow on the time-skipping server, with its real
 * activities on the real store. Every case starts the workflow the way
 * production does (signalWithStart from lib/linking-client) and checks what
 * the pages read: the persisted status and the account's payment method.
 */
import { randomInt } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createLinkingActivities } from '../activities/linking';
import { signalAwsNotification, signalLinkRequest, type LinkWorkflowTarget } from '../lib/linking-client';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { accountsOf, type AccountDoc } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { linkStatusesOf } from '../lib/store/link-status';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { linkWorkflowId } from '../workflows/ids';
import { cancelLinkUpdate, linkStateQuery, retrySyncUpdate, type LinkOutcome } from '../workflows/link-account';
import type { AwsCustomer, LinkStatus } from '../workflows/link-model';
import { testServers, uniqueName } from './helpers/test-env';
import { createTimeSkippingEnv, eventually, withTestWorker } from './helpers/time-skipping';

const SYNC_TIMEOUT_MS = 10 * 60_000;

describe('linkAccount workflow', () => {
  let env: TestWorkflowEnvironment;
  let mongo: MongoHandle;
  let calls: Record<string, number>;
  let activities: ReturnType<typeof createLinkingActivities>;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('link-wf'));
    await ensureIndexes(mongo.db);
    // The real activities, counted, so duplicates can be shown to have one effect.
    const real = createLinkingActivities({ db: mongo.db });
    activities = Object.fromEntries(
      Object.entries(real).map(([name, fn]) => [
        name,
        (...args: unknown[]) => ((calls[name] = (calls[name] ?? 0) + 1), (fn as (...a: unknown[]) => unknown)(...args)),
      ]),
    ) as typeof real;
  });
  afterAll(async () => {
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });
  // One test server per test: time skipping is global to a server, and a workflow left waiting by one test
  // (its worker gone) would hold the clock for the next.
  beforeEach(async () => {
    calls = {};
    env = await createTimeSkippingEnv();
  });
  afterEach(async () => {
    await env?.teardown();
  });

  const newCustomer = (): AwsCustomer => ({ awsAccountId: String(randomInt(1e11, 1e12 - 1)), productCode: 'prod-test' });
  const newAccount = async (fields: Partial<AccountDoc> = {}): Promise<string> => {
    const _id = uniqueName('acct');
    await accountsOf(mongo.db).insertOne({ _id, email: `${_id}@example.com`, name: _id, paymentMethod: 'none', createdAt: new Date(), ...fields });
    return _id;
  };
  const statusOf = (customer: AwsCustomer, accountId: string) =>
    linkStatusesOf(mongo.db).findOne({ accountId, awsAccountId: customer.awsAccountId }) as Promise<LinkStatus | null>;
  const phaseIs = (customer: AwsCustomer, accountId: string, phase: LinkStatus['phase']) =>
    eventually(() => statusOf(customer, accountId), (s) => s?.phase === phase);

  const withWorker = <T>(run: (target: LinkWorkflowTarget) => Promise<T>, syncTimeoutMs = SYNC_TIMEOUT_MS): Promise<T> =>
    withTestWorker(env, activities, (taskQueue) => run({ temporal: env.client, taskQueue, syncTimeoutMs }));
  /** A link request, then the moment the account holds the reservation and waits for AWS. */
  const claim = async (target: LinkWorkflowTarget, customer: AwsCustomer, accountId: string) => {
    await signalLinkRequest(target, customer, accountId);
    return phaseIs(customer, accountId, 'waiting-for-aws');
  };
  const handleOf = (customer: AwsCustomer) => env.client.workflow.getHandle(linkWorkflowId(customer));
  const resultOf = (customer: AwsCustomer) => handleOf(customer).result() as Promise<LinkOutcome>;
  const success = (id = uniqueName('msg')) => ({ messageId: id, action: 'subscribe-success' as const });
  const failure = (id = uniqueName('msg')) => ({ messageId: id, action: 'subscribe-fail' as const });

  it('links when subscribe-success arrives after the link', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    await withWorker(async (target) => {
      const waiting = await claim(target, customer, alice);
      expect(waiting?.message).toMatch(/Waiting for AWS/);
      expect(await accountsOf(mongo.db).findOne({ _id: alice })).toMatchObject({ paymentMethod: 'none' });
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(await accountsOf(mongo.db).findOne({ _id: alice })).toMatchObject({
      paymentMethod: 'aws-marketplace',
      marketplace: { awsAccountId: customer.awsAccountId, productCode: customer.productCode },
    });
    expect(await statusOf(customer, alice)).toMatchObject({ phase: 'linked', message: expect.stringMatching(/AWS Marketplace Subscription/) });
    expect(await marketplaceLinksOf(mongo.db).findOne({ accountId: alice })).toMatchObject({ state: 'active' });
  });

  it('links when subscribe-success arrived before anyone asked to link', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    await withWorker(async (target) => {
      await signalAwsNotification(target, customer, success());
      const early = await eventually(() => handleOf(customer).query(linkStateQuery), (s) => s.synced);
      expect(early.status).toBe('awaiting-link');
      expect(early.owner).toBeUndefined();
      await signalLinkRequest(target, customer, alice);
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(await accountsOf(mongo.db).findOne({ _id: alice })).toMatchObject({ paymentMethod: 'aws-marketplace' });
  });

  it.each([
    ['a credit card on file', { paymentMethod: 'credit-card', creditCard: { brand: 'Visa', last4: '4242' } }, 'CreditCardOnFile'],
    ['Available Credits', { paymentMethod: 'available-credits', availableCredits: 100 }, 'UsesAvailableCredits'],
    [
      'a link to another Marketplace product',
      { paymentMethod: 'aws-marketplace', marketplace: { awsAccountId: '111111111111', productCode: 'other', linkedAt: new Date() } },
      'AccountAlreadyLinked',
    ],
  ] as const)('refuses an account with %s, once, and changes nothing', async (_case, fields, refusal) => {
    const customer = newCustomer();
    const account = await newAccount(fields as Partial<AccountDoc>);
    const before = await accountsOf(mongo.db).findOne({ _id: account });
    await withWorker(async (target) => {
      await signalLinkRequest(target, customer, account);
      expect(await resultOf(customer)).toEqual({ status: 'refused' });
    });
    expect(await statusOf(customer, account)).toMatchObject({ phase: 'refused', refusal });
    expect(await accountsOf(mongo.db).findOne({ _id: account })).toEqual(before);
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ accountId: account, awsAccountId: customer.awsAccountId })).toBe(0);
    // A refusal is a non-retryable failure: the check ran exactly once.
    expect(calls.checkEligibility).toBe(1);
  });

  it('refuses to link an AWS customer to a second platform account', async () => {
    const customer = newCustomer();
    const [alice, bob] = [await newAccount(), await newAccount()];
    await withWorker(async (target) => {
      await signalLinkRequest(target, customer, alice);
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
      // A later request starts a new run, which finds the link in the store.
      await signalLinkRequest(target, customer, bob);
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(await statusOf(customer, bob)).toMatchObject({ phase: 'refused', refusal: 'CustomerLinkedToAnotherAccount' });
    expect(await accountsOf(mongo.db).findOne({ _id: bob })).toMatchObject({ paymentMethod: 'none' });
  });

  it('refuses a platform account that already reserved another AWS customer (unique index)', async () => {
    const [first, second] = [newCustomer(), newCustomer()];
    const alice = await newAccount();
    await withWorker(async (target) => {
      await claim(target, first, alice);
      await signalLinkRequest(target, second, alice);
      expect(await resultOf(second)).toEqual({ status: 'refused' });
    });
    expect(await statusOf(second, alice)).toMatchObject({ phase: 'refused', refusal: 'AccountLinkPending' });
  });

  it('shows a payment problem on subscribe-fail, keeps waiting, and links on subscribe-success', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    await withWorker(async (target) => {
      await claim(target, customer, alice);
      await signalAwsNotification(target, customer, failure());
      const problem = await eventually(() => statusOf(customer, alice), (s) => s?.paymentProblem === true);
      expect(problem).toMatchObject({ phase: 'waiting-for-aws', message: 'AWS reported a payment problem; still waiting.' });
      expect(await handleOf(customer).query(linkStateQuery)).toMatchObject({ status: 'payment-problem', synced: false });
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(await statusOf(customer, alice)).toMatchObject({ phase: 'linked', paymentProblem: false });
  });

  it('ends the wait in sync-timed-out, refuses an early retry, and waits again after the operator retries', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    await withWorker(async (target) => {
      await claim(target, customer, alice);
      const handle = handleOf(customer);
      await expect(handle.executeUpdate(retrySyncUpdate)).rejects.toHaveProperty('cause.message', expect.stringMatching(/only allowed after the sync timed out/));

      await env.sleep(SYNC_TIMEOUT_MS + 60_000);
      const timedOut = await phaseIs(customer, alice, 'sync-timed-out');
      expect(timedOut?.message).toMatch(/has not confirmed/);
      expect(await handle.query(linkStateQuery)).toMatchObject({ status: 'sync-timed-out' });

      const retried = await handle.executeUpdate(retrySyncUpdate);
      expect(retried.status).toBe('waiting-for-aws');
      await phaseIs(customer, alice, 'waiting-for-aws');
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
  });

  it('lets an operator cancel a pending link, which frees the account for another subscription', async () => {
    const [stuck, next] = [newCustomer(), newCustomer()];
    const alice = await newAccount();
    await withWorker(async (target) => {
      await signalAwsNotification(target, stuck, failure());
      const handle = handleOf(stuck);
      await eventually(() => handle.query(linkStateQuery), (s) => s.paymentProblem);
      await expect(handle.executeUpdate(cancelLinkUpdate)).rejects.toHaveProperty('cause.message', expect.stringMatching(/needs a pending link/));

      await claim(target, stuck, alice);
      await handle.executeUpdate(cancelLinkUpdate);
      expect(await resultOf(stuck)).toEqual({ status: 'cancelled', accountId: alice });

      await signalLinkRequest(target, next, alice);
      await signalAwsNotification(target, next, success());
      expect(await resultOf(next)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(await statusOf(stuck, alice)).toMatchObject({ phase: 'refused', refusal: 'LinkCancelled' });
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ awsAccountId: stuck.awsAccountId })).toBe(0);
    expect(await accountsOf(mongo.db).findOne({ _id: alice })).toMatchObject({ marketplace: { awsAccountId: next.awsAccountId } });
  });

  it('checks the rules again when AWS confirms: a card added while waiting is kept and the link refused', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    await withWorker(async (target) => {
      await claim(target, customer, alice);
      await accountsOf(mongo.db).updateOne({ _id: alice }, { $set: { paymentMethod: 'credit-card', creditCard: { brand: 'Visa', last4: '1111' } } });
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'refused', accountId: alice });
    });
    expect(await accountsOf(mongo.db).findOne({ _id: alice })).toMatchObject({ paymentMethod: 'credit-card', creditCard: { last4: '1111' } });
    expect(await accountsOf(mongo.db).findOne({ _id: alice })).not.toHaveProperty('marketplace');
    expect(await statusOf(customer, alice)).toMatchObject({ phase: 'refused', refusal: 'CreditCardOnFile' });
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ awsAccountId: customer.awsAccountId })).toBe(0);
  });

  it('gives duplicate signals a single effect', async () => {
    const customer = newCustomer();
    const alice = await newAccount();
    const fail = failure();
    const ok = success();
    await withWorker(async (target) => {
      await Promise.all([signalLinkRequest(target, customer, alice), signalLinkRequest(target, customer, alice)]);
      await phaseIs(customer, alice, 'waiting-for-aws');
      for (const notification of [fail, fail, fail]) await signalAwsNotification(target, customer, notification);
      const state = await eventually(() => handleOf(customer).query(linkStateQuery), (s) => s.paymentProblem);
      expect(state.notifications).toHaveLength(1);
      for (const notification of [ok, ok, fail]) await signalAwsNotification(target, customer, notification);
      await signalLinkRequest(target, customer, alice).catch(() => undefined);
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: alice });
    });
    expect(calls.checkEligibility).toBe(1);
    expect(calls.reserveLink).toBe(1);
    expect(calls.activateMarketplaceBilling).toBe(1);
  });

  it('lets exactly one of two racing accounts link one AWS customer', async () => {
    const customer = newCustomer();
    const [alice, bob] = [await newAccount(), await newAccount()];
    await withWorker(async (target) => {
      await Promise.all([signalLinkRequest(target, customer, alice), signalLinkRequest(target, customer, bob)]);
      const decided = await eventually(
        async () => [await statusOf(customer, alice), await statusOf(customer, bob)],
        (both) => both.every((s) => s?.phase === 'waiting-for-aws' || s?.phase === 'refused'),
      );
      const phases = decided.map((s) => s!.phase).sort();
      expect(phases).toEqual(['refused', 'waiting-for-aws']);
      const winner = decided.find((s) => s!.phase === 'waiting-for-aws')!.accountId;
      const loser = winner === alice ? bob : alice;
      expect(decided.find((s) => s!.accountId === loser)).toMatchObject({ refusal: 'CustomerLinkedToAnotherAccount' });
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'linked', accountId: winner });
      expect(await accountsOf(mongo.db).findOne({ _id: loser })).toMatchObject({ paymentMethod: 'none' });
    });
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ awsAccountId: customer.awsAccountId })).toBe(1);
  });

  it('gives up waiting for a claim after the claim timeout', async () => {
    const customer = newCustomer();
    await withWorker(async (target) => {
      await signalAwsNotification(target, customer, success());
      expect(await resultOf(customer)).toEqual({ status: 'abandoned' });
    });
  });
});
