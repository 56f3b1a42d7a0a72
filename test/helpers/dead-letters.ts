import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { eventually } from './time-skipping';

export interface DeadLetterCopy {
  body: string;
  reason: string;
  sourceMessageId: string;
  receiveCount: string;
}

/** Reads `count` copies off a dead-letter queue (without deleting them), with the attributes the poller set. */
export async function deadLetters(
  sqs: SQSClient,
  deadLetterQueueUrl: string,
  count: number,
): Promise<DeadLetterCopy[]> {
  const copies: DeadLetterCopy[] = [];
  await eventually(
    async () => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 600,
          MessageAttributeNames: ['All'],
        }),
      );
      for (const message of Messages) {
        const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue ?? '';
        copies.push({
          body: message.Body ?? '',
          reason: attribute('reason'),
          sourceMessageId: attribute('sourceMessageId'),
          receiveCount: attribute('receiveCount'),
        });
      }
      return copies.length;
    },
    (n) => n >= count,
    Math.max(200, count),
  );
  return copies;
}
