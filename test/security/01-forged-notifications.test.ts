/**
 * Issue 12, point 1: forged notifications. Anyone who can put a message on
 * the notification queue must not be able to change a subscription. On a
 * queue configured for signed SNS envelopes (the default), every other body
 * is untrusted: dead-lettered at once with that reason, with no effect, and
 * without pausing intake for the genuine notifications around it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { SendMessageCommand, SetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../../lib/aws';
import { notificationsOf, unprocessedNotificationsOf } from '../../lib/store/marketplace';
import { queueDepth } from '../../infra/servers';
import { sumOfSeries } from '../../poller/metrics';
import {
  enqueueBodies,
  eventBridgeBody,
  rawMessageBody,
  snsEnvelopeBody,
  syntheticCustomer,
  type SnsSigner,
} from '../../sandbox/notification-bodies';
import { signedEnvelope } from '../../sandbox/sns-signing';
import { snsMessage } from '../../sandbox/notifications';
import type { SandboxCustomer } from '../../sandbox/store';
import { subscriptionWorkflowId } from '../../domain/subscription-identity';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { eventIds, eventuallyState, registerSyntheticCustomer } from '../helpers/subscription';
import { testServers } from '../helpers/test-env';
import { eventually } from '../helpers/time-skipping';
import { deadLetters } from '../helpers/dead-letters';

/** 1,000 of each format, as the issue asks; FORGED_PER_FORMAT makes a quicker local run. */
const PER_FORMAT = Number(process.env.FORGED_PER_FORMAT ?? 1000);

let stack: LinkingStack;
let sqs: SQSClient;
let signer: SnsSigner;
let attackerServer: Server;
let attackerFetches = 0;
let attackerCertUrl = '';
let customers = 0;

const attackerKey = (() => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certificatePem: '' };
})();

beforeAll(async () => {
  stack = await startLinkingStack({ visibilityTimeoutSeconds: 30, maxReceiveCount: 5 });
  sqs = createSqsClient(testServers.aws());
  signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
  // The attacker serves a certificate of their own: it must never be fetched.
  attackerServer = createServer((_request, response) => (attackerFetches++, response.end(signer.key.certificatePem)));
  await new Promise<void>((resolve) => attackerServer.listen(0, '127.0.0.1', resolve));
  attackerCertUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}/SimpleNotificationService-0123.pem`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (attackerServer ? attackerServer.close(() => resolve()) : resolve()));
  sqs?.destroy();
  await stack?.stop();
});

const nextCustomer = () => syntheticCustomer((Date.now() % 1_000_000_000) * 10 + (customers++ % 10), stack.productCode);
const send = (body: string) => sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: body }));
const metricTotal = async (name: string) => sumOfSeries(await stack.pollerMetrics.registry.metrics(), name);

/**
 * Enqueues as fast as SQS accepts while keeping at most 1,000 waiting, as the
 * notification benchmark does: moto's ReceiveMessage scans the whole queue on
 * every call (real SQS does not), so 9,000 waiting would measure moto's scan.
 */
async function produce(bodies: string[]): Promise<void> {
  for (let start = 0; start < bodies.length; start += 500) {
    while ((await queueDepth(sqs, stack.aws.queueUrl)) > 500) await new Promise((resolve) => setTimeout(resolve, 20));
    await enqueueBodies(sqs, stack.aws.queueUrl, bodies.slice(start, start + 500));
  }
}

const without = (fields: Record<string, unknown>, ...names: string[]) =>
  Object.fromEntries(Object.entries(fields).filter(([name]) => !names.includes(name)));

/** Each forger builds the i-th forged body aimed at `victim`. */
type Forger = (victim: SandboxCustomer, i: number) => string;

function forgers(): Record<string, Forger> {
  const envelopeOf = (victim: SandboxCustomer, action = 'unsubscribe-success') =>
    JSON.parse(snsEnvelopeBody(victim, action, signer)) as Record<string, unknown>;
  return {
    // The inner message alone, as SNS raw delivery would carry it.
    'raw delivery': (victim) => rawMessageBody(victim, 'unsubscribe-success'),
    // An EventBridge event from "the future": it would sort after every real notification.
    'EventBridge event dated 2099': (victim) => {
      const event = JSON.parse(eventBridgeBody(victim, 'License Deprovisioned - Manufacturer').body) as Record<
        string,
        unknown
      >;
      return JSON.stringify({ ...event, time: '2099-01-01T00:00:00Z' });
    },
    'unsigned envelope': (victim) =>
      JSON.stringify(without(envelopeOf(victim), 'Signature', 'SigningCertURL', 'SignatureVersion')),
    // The attack: drop `Type`, and the message fields sit at the top as in a raw delivery.
    'envelope without Type': (victim) =>
      JSON.stringify({ ...without(envelopeOf(victim), 'Type'), ...snsMessage(victim, 'unsubscribe-success') }),
    'envelope signed by another key': (victim) =>
      JSON.stringify(
        signedEnvelope(
          {
            topicArn: signer.topicArn,
            message: JSON.stringify(snsMessage(victim, 'unsubscribe-success')),
            certUrl: attackerCertUrl,
            version: '2',
          },
          attackerKey,
        ),
      ),
    'envelope with a changed message': (victim) => {
      const genuine = envelopeOf(victim, 'subscribe-success');
      return JSON.stringify({ ...genuine, Message: JSON.stringify(snsMessage(victim, 'unsubscribe-success')) });
    },
    'crafted SignatureVersion': (victim, i) =>
      JSON.stringify({
        ...envelopeOf(victim),
        SignatureVersion: ['constructor', '__proto__', 'toString', 'hasOwnProperty'][i % 4],
      }),
    'certificate on a look-alike host': (victim, i) =>
      JSON.stringify({
        ...envelopeOf(victim),
        SigningCertURL: [
          'https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-0123.pem',
          'https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123.pem',
          'https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0123.pem',
          'https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem',
        ][i % 4],
      }),
    'a body that is not JSON': (victim, i) =>
      i % 2
        ? `\uFEFF${rawMessageBody(victim, 'unsubscribe-success')}`
        : `unsubscribe-success ${victim.customerAwsAccountId}`,
    'JSON that is not an object': (victim, i) =>
      JSON.stringify([[snsMessage(victim, 'unsubscribe-success')], 'unsubscribe-success', null, 42][i % 4]),
    'envelope from another topic': (victim) =>
      snsEnvelopeBody(victim, 'unsubscribe-success', {
        ...signer,
        topicArn: `${signer.topicArn.replace(/:[^:]+$/, ':')}attacker-topic`,
      }),
  };
}

describe('issue 12 point 1: forged notifications', () => {
  it(`dead-letters ${PER_FORMAT} forged messages of every format as untrusted, with no effect, while genuine ones keep flowing`, async () => {
    // Victims: paying customers, subscribed by a genuine signed notification.
    const victims: Array<{ customer: SandboxCustomer; workflowId: string; genuineId: string }> = [];
    for (let v = 0; v < 5; v++) {
      const customer = nextCustomer();
      const ref = await registerSyntheticCustomer(stack.mongo.db, customer);
      const body = snsEnvelopeBody(customer, 'subscribe-success', signer);
      await send(body);
      victims.push({
        customer,
        workflowId: subscriptionWorkflowId(ref),
        genuineId: (JSON.parse(body) as { MessageId: string }).MessageId,
      });
    }
    for (const victim of victims) {
      await eventuallyState(stack.temporal.workflow.getHandle(victim.workflowId), (s) => s.aws.status === 'subscribed');
    }
    const failuresBefore = await metricTotal('marketplace_notification_hand_off_failures_total');

    const forged: string[] = [];
    for (const [, forge] of Object.entries(forgers())) {
      for (let i = 0; i < PER_FORMAT; i++) forged.push(forge(victims[i % victims.length]!.customer, i));
    }
    // Genuine notifications for other customers travel in the middle of the flood.
    const bystanders = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const customer = nextCustomer();
        const ref = await registerSyntheticCustomer(stack.mongo.db, customer);
        const body = snsEnvelopeBody(customer, 'subscribe-success', signer);
        return {
          workflowId: subscriptionWorkflowId(ref),
          id: (JSON.parse(body) as { MessageId: string }).MessageId,
          body,
        };
      }),
    );
    const half = Math.floor(forged.length / 2);
    await produce([...forged.slice(0, half), ...bystanders.map((b) => b.body), ...forged.slice(half)]);
    await eventually(
      () => queueDepth(sqs, stack.aws.queueUrl),
      (depth) => depth === 0,
      6000,
    );

    // Every forged message was dead-lettered, each as untrusted, each on its first receipt, and none recorded in the store.
    const dead = await deadLetters(sqs, stack.aws.deadLetterQueueUrl, forged.length);
    expect(dead).toHaveLength(forged.length);
    expect(dead.filter((copy) => !copy.reason.startsWith('untrusted: ')).map((copy) => copy.reason)).toEqual([]);
    expect(dead.filter((copy) => copy.receiveCount !== '1')).toEqual([]);
    expect(new Set(dead.map((copy) => copy.body))).toEqual(new Set(forged));
    expect(await metricTotal('marketplace_notifications_dead_lettered_total')).toBe(forged.length);
    expect(await unprocessedNotificationsOf(stack.mongo.db).countDocuments({})).toBe(0);

    // No effect: only the genuine notifications reached the store and the workflows.
    expect(await notificationsOf(stack.mongo.db).countDocuments({ handedOffAt: { $exists: true } })).toBe(
      victims.length + bystanders.length,
    );
    for (const victim of victims) {
      const state = await eventuallyState(stack.temporal.workflow.getHandle(victim.workflowId), () => true);
      expect({ phase: state.phase, aws: state.aws.status, events: eventIds(state) }).toEqual({
        phase: 'registered',
        aws: 'subscribed',
        events: [victim.genuineId],
      });
    }
    for (const bystander of bystanders) {
      const state = await eventuallyState(
        stack.temporal.workflow.getHandle(bystander.workflowId),
        (s) => s.history.length === 1,
      );
      expect(eventIds(state)).toEqual([bystander.id]);
    }

    // Intake never paused: no hand-off failed, so the poller never stopped receiving.
    expect(await metricTotal('marketplace_notification_hand_off_failures_total')).toBe(failuresBefore);
    expect(await metricTotal('marketplace_notification_intake_pauses_total')).toBe(0);
    // The attacker's certificate was never fetched.
    expect(attackerFetches).toBe(0);
  }, 900_000);

  it('dead-letters bodies built to break the parsers (deep nesting, 200 KB, prototype names) as untrusted, at once, without pausing intake', async () => {
    const victim = nextCustomer();
    const ref = await registerSyntheticCustomer(stack.mongo.db, victim);
    const pausesBefore = await metricTotal('marketplace_notification_intake_pauses_total');
    const failuresBefore = await metricTotal('marketplace_notification_hand_off_failures_total');
    const envelope = JSON.parse(snsEnvelopeBody(victim, 'unsubscribe-success', signer)) as Record<string, unknown>;
    const hostile = [
      // Recursion in a schema check would overflow the stack on this.
      `{"Type":"Notification","TopicArn":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      `{"action":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
      // Larger than any dead-letter copy should carry.
      JSON.stringify({ ...envelope, Message: 'x'.repeat(200_000) }),
      '{"__proto__":{"Type":"Notification"},"constructor":{"prototype":{"action":"unsubscribe-success"}}}',
      JSON.stringify({ ...envelope, SignatureVersion: { toString: 1 } }),
    ];
    const sent = await Promise.all(hostile.map((body) => send(body)));
    const genuine = JSON.parse(snsEnvelopeBody(victim, 'subscribe-success', signer)) as { MessageId: string };
    await send(JSON.stringify(genuine));

    await eventuallyState(
      stack.temporal.workflow.getHandle(subscriptionWorkflowId(ref)),
      (s) => s.history.length === 1,
    );
    await eventually(
      () => queueDepth(sqs, stack.aws.queueUrl),
      (depth) => depth === 0,
      600,
    );
    // The copies read by the test before stay invisible: only these come back.
    const dead = (await deadLetters(sqs, stack.aws.deadLetterQueueUrl, hostile.length)).filter((copy) =>
      sent.some((m) => m.MessageId === copy.sourceMessageId),
    );
    expect(dead).toHaveLength(hostile.length);
    expect(dead.every((copy) => copy.reason.startsWith('untrusted: ') && copy.receiveCount === '1')).toBe(true);
    // The 200 KB body travels cut to 64 KiB, with its size and hash.
    expect(Math.max(...dead.map((copy) => copy.body.length))).toBeLessThanOrEqual(64 * 1024);
    expect(await metricTotal('marketplace_notification_intake_pauses_total')).toBe(pausesBefore);
    expect(await metricTotal('marketplace_notification_hand_off_failures_total')).toBe(failuresBefore);
    expect(await unprocessedNotificationsOf(stack.mongo.db).countDocuments({})).toBe(0);
  }, 120_000);

  it('never pauses intake for a message the dead-letter queue refuses: it is left to the redrive policy', async () => {
    // A dead-letter queue that takes smaller messages than the queue: the copy of a 2 KB forged body is refused for good.
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: stack.aws.deadLetterQueueUrl,
        Attributes: { MaximumMessageSize: '1024' },
      }),
    );
    try {
      const victim = nextCustomer();
      const ref = await registerSyntheticCustomer(stack.mongo.db, victim);
      const pausesBefore = await metricTotal('marketplace_notification_intake_pauses_total');
      await send(
        JSON.stringify({ ...JSON.parse(rawMessageBody(victim, 'unsubscribe-success')), padding: 'x'.repeat(2048) }),
      );
      const genuine = JSON.parse(snsEnvelopeBody(victim, 'subscribe-success', signer)) as { MessageId: string };
      await send(JSON.stringify(genuine));
      await eventuallyState(
        stack.temporal.workflow.getHandle(subscriptionWorkflowId(ref)),
        (s) => s.history.length === 1,
      );
      await eventually(
        () => metricTotal('marketplace_notifications_dead_letter_refused_total'),
        (n) => n >= 1,
      );
      expect(await metricTotal('marketplace_notification_intake_pauses_total')).toBe(pausesBefore);
      expect(stack.pollerLog.some((line) => line.includes('the dead-letter queue refused the copy'))).toBe(true);
    } finally {
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: stack.aws.deadLetterQueueUrl,
          Attributes: { MaximumMessageSize: '262144' },
        }),
      );
    }
  }, 120_000);

  it('on the EventBridge queue, ignores detail types named after prototype members and sources that are not strings, without pausing intake', async () => {
    const victim = nextCustomer();
    const ref = await registerSyntheticCustomer(stack.mongo.db, victim);
    const pausesBefore = await metricTotal('marketplace_notification_intake_pauses_total');
    const event = JSON.parse(eventBridgeBody(victim, 'Purchase Agreement Created - Manufacturer').body) as Record<
      string,
      unknown
    >;
    const bodies = [
      ...['constructor', '__proto__', 'toString', 'hasOwnProperty'].map((name) =>
        JSON.stringify({ ...event, id: `${name}-${victim._id}`, 'detail-type': `${name} - Manufacturer` }),
      ),
      JSON.stringify({ id: `source-${victim._id}`, 'detail-type': 'x', source: { toString: 1 } }),
    ];
    for (const body of bodies)
      await sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.eventBridgeQueueUrl, MessageBody: body }));
    const genuine = eventBridgeBody(victim, 'Purchase Agreement Created - Manufacturer');
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.eventBridgeQueueUrl, MessageBody: genuine.body }));

    const state = await eventuallyState(
      stack.temporal.workflow.getHandle(subscriptionWorkflowId(ref)),
      (s) => s.history.length === 1,
    );
    expect(eventIds(state)).toEqual([genuine.id]);
    await eventually(
      () => queueDepth(sqs, stack.aws.eventBridgeQueueUrl),
      (depth) => depth === 0,
      600,
    );
    const ignored = await unprocessedNotificationsOf(stack.mongo.db)
      .find({ _id: { $in: bodies.map((body) => (JSON.parse(body) as { id: string }).id) } })
      .toArray();
    expect(ignored.map((doc) => doc.outcome)).toEqual(bodies.map(() => 'ignored'));
    expect(await metricTotal('marketplace_notification_intake_pauses_total')).toBe(pausesBefore);
  }, 120_000);
});
