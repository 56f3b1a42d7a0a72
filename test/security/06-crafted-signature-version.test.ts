/**
 * Issue 12, point 6: a crafted `SignatureVersion` such as "constructor" or
 * "__proto__" used to find a function on the algorithm table's prototype and
 * throw inside verification; the poller took that for an outage and paused
 * intake for seconds per message. It must be refused as untrusted at once.
 * The verifier's own verdict is unit-tested in test/unit/security/.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../../lib/aws';
import { notificationsOf } from '../../lib/store/marketplace';
import { deadLetters } from '../helpers/dead-letters';
import { queueDepth } from '../../infra/servers';
import { sumOfSeries } from '../../poller/metrics';
import { snsEnvelopeBody, syntheticCustomer, type SnsSigner } from '../../sandbox/notification-bodies';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { registerSyntheticCustomer } from '../helpers/subscription';
import { testServers } from '../helpers/test-env';
import { eventually } from '../helpers/time-skipping';
import { CRAFTED_SIGNATURE_VERSIONS as CRAFTED } from '../fixtures/crafted-signature-versions';

describe('issue 12 point 6: crafted SignatureVersion', () => {
  describe('through the queue', () => {
    let stack: LinkingStack;
    let sqs: SQSClient;
    let signer: SnsSigner;

    beforeAll(async () => {
      stack = await startLinkingStack({ visibilityTimeoutSeconds: 30, maxReceiveCount: 5 });
      sqs = createSqsClient(testServers.aws());
      signer = { key: testServers.snsSigningKey(), certUrl: stack.sandbox.certUrl, topicArn: stack.aws.topicArn };
    }, 120_000);
    afterAll(async () => {
      sqs?.destroy();
      await stack?.stop();
    });

    it('dead-letters each crafted envelope on its first receive as untrusted, and never pauses intake', async () => {
      const victim = syntheticCustomer(Date.now() % 1_000_000_000, stack.productCode);
      await registerSyntheticCustomer(stack.mongo.db, victim);
      const send = (body: string) =>
        sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.queueUrl, MessageBody: body }));
      const crafted = await Promise.all(
        CRAFTED.map((version) =>
          send(
            JSON.stringify({
              ...JSON.parse(snsEnvelopeBody(victim, 'unsubscribe-success', signer)),
              SignatureVersion: version,
            }),
          ),
        ),
      );
      const genuine = JSON.parse(snsEnvelopeBody(victim, 'subscribe-success', signer)) as { MessageId: string };
      await send(JSON.stringify(genuine));

      await eventually(
        () => notificationsOf(stack.mongo.db).findOne({ _id: genuine.MessageId }),
        (doc) => Boolean(doc?.handedOffAt),
      );
      await eventually(
        () => queueDepth(sqs, stack.aws.queueUrl),
        (depth) => depth === 0,
      );
      const dead = await deadLetters(sqs, stack.aws.deadLetterQueueUrl, CRAFTED.length);
      const craftedIds = new Set(crafted.map((sent) => sent.MessageId!));
      expect(dead.every((copy) => craftedIds.has(copy.sourceMessageId))).toBe(true);
      expect(dead.map((copy) => [copy.reason, copy.receiveCount]).sort()).toEqual(
        CRAFTED.map((version) => [`untrusted: unsupported SignatureVersion "${version}"`, '1']).sort(),
      );
      const metrics = await stack.pollerMetrics.registry.metrics();
      expect(sumOfSeries(metrics, 'marketplace_notification_hand_off_failures_total')).toBe(0);
      expect(sumOfSeries(metrics, 'marketplace_notification_intake_pauses_total')).toBe(0);
      // Only the genuine notification had an effect.
      expect(await notificationsOf(stack.mongo.db).countDocuments({ awsAccountId: victim.customerAwsAccountId })).toBe(
        1,
      );
    });
  });
});
