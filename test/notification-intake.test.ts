/**
 * Notification intake on the real servers: moto SQS, FerretDB, the Temporal
 * dev server and a worker. Bodies are enqueued exactly as AWS delivers them:
 * SNS envelopes signed with the sandbox's local certificate (which the poller
 * is configured to trust), raw deliveries, and EventBridge events.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReceiveMessageCommand, SendMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../lib/aws';
import { notificationsOf, unprocessedNotificationsOf } from '../lib/store/marketplace';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import {
  eventBridgeBody,
  rawMessageBody,
  snsEnvelopeBody,
  syntheticCustomer,
  type SnsSigner,
} from '../sandbox/notification-bodies';
import { signedEnvelope } from '../sandbox/sns-signing';
import { snsMessage } from '../sandbox/notifications';
import { DUPLICATE_WINDOW_MS, rawDeliveryId } from '../poller/raw-delivery-id';
import { ensureLocalAwsResources, queueDepth } from '../infra/servers';
import { createPollerMetrics, sumOfSeries } from '../poller/metrics';
import { SqsNotificationPoller } from '../poller/sqs-poller';
import { startLinkingStack, type LinkingStack } from './helpers/linking-stack';
import { eventIds, eventuallyState, registerSyntheticCustomer } from './helpers/subscription';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

let stack: LinkingStack;
let sqs: SQSClient;
let signer: SnsSigner;
let customers = 0;
/** A certificate URL the poller trusts but cannot fetch (nothing listens on port 1): not forged, only unavailable. */
const UNREACHABLE_CERT_URL = 'http://127.0.0.1:1/SimpleNotificationService-unreachable.pem';

beforeAll(async () => {
  // This queue has raw delivery switched on (the default is signed envelopes only); EventBridge events go to the rule's own queue.
  stack = await startLinkingStack({
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    poller: { formats: ['sns', 'sns-raw'], trustedCertUrls: [UNREACHABLE_CERT_URL] },
  });
  sqs = createSqsClient(testServers.aws());
  signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
});

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
});

const nextCustomer = () => syntheticCustomer((Date.now() % 1_000_000_000) * 10 + (customers++ % 10), stack.productCode);
/** A customer that registered (ResolveCustomer) before AWS notified: the poller hands its notifications to its subscription's workflow. */
const registeredCustomer = async () => {
  const customer = nextCustomer();
  return { customer, ref: await registerSyntheticCustomer(stack.mongo.db, customer) };
};
const send = (body: string) => sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: body }));
const sendEvent = (body: string) =>
  sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.eventBridgeQueueUrl, MessageBody: body }));
/** EventBridge bodies to the EventBridge rule's queue, everything else to the SNS queue. */
const deliver = (body: string) => ('detail-type' in JSON.parse(body) ? sendEvent(body) : send(body));

const drained = async () => {
  for (const queueUrl of [stack.aws.queueUrl, stack.aws.eventBridgeQueueUrl])
    await eventually(
      () => queueDepth(sqs, queueUrl),
      (depth) => depth === 0,
    );
};

async function deadLetters(count: number) {
  const received: Message[] = [];
  await eventually(
    async () => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.aws.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      received.push(...Messages);
      return received.length;
    },
    (n) => n >= count,
  );
  return received;
}

const handedOff = (id: string) =>
  eventually(
    () => notificationsOf(stack.mongo.db).findOne({ _id: id }),
    (doc) => Boolean(doc?.handedOffAt),
  );

const subscription = (ref: SubscriptionRef) => stack.temporal.workflow.getHandle(subscriptionWorkflowId(ref));

const metric = async (name: string) =>
  (await stack.pollerMetrics.registry.getSingleMetricAsString(name))
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .sort();
const metricTotal = async (name: string) => sumOfSeries(await stack.pollerMetrics.registry.metrics(), name);

describe('notification intake', () => {
  it('hands a signed SNS envelope (SignatureVersion 1 and 2) and a raw delivery to the customer’s subscription workflow', async () => {
    const { customer, ref } = await registeredCustomer();
    const v1 = JSON.parse(snsEnvelopeBody(customer, 'subscribe-fail', signer)) as { MessageId: string };
    const v2 = JSON.parse(snsEnvelopeBody(customer, 'subscribe-success', { ...signer, version: '2' })) as {
      MessageId: string;
    };
    await send(JSON.stringify(v1));
    await send(JSON.stringify(v2));
    // Raw delivery carries no SNS MessageId, and SNS's redelivery would be a new SQS message: both copies are one notification.
    await send(rawMessageBody(customer, 'subscribe-success'));
    await send(rawMessageBody(customer, 'subscribe-success'));

    expect((await handedOff(v1.MessageId))!).toMatchObject({
      format: 'sns',
      action: 'subscribe-fail',
      awsAccountId: customer.customerAwsAccountId,
    });
    expect((await handedOff(v2.MessageId))!).toMatchObject({
      format: 'sns',
      action: 'subscribe-success',
      offerIdentifier: customer.offerId,
    });
    await drained();
    const raw = await notificationsOf(stack.mongo.db)
      .find({ awsAccountId: customer.customerAwsAccountId, format: 'sns-raw' })
      .toArray();
    expect(raw).toHaveLength(1);
    expect(raw[0]).toMatchObject({
      action: 'subscribe-success',
      _id: expect.stringMatching(/^raw:[0-9a-f]{32}:\d+$/),
      handedOffAt: expect.any(Date),
    });
    const state = await eventuallyState(subscription(ref), (s) => s.history.length === 3);
    expect(eventIds(state).sort()).toEqual([v1.MessageId, v2.MessageId, raw[0]!._id].sort());
  });

  it('only records a notification about a subscription nobody registered yet; its workflow reads the record when it starts', async () => {
    const customer = nextCustomer();
    const early = JSON.parse(snsEnvelopeBody(customer, 'subscribe-success', signer)) as { MessageId: string };
    await send(JSON.stringify(early));
    expect((await handedOff(early.MessageId))!).toMatchObject({
      action: 'subscribe-success',
      awsAccountId: customer.customerAwsAccountId,
    });
    const ref = await registerSyntheticCustomer(stack.mongo.db, customer);
    // Nothing was started for it.
    await expect(subscription(ref).describe()).rejects.toThrow(/not found/i);

    // The next notification, now that the subscription is registered, starts its workflow, which reads the first from the store.
    const later = JSON.parse(snsEnvelopeBody(customer, 'subscribe-fail', signer)) as { MessageId: string };
    await send(JSON.stringify(later));
    await handedOff(later.MessageId);
    const state = await eventuallyState(subscription(ref), (s) => s.history.length === 2);
    expect(eventIds(state).sort()).toEqual([early.MessageId, later.MessageId].sort());
    expect(state.aws.status).toBe('subscribed');
  });

  it('tells raw copies apart only when they arrive further apart than the duplicate window', async () => {
    const body = rawMessageBody(nextCustomer(), 'unsubscribe-pending');
    const windowStart = Math.ceil(Date.now() / DUPLICATE_WINDOW_MS) * DUPLICATE_WINDOW_MS;
    const first = await rawDeliveryId(stack.mongo.db, body, windowStart - 1000);
    await notificationsOf(stack.mongo.db).insertOne({
      _id: first,
      action: 'unsubscribe-pending',
      productCode: stack.productCode,
      sentAt: new Date(windowStart - 1000),
      receivedAt: new Date(),
    });
    // Two seconds later, across the window boundary: the same notification.
    expect(await rawDeliveryId(stack.mongo.db, body, windowStart + 1000)).toBe(first);
    // A window later: a new one (a second cancellation cycle sends the very same body).
    expect(await rawDeliveryId(stack.mongo.db, body, windowStart + DUPLICATE_WINDOW_MS - 500)).not.toBe(first);
    expect(await rawDeliveryId(stack.mongo.db, `${body} `, windowStart - 1000)).not.toBe(first);
  });

  it('maps EventBridge agreement events onto the SNS actions, and records but ignores the ones without a subscription change', async () => {
    const { customer, ref } = await registeredCustomer();
    const created = eventBridgeBody(customer, 'Purchase Agreement Created - Manufacturer');
    const amended = eventBridgeBody(customer, 'Purchase Agreement Amended - Manufacturer');
    const ended = eventBridgeBody(customer, 'Purchase Agreement Ended - Manufacturer');
    const deprovisioned = eventBridgeBody(customer, 'License Deprovisioned - Manufacturer');
    const updated = eventBridgeBody(customer, 'License Updated - Manufacturer');
    const unknown = eventBridgeBody(customer, 'Purchase Agreement Renewed - Manufacturer');
    for (const event of [created, amended, updated, unknown]) await sendEvent(event.body);

    // The sandbox prints the license ARN as AWS does, without `arn:`; the poller restores ResolveCustomer's form.
    expect((await handedOff(created.id))!).toMatchObject({
      format: 'eventbridge',
      action: 'subscribe-success',
      licenseArn: customer.licenseArn,
      agreementId: expect.stringMatching(/^agmt-/),
      detailType: 'Purchase Agreement Created - Manufacturer',
    });
    // An amendment is not a new subscription.
    expect((await handedOff(amended.id))!).toMatchObject({
      action: 'subscribe-success',
      amendment: true,
      intent: 'AMEND',
    });
    expect(eventIds(await eventuallyState(subscription(ref), (s) => s.history.length === 2)).sort()).toEqual(
      [created.id, amended.id].sort(),
    );
    const ignored = await eventually(
      () =>
        unprocessedNotificationsOf(stack.mongo.db)
          .find({ _id: { $in: [updated.id, unknown.id] } })
          .toArray(),
      (docs) => docs.length === 2,
    );
    expect(ignored.map((doc) => [doc.outcome, doc.reason]).sort()).toEqual([
      ['ignored', 'License Updated - Manufacturer: no subscription change'],
      ['ignored', 'unknown detail type "Purchase Agreement Renewed - Manufacturer"'],
    ]);

    // Ended opens the final-metering window; Deprovisioned closes it: both reach the same subscription workflow.
    await sendEvent(ended.body);
    await sendEvent(deprovisioned.body);
    expect((await handedOff(ended.id))!).toMatchObject({ action: 'unsubscribe-pending' });
    expect((await handedOff(deprovisioned.id))!).toMatchObject({ action: 'unsubscribe-success' });
    const state = await eventuallyState(subscription(ref), (s) => s.history.length === 4);
    expect(state.history.map((e) => [e.id, e.action])).toEqual(
      expect.arrayContaining([
        [ended.id, 'unsubscribe-pending'],
        [deprovisioned.id, 'unsubscribe-success'],
      ]),
    );
    expect(state.aws.status).toBe('unsubscribed');
    expect((await subscription(ref).describe()).type).toBe('subscription');
    await drained();
    expect(await metricTotal('marketplace_notifications_ignored_total')).toBeGreaterThanOrEqual(2);
  });

  it('records an unknown SNS action once and acknowledges it instead of retrying it forever', async () => {
    const customer = nextCustomer();
    const envelope = JSON.parse(snsEnvelopeBody(customer, 'entitlement-updated', signer)) as { MessageId: string };
    await send(JSON.stringify(envelope));
    await send(JSON.stringify(envelope));
    const doc = await eventually(
      () => unprocessedNotificationsOf(stack.mongo.db).findOne({ _id: envelope.MessageId }),
      Boolean,
    );
    expect(doc).toMatchObject({ outcome: 'ignored', format: 'sns', reason: 'unknown action "entitlement-updated"' });
    await drained();
    expect(await notificationsOf(stack.mongo.db).countDocuments({ _id: envelope.MessageId })).toBe(0);
  });

  it('gives a notification delivered many times, concurrently and out of order, one effect', async () => {
    const { customer, ref } = await registeredCustomer();
    const success = snsEnvelopeBody(customer, 'subscribe-success', signer);
    const fail = snsEnvelopeBody(customer, 'subscribe-fail', signer);
    const event = eventBridgeBody(customer, 'Purchase Agreement Amended - Manufacturer');
    // Five copies of each, interleaved and reversed: SNS and EventBridge both deliver at least once.
    const copies = [...Array(5)].flatMap(() => [success, event.body, fail]).reverse();
    await Promise.all(copies.map(deliver));
    await drained();
    const messageIdOf = (body: string) => (JSON.parse(body) as { MessageId: string }).MessageId;
    const ids = [messageIdOf(success), messageIdOf(fail), event.id];
    expect(await notificationsOf(stack.mongo.db).countDocuments({ _id: { $in: ids } })).toBe(3);
    const state = await eventuallyState(subscription(ref), (s) => s.history.length >= 3);
    expect(eventIds(state).sort()).toEqual([...ids].sort());
    // The workflow's history: each notification signalled once, however many copies arrived.
    const history = await subscription(ref).fetchHistory();
    // signalWithStart on a new workflow records its signal as a Signaled event too.
    expect(history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes).length).toBe(3);
    expect(await metricTotal('marketplace_notifications_duplicate_total')).toBeGreaterThanOrEqual(12);
  });

  it('dead-letters unreadable and invalid messages at once, with the reason, and keeps going', async () => {
    const customer = nextCustomer();
    const noCustomer = JSON.stringify({ action: 'subscribe-success', 'product-code': stack.productCode });
    const badEnvelope = JSON.stringify({ Type: 'Notification', TopicArn: stack.aws.topicArn, Message: '{}' });
    const notJson = await send('{"truncated": ');
    const invalid = await send(noCustomer);
    const envelope = await send(badEnvelope);
    const good = JSON.parse(snsEnvelopeBody(customer, 'subscribe-success', signer)) as { MessageId: string };
    await send(JSON.stringify(good));

    await handedOff(good.MessageId);
    const dead = await deadLetters(3);
    const reasons: Record<string, string | undefined> = Object.fromEntries(
      dead.map((m) => [m.MessageAttributes!.sourceMessageId!.StringValue, m.MessageAttributes!.reason!.StringValue]),
    );
    // Nothing AWS sends is anything but a JSON object.
    expect(reasons[notJson.MessageId!]).toBe('untrusted: the body is not a JSON object');
    expect(reasons[invalid.MessageId!]).toBe(
      'poison: sns-raw message names no customer (customer-identifier or customer-aws-account-id)',
    );
    // An envelope we cannot read cannot be verified either: untrusted, not merely malformed.
    expect(reasons[envelope.MessageId!]).toMatch(/^untrusted: SNS envelope: .*MessageId/);
    // At once: on the first receive, not after the redrive policy's five.
    expect(dead.map((m) => m.MessageAttributes!.receiveCount!.StringValue)).toEqual(['1', '1', '1']);
    // Poison is recorded for the operator; an untrusted message costs no store write (its dead-letter copy is the record).
    // The record is marked forwarded right after the copy is sent: wait for that write too.
    const records = await eventually(
      () =>
        unprocessedNotificationsOf(stack.mongo.db)
          .find({ sqsMessageId: { $in: [notJson.MessageId!, invalid.MessageId!, envelope.MessageId!] } })
          .toArray(),
      (found) => found.every((r) => r.forwardedAt),
    );
    expect(records.map((r) => [r.sqsMessageId, r.outcome])).toEqual([[invalid.MessageId, 'dead-lettered']]);
    expect(records.every((r) => r.forwardedAt && r.body)).toBe(true);
    await drained();
    expect(await metricTotal('marketplace_notifications_dead_lettered_total')).toBeGreaterThanOrEqual(3);
  });

  it('keeps a message invisible while its hand-off outlasts the visibility timeout, so nobody else takes it', async () => {
    const queue = await ensureLocalAwsResources({
      endpoint: testServers.awsEndpoint(),
      region: 'us-east-1',
      queueName: uniqueName('slow'),
      productCode: stack.productCode,
      visibilityTimeoutSeconds: 2,
    });
    let calls = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // A hand-off that takes three visibility timeouts (a store or Temporal slow to answer).
    const slowHandOff = async () => {
      calls++;
      await released;
      return 'signalled' as const;
    };
    const metrics = createPollerMetrics();
    const poller = new SqsNotificationPoller({
      sqs,
      queueUrl: queue.queueUrl,
      deadLetterQueueUrl: queue.deadLetterQueueUrl,
      db: stack.mongo.db,
      trust: { formats: ['eventbridge'], topicArns: [stack.aws.topicArn] },
      handOff: slowHandOff,
      metrics,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      visibilityTimeoutSeconds: 2,
      waitTimeSeconds: 1,
    });
    const stop = new AbortController();
    const running = poller.run(stop.signal);
    try {
      const customer = nextCustomer();
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queue.queueUrl,
          MessageBody: eventBridgeBody(customer, 'Purchase Agreement Created - Manufacturer').body,
        }),
      );
      await eventually(
        () => Promise.resolve(calls),
        (n) => n === 1,
      );
      // Another consumer polls for six seconds, three timeouts: the message never shows, to it or to the poller's own receivers.
      const deadline = Date.now() + 6000;
      while (Date.now() < deadline) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queue.queueUrl, WaitTimeSeconds: 1 }),
        );
        expect(Messages).toEqual([]);
      }
      release();
      await eventually(
        () => queueDepth(sqs, queue.queueUrl),
        (depth) => depth === 0,
      );
      expect(calls).toBe(1);
      expect((await metrics.received.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(1);
    } finally {
      release();
      stop.abort();
      await running;
    }
  });

  it('dead-letters forged, unsigned and foreign-topic envelopes without recording them or fetching foreign certificates', async () => {
    let foreignFetches = 0;
    const foreign = createServer((_request, response) => (foreignFetches++, response.end(signer.key.certificatePem)));
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    const foreignCertUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/SimpleNotificationService.pem`;
    const customer = nextCustomer();
    const message = JSON.stringify(snsMessage(customer, 'subscribe-success'));
    const genuine = signedEnvelope(
      { topicArn: signer.topicArn, message, certUrl: signer.certUrl, version: '2' },
      signer.key,
    );

    const tampered = { ...genuine, Message: message.replace(customer.customerAwsAccountId, '999999999999') };
    const unsigned = { ...genuine, MessageId: `${genuine.MessageId}-u`, Signature: undefined };
    // Signed with our key but pointing at a certificate URL off the AWS SNS host pattern: never fetched.
    const offPattern = signedEnvelope(
      { topicArn: signer.topicArn, message, certUrl: foreignCertUrl, version: '2' },
      signer.key,
    );
    const awsLookalike = signedEnvelope(
      {
        topicArn: signer.topicArn,
        message,
        certUrl: 'https://sns.us-east-1.amazonaws.com.evil.example/cert.pem',
        version: '1',
      },
      signer.key,
    );
    const wrongTopic = signedEnvelope(
      { topicArn: `${signer.topicArn}-other`, message, certUrl: signer.certUrl, version: '1' },
      signer.key,
    );
    const sent = await Promise.all(
      [tampered, unsigned, offPattern, awsLookalike, wrongTopic].map((envelope) => send(JSON.stringify(envelope))),
    );

    const dead = await deadLetters(5);
    const reasonOf = (i: number) =>
      dead.find((m) => m.MessageAttributes!.sourceMessageId!.StringValue === sent[i]!.MessageId)!.MessageAttributes!
        .reason!.StringValue;
    expect(reasonOf(0)).toBe('untrusted: the signature does not match the message');
    expect(reasonOf(1)).toBe('untrusted: the envelope is not signed');
    expect(reasonOf(2)).toBe(`untrusted: SigningCertURL is not an AWS SNS certificate URL: ${foreignCertUrl}`);
    expect(reasonOf(3)).toMatch(/^untrusted: SigningCertURL is not an AWS SNS certificate URL/);
    expect(reasonOf(4)).toBe(`untrusted: TopicArn ${signer.topicArn}-other is not a configured topic (SNS_TOPIC_ARN)`);
    expect(foreignFetches).toBe(0);
    expect(await notificationsOf(stack.mongo.db).countDocuments({ awsAccountId: customer.customerAwsAccountId })).toBe(
      0,
    );
    expect(await metric('marketplace_notifications_verification_failed_total')).toEqual([
      // The body of the test before that is not JSON.
      'marketplace_notifications_verification_failed_total{check="format"} 1',
      // Four here, and the unreadable envelope of the test before.
      'marketplace_notifications_verification_failed_total{check="signature"} 5',
      'marketplace_notifications_verification_failed_total{check="topic"} 1',
    ]);

    // A certificate URL on the AWS pattern that cannot be fetched is not forged: the message comes back later
    // (the redrive policy bounds how often), and intake goes on meanwhile.
    const unreachable = signedEnvelope(
      { topicArn: signer.topicArn, message, certUrl: UNREACHABLE_CERT_URL, version: '1' },
      signer.key,
    );
    const held = await send(JSON.stringify(unreachable));
    await eventually(
      () =>
        Promise.resolve(
          stack.pollerLog.some(
            (line) => line.includes('cannot verify the envelope yet') && line.includes(held.MessageId!),
          ),
        ),
      Boolean,
      400,
    );
    expect(await metric('marketplace_notifications_dead_lettered_total')).toContain(
      'marketplace_notifications_dead_lettered_total{reason="untrusted"} 7',
    );

    // The genuine envelope, after all that, is accepted.
    await send(JSON.stringify(genuine));
    expect((await handedOff(genuine.MessageId))!).toMatchObject({ awsAccountId: customer.customerAwsAccountId });
    await new Promise<void>((resolve) => foreign.close(() => resolve()));
  });
});
