/**
 * The orders of events that used to leave billing or deployments wrong when a
 * subscription's life was split across two workflows (issue 11), each played
 * on the real stack: the API, the poller on moto with signed SNS envelopes and
 * EventBridge events, a worker on the Temporal dev server, FerretDB. Every
 * case ends with the billing state, the deployments and the metering ledger.
 */
import { accountsOf, deploymentsOf } from '../lib/store/accounts';
import { marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { ledgerOf } from '../lib/store/metering-ledger';
import { hourStart } from '../lib/store/usage';
import { enqueueBodies, eventBridgeBody, snsEnvelopeBody, type SnsSigner } from '../sandbox/notification-bodies';
import type { SandboxCustomer } from '../sandbox/store';
import { hourlyMetering } from '../workflows/metering/hourly-metering';
import { cancelLinkUpdate, deleteNowUpdate, subscriptionStateQuery } from '../domain/subscription-messages';
import type { SubscriptionPhase } from '../domain/subscription-model';
import { createSqsClient } from '../lib/aws';
import { marketplaceCustomersOf } from '../lib/store/marketplace';
import { refOfCustomer } from '../lib/store/subscription-lookup';
import { subscription } from '../workflows/subscription/subscription';
import { subscriptionWorkflowId } from '../domain/subscription-identity';
import { awsEventSignal } from '../domain/subscription-messages';
import { migrateLegacyWorkflows } from '../infra/migrate-legacy-workflows';
import { linkAccount, requestLinkSignal } from '../workflows/legacy/link-account';
import { registerNewBuyer, type RegisteredBuyer } from './helpers/buyer';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

jest.setTimeout(180_000);

let stack: LinkingStack;
let signer: SnsSigner;
const sqs = () => createSqsClient(testServers.aws());

beforeAll(async () => {
  stack = await startLinkingStack();
  signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
});
afterAll(() => stack?.stop());

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

type Buyer = RegisteredBuyer;

/** Subscribes on the sandbox, registers through the webhook and signs in; the link request is the test's to make. */
const registerBuyer = (awsAccountId?: string) => registerNewBuyer(stack, awsAccountId);

type LinkedBuyer = Buyer;

/** A second purchase by an AWS account that already has one. */
async function registerBuyerOf(awsAccountId: string): Promise<Buyer> {
  return registerBuyer(awsAccountId);
}

/** The workflow of a buyer's own license (an AWS account may hold several). */
async function licensedHandle(buyer: Buyer) {
  const customer = await sandboxCustomer(buyer);
  return stack.temporal.workflow.getHandle(
    subscriptionWorkflowId({
      awsAccountId: buyer.awsAccountId,
      productCode: customer.productCode,
      licenseArn: customer.licenseArn,
    }),
  );
}

/** A buyer whose link request was answered; with `sync`, AWS's subscribe-success made it active. */
async function linkNewBuyer(options: { sync?: boolean } = {}): Promise<Buyer> {
  const buyer = await registerBuyer();
  const answer = await buyer.requestLink();
  expect(answer.status).toBe(202);
  expect(answer.json()).toMatchObject({ phase: 'waiting-for-aws', accountId: buyer.accountId });
  if (options.sync !== false) {
    await deliver(await envelope(buyer, 'subscribe-success', minutesAgo(0.1)));
    await phaseBecomes(buyer, 'active');
  }
  return buyer;
}

async function sandboxCustomer(buyer: LinkedBuyer): Promise<SandboxCustomer> {
  const customer = (
    await stack.sandbox.control<SandboxCustomer>('GET', `/control/customers/${buyer.sandboxCustomerId}`)
  ).body;
  return { ...customer, createdAt: new Date(customer.createdAt) };
}

/** Puts bodies on the queue AWS (or a DLQ redrive) would: EventBridge events on the rule's queue, envelopes on the SNS queue. */
async function deliver(...bodies: string[]): Promise<void> {
  const client = sqs();
  const isEvent = (body: string) => 'detail-type' in (JSON.parse(body) as object);
  await enqueueBodies(
    client,
    stack.aws.queueUrl,
    bodies.filter((body) => !isEvent(body)),
  );
  await enqueueBodies(client, stack.aws.eventBridgeQueueUrl, bodies.filter(isEvent));
  client.destroy();
}

/** A signed SNS envelope with a chosen send time and, for a redelivery, a chosen MessageId. */
async function envelope(buyer: LinkedBuyer, action: string, sentAt: Date, messageId?: string): Promise<string> {
  return snsEnvelopeBody(await sandboxCustomer(buyer), action, signer, messageId, sentAt);
}

/** The buyer's subscription workflow, found the way an operator would: by the AWS account. */
async function subscriptionHandle(buyer: Pick<Buyer, 'awsAccountId'>) {
  const known = await eventually(
    () => marketplaceCustomersOf(stack.mongo.db).findOne({ awsAccountId: buyer.awsAccountId }),
    (d) => d !== null,
  );
  return stack.temporal.workflow.getHandle(subscriptionWorkflowId(refOfCustomer(known!)));
}

async function phaseBecomes(buyer: Buyer, phase: SubscriptionPhase) {
  const handle = await subscriptionHandle(buyer);
  return eventually(
    () => handle.query(subscriptionStateQuery),
    (state) => state.phase === phase,
    60_000,
  );
}

async function addDeployments(accountId: string) {
  const now = new Date();
  await deploymentsOf(stack.mongo.db).insertMany([
    { _id: uniqueName('dep'), accountId, name: 'broker-prod', plan: 'standard', state: 'running', createdAt: now },
    {
      _id: uniqueName('dep'),
      accountId,
      name: 'broker-trial',
      plan: 'trial',
      state: 'running',
      trialEndsAt: new Date(Date.now() + 86_400_000),
      createdAt: now,
    },
  ]);
}

const deploymentStates = async (accountId: string) =>
  Object.fromEntries((await deploymentsOf(stack.mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]));

const paymentMethodOf = async (accountId: string) =>
  (await accountsOf(stack.mongo.db).findOne({ _id: accountId }))!.paymentMethod;

/** Meters the current hour (an operator's re-run) and returns the ledger entries of this AWS account. */
async function meterNow(awsAccountId: string) {
  const hour = hourStart(Date.now()).toISOString();
  await stack.temporal.workflow.execute(hourlyMetering, {
    taskQueue: stack.taskQueue,
    workflowId: uniqueName('meter'),
    args: [{ hours: [hour] }],
  });
  return ledgerOf(stack.mongo.db)
    .find({ awsAccountId, hour: new Date(hour) })
    .toArray();
}

async function cancelOnAws(buyer: LinkedBuyer, sentAt = new Date()) {
  await deliver(
    await envelope(buyer, 'unsubscribe-pending', sentAt),
    await envelope(buyer, 'unsubscribe-success', new Date(sentAt.getTime() + 1000)),
  );
  await phaseBecomes(buyer, 'grace-period');
}

describe('one owner per subscription: orders of events on the real stack', () => {
  it('1. a redelivered or reordered old subscribe-success, or an amendment, never revives a cancelled subscription', async () => {
    const buyer = await linkNewBuyer();
    await addDeployments(buyer.accountId);
    const original = (await notificationsOf(stack.mongo.db).findOne({
      awsAccountId: buyer.awsAccountId,
      action: 'subscribe-success',
    }))!;
    await cancelOnAws(buyer);
    expect(await deploymentStates(buyer.accountId)).toEqual({ 'broker-prod': 'stopped', 'broker-trial': 'running' });

    // The original envelope again (same MessageId and send time: a DLQ redrive), the same message under a new id
    // (a backlog reorder), and an EventBridge amendment sent after the end.
    const customer = await sandboxCustomer(buyer);
    const amended = eventBridgeBody(customer, 'Purchase Agreement Amended - Proposer');
    await deliver(
      await envelope(buyer, 'subscribe-success', original.sentAt!, original._id),
      await envelope(buyer, 'subscribe-success', original.sentAt!),
      amended.body,
    );
    const handle = await subscriptionHandle(buyer);
    const state = await eventually(
      () => handle.query(subscriptionStateQuery),
      (s) => s.history.some((e) => e.amendment),
    );
    expect(state.phase).toBe('grace-period');
    expect(state.history.filter((e) => e.action === 'subscribe-success').map((e) => e.verdict)).toEqual([
      'subscribed',
      'stale',
      'stale',
    ]);
    expect(await paymentMethodOf(buyer.accountId)).toBe('none');
    expect((await marketplaceLinksOf(stack.mongo.db).findOne({ accountId: buyer.accountId }))!.state).toBe('cancelled');
    expect((await buyer.browser.get('/api/links/current')).json()).toMatchObject({ phase: 'cancelled' });

    // The operator deletes now; nothing of this customer is metered afterwards.
    const record = await handle.executeUpdate(deleteNowUpdate);
    expect(record.deleted.map((d) => d.outcome)).toEqual(['deleted']);
    expect(await deploymentStates(buyer.accountId)).toEqual({ 'broker-prod': 'deleted', 'broker-trial': 'running' });
    expect(await meterNow(buyer.awsAccountId)).toEqual([]);
  });

  it('2a. an unsubscribe while the link is only reserved ends it: billing never starts, even when subscribe-success arrives late', async () => {
    const buyer = await linkNewBuyer({ sync: false });
    await phaseBecomes(buyer, 'awaiting-aws');
    await deliver(await envelope(buyer, 'unsubscribe-success', minutesAgo(1)));
    await phaseBecomes(buyer, 'cancelled');
    // AWS's subscribe-success was sent before the unsubscribe and arrives after it.
    await deliver(await envelope(buyer, 'subscribe-success', minutesAgo(2)));
    const handle = await subscriptionHandle(buyer);
    const state = await eventually(
      () => handle.query(subscriptionStateQuery),
      (s) => s.history.length === 2,
    );
    expect(state.history.map((e) => e.verdict)).toEqual(['unsubscribed', 'stale']);
    expect(state.phase).toBe('cancelled');
    expect(await paymentMethodOf(buyer.accountId)).toBe('none');
    expect(await marketplaceLinksOf(stack.mongo.db).findOne({ accountId: buyer.accountId })).toBeNull();
    expect((await buyer.browser.get('/api/links/current')).json()).toMatchObject({ phase: 'cancelled' });
    expect(await meterNow(buyer.awsAccountId)).toEqual([]);
  });

  it('2b. an unsubscribe sent after subscribe-success but before our activation is honoured (AWS time, not our clock)', async () => {
    const buyer = await linkNewBuyer({ sync: false });
    await addDeployments(buyer.accountId);
    // subscribe-success sent 10 minutes ago reaches us only now; the buyer left 5 minutes ago.
    await deliver(await envelope(buyer, 'subscribe-success', minutesAgo(10)));
    await phaseBecomes(buyer, 'active');
    await deliver(await envelope(buyer, 'unsubscribe-pending', minutesAgo(5)));
    await phaseBecomes(buyer, 'awaiting-unsubscribe-success');
    const ledger = await ledgerOf(stack.mongo.db).find({ awsAccountId: buyer.awsAccountId }).toArray();
    expect(ledger.length).toBeGreaterThan(0);
    await deliver(await envelope(buyer, 'unsubscribe-success', minutesAgo(4)));
    await phaseBecomes(buyer, 'grace-period');
    expect(await paymentMethodOf(buyer.accountId)).toBe('none');
    expect(await deploymentStates(buyer.accountId)).toEqual({ 'broker-prod': 'stopped', 'broker-trial': 'running' });
    // The final metering froze this hour's records; a re-run sends nothing new.
    const before = ledger.length;
    await meterNow(buyer.awsAccountId);
    expect(await ledgerOf(stack.mongo.db).countDocuments({ awsAccountId: buyer.awsAccountId })).toBe(before);
  });

  it('3. a late subscribe-success on an active link does not re-run activation, even after the account gained a card', async () => {
    const buyer = await linkNewBuyer();
    await accountsOf(stack.mongo.db).updateOne(
      { _id: buyer.accountId },
      { $set: { creditCard: { brand: 'visa', last4: '4242' } } },
    );
    await deliver(await envelope(buyer, 'subscribe-success', new Date()));
    const handle = await subscriptionHandle(buyer);
    const state = await eventually(
      () => handle.query(subscriptionStateQuery),
      (s) => s.history.filter((e) => e.action === 'subscribe-success').length === 2,
    );
    expect(state.phase).toBe('active');
    expect(state.history.at(-1)!.verdict).toBe('no-change');
    expect((await buyer.browser.get('/api/links/current')).json()).toMatchObject({ phase: 'linked' });
    expect(await paymentMethodOf(buyer.accountId)).toBe('aws-marketplace');
    expect((await meterNow(buyer.awsAccountId)).length).toBeGreaterThan(0);
  });

  it('4. cancelLink is refused once the link is active, and on a pending link answers after the reservation is gone', async () => {
    const active = await linkNewBuyer();
    const activeHandle = await subscriptionHandle(active);
    await expect(activeHandle.executeUpdate(cancelLinkUpdate)).rejects.toMatchObject({
      cause: {
        message: 'cancelLink is only possible in awaiting-aws or sync-timed-out; the subscription is "active"',
        type: 'InvalidPhase',
        nonRetryable: true,
      },
    });
    expect(await paymentMethodOf(active.accountId)).toBe('aws-marketplace');

    const pending = await linkNewBuyer({ sync: false });
    const handle = await subscriptionHandle(pending);
    await phaseBecomes(pending, 'awaiting-aws');
    const after = await handle.executeUpdate(cancelLinkUpdate);
    expect(after).toMatchObject({ phase: 'registered' });
    expect(after.owner).toBeUndefined();
    expect(await marketplaceLinksOf(stack.mongo.db).findOne({ accountId: pending.accountId })).toBeNull();
    expect((await pending.browser.get('/api/links/current')).json()).toMatchObject({
      phase: 'refused',
      refusal: 'LinkCancelled',
    });
    expect(await meterNow(pending.awsAccountId)).toEqual([]);
  });

  it('5. a link request or a notification that arrives while a run is ending is never dropped', async () => {
    const buyer = await registerBuyer();
    const known = (await marketplaceCustomersOf(stack.mongo.db).findOne({ awsAccountId: buyer.awsAccountId }))!;
    const ref = refOfCustomer(known);
    const workflowId = subscriptionWorkflowId(ref);
    // Started first by a notification, with a short idle time, so its runs end again and again during the test.
    const start = (id: string, action: 'subscribe-fail' | 'subscribe-success', sentAt: Date) =>
      stack.temporal.workflow.signalWithStart(subscription, {
        taskQueue: stack.taskQueue,
        workflowId,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        args: [{ ref, settings: { syncTimeoutMs: 60_000, gracePeriodMs: 60_000, idleMs: 600 } }],
        signal: awsEventSignal,
        signalArgs: [{ id, action, sentAt: sentAt.toISOString() }],
      });
    const ids: string[] = [];
    const lastRunStatus = async () => (await stack.temporal.workflow.getHandle(workflowId).describe()).status.name;
    for (let round = 0; round < 4; round++) {
      const id = uniqueName('evt');
      ids.push(id);
      await start(id, 'subscribe-fail', minutesAgo(60 - round));
      if (round % 2 === 0) {
        // The run ends idle; the next event starts a new run, which must carry everything the last one had.
        await eventually(lastRunStatus, (status) => status === 'COMPLETED');
      } else {
        // A second event inside the idle window: the run must not end with it unapplied.
        const second = uniqueName('evt');
        ids.push(second);
        await new Promise((resolve) => setTimeout(resolve, 450));
        await start(second, 'subscribe-fail', minutesAgo(50 - round));
      }
    }
    const answer = await buyer.requestLink();
    expect(answer.status).toBe(202);
    expect(answer.json()).toMatchObject({ phase: 'waiting-for-aws', paymentProblem: true });
    const state = await stack.temporal.workflow.getHandle(workflowId).query(subscriptionStateQuery);
    expect(state.history.map((e) => e.id)).toEqual(expect.arrayContaining(ids));
    expect(state.owner).toBe(buyer.accountId);
    const runs = [];
    for await (const run of stack.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
      runs.push(run.status.name);
    expect(runs.filter((status) => status === 'COMPLETED').length).toBeGreaterThan(0);
    await deliver(await envelope(buyer, 'subscribe-success', minutesAgo(1)));
    await phaseBecomes(buyer, 'active');
    expect(await paymentMethodOf(buyer.accountId)).toBe('aws-marketplace');
  });

  it('moves a running legacy linkAccount onto the subscription workflow, which finishes the link', async () => {
    const buyer = await registerBuyer();
    // A customer registered before subscriptions were keyed by license: stored under its account and product.
    const customers = marketplaceCustomersOf(stack.mongo.db);
    const resolved = (await customers.findOne({ awsAccountId: buyer.awsAccountId }))!;
    const legacyKey = `${resolved.awsAccountId}:${resolved.productCode}`;
    await customers.deleteOne({ _id: resolved._id });
    await customers.insertOne({ ...resolved, _id: legacyKey });
    const customer = { awsAccountId: resolved.awsAccountId, productCode: resolved.productCode };
    const legacy = await stack.temporal.workflow.signalWithStart(linkAccount, {
      taskQueue: stack.taskQueue,
      workflowId: `link:${legacyKey}`,
      args: [{ customer, syncTimeoutMs: 60_000 }],
      signal: requestLinkSignal,
      signalArgs: [{ accountId: buyer.accountId }],
    });
    await eventually(
      () => marketplaceLinksOf(stack.mongo.db).findOne({ _id: legacyKey }),
      (link) => link?.state === 'reserved',
    );

    const moved = await migrateLegacyWorkflows({
      temporal: stack.temporal,
      db: stack.mongo.db,
      taskQueue: stack.taskQueue,
      settings: { syncTimeoutMs: 60_000, gracePeriodMs: 60_000 },
    });
    expect(moved).toContain(`link:${legacyKey} → subscription:${legacyKey}`);
    expect((await legacy.describe()).status.name).toBe('TERMINATED');
    const handle = stack.temporal.workflow.getHandle(`subscription:${legacyKey}`);
    expect(
      await eventually(
        () => handle.query(subscriptionStateQuery),
        (s) => s.phase === 'awaiting-aws',
      ),
    ).toMatchObject({ owner: buyer.accountId });
    // Running it again moves nothing.
    expect(
      await migrateLegacyWorkflows({
        temporal: stack.temporal,
        db: stack.mongo.db,
        taskQueue: stack.taskQueue,
        settings: { syncTimeoutMs: 60_000, gracePeriodMs: 60_000 },
      }),
    ).toEqual([]);

    await deliver(await envelope(buyer, 'subscribe-success', minutesAgo(0.1)));
    await eventually(
      () => handle.query(subscriptionStateQuery),
      (s) => s.phase === 'active',
    );
    expect(await paymentMethodOf(buyer.accountId)).toBe('aws-marketplace');
    expect((await marketplaceLinksOf(stack.mongo.db).findOne({ _id: legacyKey }))!.state).toBe('active');
    expect((await meterNow(buyer.awsAccountId)).length).toBeGreaterThan(0);

    // Setting up the same purchase again keeps its key: no second subscription for the same license.
    const token = await stack.sandbox.control<{ token: string }>(
      'POST',
      `/control/customers/${buyer.sandboxCustomerId}/tokens`,
      {},
    );
    const again = await buyer.browser.postForm('/marketplace/register', {
      'x-amzn-marketplace-token': token.body.token,
    });
    expect(again.status).toBe(303);
    expect(await customers.countDocuments({ awsAccountId: buyer.awsAccountId })).toBe(1);
    const code = new URL(again.headers.get('location')!, 'http://x').searchParams.get('link')!;
    const answer = await buyer.browser.postJson('/api/links', { linkCode: code });
    expect([answer.status, answer.json()]).toMatchObject([202, { phase: 'linked', accountId: buyer.accountId }]);
  });

  it('lets an account whose subscription ended link a new purchase of the product', async () => {
    const first = await linkNewBuyer();
    await cancelOnAws(first);
    // The same buyer buys again: a new license, a new registration, signed in as the same platform account.
    const created = await stack.sandbox.control<{ customer: { _id: string }; token: string }>(
      'POST',
      '/control/customers',
      { customerAwsAccountId: first.awsAccountId },
    );
    const registered = await first.browser.postForm('/marketplace/register', {
      'x-amzn-marketplace-token': created.body.token,
    });
    const location = new URL(registered.headers.get('location')!, 'http://x');
    const code = (location.searchParams.get('link') ??
      new URL(decodeURIComponent(location.searchParams.get('next')!), 'http://x').searchParams.get('link'))!;
    const answer = await first.browser.postJson('/api/links', { linkCode: code });
    expect([answer.status, answer.json()]).toMatchObject([
      202,
      { phase: 'waiting-for-aws', accountId: first.accountId },
    ]);
    const second: Buyer = { ...first, sandboxCustomerId: created.body.customer._id };
    await deliver(eventBridgeBody(await sandboxCustomer(second), 'Purchase Agreement Created - Proposer').body);
    await eventually(
      () => licensedHandle(second).then((h) => h.query(subscriptionStateQuery)),
      (s) => s.phase === 'active',
    );
    expect(await paymentMethodOf(first.accountId)).toBe('aws-marketplace');
    // The first purchase's cancellation goes on: its grace period still runs, and its deployments stay stopped.
    expect((await (await subscriptionHandle(first)).query(subscriptionStateQuery)).phase).toBe('grace-period');
  });

  it('two concurrent agreements of one AWS account are two subscriptions: linked to two accounts, metered and cancelled separately', async () => {
    const first = await linkNewBuyer();
    // A second purchase of the same product by the same AWS account: its own license, its own registration.
    const second = await registerBuyerOf(first.awsAccountId);
    expect((await second.requestLink()).status).toBe(202);
    const [one, two] = await Promise.all([subscriptionHandle(first), licensedHandle(second)]);
    expect(one.workflowId).not.toBe(two.workflowId);
    // SNS cannot tell the two apart; EventBridge names the license.
    await deliver(eventBridgeBody(await sandboxCustomer(second), 'Purchase Agreement Created - Proposer').body);
    await eventually(
      () => two.query(subscriptionStateQuery),
      (s) => s.phase === 'active',
    );
    expect([await paymentMethodOf(first.accountId), await paymentMethodOf(second.accountId)]).toEqual([
      'aws-marketplace',
      'aws-marketplace',
    ]);
    const ledger = await meterNow(first.awsAccountId);
    const licenses = new Set(ledger.map((entry) => entry.licenseArn));
    expect(licenses.size).toBe(2);

    // The second purchase ends (EventBridge, by license); the first keeps paying.
    await deliver(eventBridgeBody(await sandboxCustomer(second), 'Purchase Agreement Ended - Proposer').body);
    await eventually(
      () => two.query(subscriptionStateQuery),
      (s) => s.phase === 'awaiting-unsubscribe-success',
    );
    await deliver(eventBridgeBody(await sandboxCustomer(second), 'License Deprovisioned - Manufacturer').body);
    await eventually(
      () => two.query(subscriptionStateQuery),
      (s) => s.phase === 'grace-period',
    );
    expect((await one.query(subscriptionStateQuery)).phase).toBe('active');
    expect([await paymentMethodOf(first.accountId), await paymentMethodOf(second.accountId)]).toEqual([
      'aws-marketplace',
      'none',
    ]);
  });
});
