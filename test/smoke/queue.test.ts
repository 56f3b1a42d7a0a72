/** SQS and SNS on moto, through the same client factory the service uses. */
import { PublishCommand } from '@aws-sdk/client-sns';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { ensureLocalAwsResources } from '../../infra/servers';
import { createSnsClient, createSqsClient } from '../../lib/aws';
import { testServers, uniqueName } from '../helpers/test-env';

async function receiveOne(sqs: SQSClient, queueUrl: string) {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }),
  );
  return Messages ?? [];
}

describe('SQS and SNS on moto', () => {
  const aws = testServers.aws();
  const sqs = createSqsClient(aws);
  afterAll(() => sqs.destroy());

  it('sends, receives and deletes a message', async () => {
    const { queueUrl } = await ensureLocalAwsResources({
      endpoint: testServers.awsEndpoint(),
      region: aws.region,
      queueName: uniqueName('q'),
      productCode: uniqueName('p'),
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"hello":"world"}' }));
    const [message] = await receiveOne(sqs, queueUrl);
    expect(message?.Body).toBe('{"hello":"world"}');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message!.ReceiptHandle! }));
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(attributes.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });

  it('delivers an SNS publish into the subscribed queue in the SNS envelope', async () => {
    const resources = await ensureLocalAwsResources({
      endpoint: testServers.awsEndpoint(),
      region: aws.region,
      queueName: uniqueName('q'),
      productCode: uniqueName('p'),
    });
    const sns = createSnsClient(aws);
    try {
      await sns.send(new PublishCommand({ TopicArn: resources.topicArn, Message: '{"action":"subscribe-success"}' }));
    } finally {
      sns.destroy();
    }
    const [message] = await receiveOne(sqs, resources.queueUrl);
    const envelope = JSON.parse(message!.Body!) as Record<string, unknown>;
    expect(envelope).toMatchObject({
      Type: 'Notification',
      TopicArn: resources.topicArn,
      Message: '{"action":"subscribe-success"}',
    });
    expect(envelope.MessageId).toEqual(expect.any(String));
  });

  it('creates the resources idempotently, with a redrive policy to the dead-letter queue', async () => {
    const options = {
      endpoint: testServers.awsEndpoint(),
      region: aws.region,
      queueName: uniqueName('q'),
      productCode: uniqueName('p'),
    };
    const first = await ensureLocalAwsResources(options);
    const second = await ensureLocalAwsResources(options);
    expect(second).toEqual(first);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: first.queueUrl, AttributeNames: ['RedrivePolicy'] }),
    );
    expect(JSON.parse(Attributes!.RedrivePolicy!)).toMatchObject({
      maxReceiveCount: 5,
      deadLetterTargetArn: expect.stringContaining(`${options.queueName}-dlq`),
    });
  });

  it('reports a missing queue as an error, not as an empty receive', async () => {
    await expect(
      sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: `${testServers.awsEndpoint()}/123456789012/${uniqueName('nope')}`,
          WaitTimeSeconds: 0,
        }),
      ),
    ).rejects.toThrow(/exist/i);
  });
});
