/**
 * The three things the poller does to a message it holds: delete it (batched,
 * up to 10 per call), keep it invisible while a slow hand-off runs, or copy it
 * to the dead-letter queue with the reason.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';

interface PendingDelete {
  receiptHandle: string;
  resolve(): void;
  reject(error: Error): void;
}

const SQS_BATCH_LIMIT = 10;

/** Collects deletes for a few milliseconds so that one call deletes up to ten messages (SQS's own per-call cost dominates). */
export class DeleteBatcher {
  private pending: PendingDelete[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly lingerMs = 20,
  ) {}

  delete(receiptHandle: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ receiptHandle, resolve, reject });
      if (this.pending.length >= SQS_BATCH_LIMIT) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) void this.send(this.pending.splice(0, SQS_BATCH_LIMIT));
  }

  private async send(batch: PendingDelete[]): Promise<void> {
    try {
      const result = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((entry, index) => ({ Id: String(index), ReceiptHandle: entry.receiptHandle })),
        }),
      );
      const failed = new Map((result.Failed ?? []).map((failure) => [failure.Id, `${failure.Code ?? 'failed'}: ${failure.Message ?? ''}`]));
      batch.forEach((entry, index) => {
        const failure = failed.get(String(index));
        if (failure) entry.reject(new Error(`delete failed: ${failure}`));
        else entry.resolve();
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error as Error);
    }
  }
}

/**
 * Extends the visibility of a held message every half timeout, so a slow
 * hand-off (or one waiting out an outage) is not redelivered to someone else
 * meanwhile. Returns the function that stops extending.
 */
export function keepInvisible(
  sqs: SQSClient,
  queueUrl: string,
  message: Message,
  visibilityTimeoutSeconds: number,
  onError: (error: unknown) => void,
): () => void {
  const timer = setInterval(() => {
    sqs
      .send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: visibilityTimeoutSeconds }))
      .catch(onError);
  }, (visibilityTimeoutSeconds * 1000) / 2);
  timer.unref();
  return () => clearInterval(timer);
}

/** Lets another receiver take the message after `seconds` (0: at once). */
export async function releaseMessage(sqs: SQSClient, queueUrl: string, message: Message, seconds: number): Promise<void> {
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: seconds }));
}

/** Copies the message, body unchanged, to the dead-letter queue; the attributes say why and where it came from. */
export async function sendToDeadLetterQueue(sqs: SQSClient, deadLetterQueueUrl: string, message: Message, reason: string, receives: number): Promise<void> {
  const text = (value: string) => ({ DataType: 'String', StringValue: value });
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: deadLetterQueueUrl,
      MessageBody: message.Body ?? '',
      MessageAttributes: {
        reason: text(reason.slice(0, 1000)),
        sourceMessageId: text(message.MessageId ?? ''),
        receiveCount: { DataType: 'Number', StringValue: String(receives) },
      },
    }),
  );
}
