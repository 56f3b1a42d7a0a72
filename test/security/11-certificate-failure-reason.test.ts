/**
 * Issue 12, point 11 (second bullet): an envelope whose signing certificate
 * cannot be fetched comes back later, a bounded number of times. On its last
 * receive the poller dead-letters it itself, with the reason, instead of
 * leaving SQS's redrive to move it there with none.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../../lib/aws';
import { notificationsOf } from '../../lib/store/marketplace';
import { sumOfSeries } from '../../poller/metrics';
import { snsEnvelopeBody, syntheticCustomer, type SnsSigner } from '../../sandbox/notification-bodies';
import { signedEnvelope } from '../../sandbox/sns-signing';
import { snsMessage } from '../../sandbox/notifications';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { registerSyntheticCustomer } from '../helpers/subscription';
import { testServers } from '../helpers/test-env';
import { eventually } from '../helpers/time-skipping';

let stack: LinkingStack;
let sqs: SQSClient;
let signer: SnsSigner;
let unavailable: Server;
let certFetches = 0;
let unavailableCertUrl = '';

beforeAll(async () => {
  // A certificate server the poller trusts, which answers 503 (an SNS outage, say).
  unavailable = createServer((_request, response) => (certFetches++, response.writeHead(503).end('unavailable')));
  await new Promise<void>((resolve) => unavailable.listen(0, '127.0.0.1', resolve));
  unavailableCertUrl = `http://127.0.0.1:${(unavailable.address() as AddressInfo).port}/SimpleNotificationService-0123.pem`;
  stack = await startLinkingStack({
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 3,
    poller: { trustedCertUrls: [unavailableCertUrl] },
    certificateRetry: { initialSeconds: 1, maxSeconds: 1 },
  });
  sqs = createSqsClient(testServers.aws());
  signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
}, 120_000);

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
  await new Promise<void>((resolve) => (unavailable ? unavailable.close(() => resolve()) : resolve()));
});

describe('issue 12 point 11: a certificate that cannot be fetched', () => {
  it('is retried on each receive, then dead-lettered by the poller with the reason, while intake goes on', async () => {
    const customer = syntheticCustomer(Date.now() % 1_000_000_000, stack.productCode);
    await registerSyntheticCustomer(stack.mongo.db, customer);
    const message = JSON.stringify(snsMessage(customer, 'subscribe-success'));
    const held = signedEnvelope(
      { topicArn: signer.topicArn, message, certUrl: unavailableCertUrl, version: '2' },
      signer.key,
    );
    const sent = await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: JSON.stringify(held) }),
    );
    // Meanwhile a genuine notification goes through: one unverifiable message never stops intake.
    const genuine = JSON.parse(snsEnvelopeBody(customer, 'subscribe-fail', signer)) as { MessageId: string };
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: JSON.stringify(genuine) }));
    await eventually(
      () => notificationsOf(stack.mongo.db).findOne({ _id: genuine.MessageId }),
      (doc) => Boolean(doc?.handedOffAt),
    );

    const dead = await eventually(
      async () =>
        (
          await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: stack.aws.deadLetterQueueUrl,
              WaitTimeSeconds: 1,
              MessageAttributeNames: ['All'],
            }),
          )
        ).Messages ?? [],
      (messages) => messages.length > 0,
      600,
    );
    expect(dead).toHaveLength(1);
    expect(dead[0]!.Body).toBe(JSON.stringify(held));
    expect(dead[0]!.MessageAttributes).toMatchObject({
      sourceMessageId: { StringValue: sent.MessageId },
      receiveCount: { StringValue: '3' },
      reason: {
        StringValue: 'untrusted: still unverifiable after 3 receives: signing certificate: fetching it answered 503',
      },
    });
    // Fetched once per receive: a failure is never cached.
    expect(certFetches).toBe(3);
    expect(await notificationsOf(stack.mongo.db).findOne({ _id: held.MessageId })).toBeNull();
    const metrics = await stack.pollerMetrics.registry.metrics();
    expect(sumOfSeries(metrics, 'marketplace_notification_intake_pauses_total')).toBe(0);
  }, 180_000);
});
