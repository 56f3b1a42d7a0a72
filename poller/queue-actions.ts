/**
 * The three things the poller does to a message it holds: delete it, keep it
 * invisible while a slow hand-off runs, or copy it to the dead-letter queue
 * with the reason. Deletes and copies go out batched, up to 10 per call.
 */
import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  SendMessageBatchCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';

interface Pending<Entry> {
  entry: Entry;
  resolve(): void;
  reject(error: Error): void;
}

const SQS_BATCH_LIMIT = 10;
/** SQS's classic payload limit per call (newer queues allow 1 MiB; emulators and older queues do not). */
const SQS_BATCH_BYTES = 256 * 1024;

/** One entry of a batch call that SQS refused; `senderFault`: it will refuse it again. */
export class SqsEntryFailed extends Error {
  constructor(
    message: string,
    readonly senderFault: boolean,
  ) {
    super(message);
    this.name = 'SqsEntryFailed';
  }
}

/** SQS refused the request itself (a message too large, an invalid attribute): sending it again cannot help. */
export function refusedBySqs(error: unknown): boolean {
  if (error instanceof SqsEntryFailed) return error.senderFault;
  return (error as { $fault?: string } | undefined)?.$fault === 'client';
}

/**
 * Collects entries for a few milliseconds so that one SQS batch call carries
 * up to ten (SQS's own per-call cost dominates). Each caller learns whether
 * its own entry succeeded.
 */
class SqsBatcher<Entry> {
  private pending: Array<Pending<Entry>> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Sends one batch; returns the failures by index ("0".."9"). */
    private readonly sendBatch: (entries: Entry[]) => Promise<Map<string, SqsEntryFailed>>,
    /** The bytes an entry adds to a call, when entries are large enough to matter. */
    private readonly sizeOf: (entry: Entry) => number = () => 0,
    private readonly lingerMs = 20,
  ) {}

  add(entry: Entry): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.bytesPending() + this.sizeOf(entry) > SQS_BATCH_BYTES) this.flush();
      this.pending.push({ entry, resolve, reject });
      if (this.pending.length >= SQS_BATCH_LIMIT) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) void this.send(this.pending.splice(0, SQS_BATCH_LIMIT));
  }

  private bytesPending(): number {
    return this.pending.reduce((sum, pending) => sum + this.sizeOf(pending.entry), 0);
  }

  private async send(batch: Array<Pending<Entry>>): Promise<void> {
    try {
      const failed = await this.sendBatch(batch.map((pending) => pending.entry));
      batch.forEach((pending, index) => {
        const failure = failed.get(String(index));
        if (failure) pending.reject(failure);
        else pending.resolve();
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error as Error);
    }
  }
}

const failuresOf = (
  failed: Array<{ Id?: string; Code?: string; Message?: string; SenderFault?: boolean }> | undefined,
  what: string,
) =>
  new Map(
    (failed ?? []).map((failure) => [
      failure.Id ?? '',
      new SqsEntryFailed(
        `${what} failed: ${failure.Code ?? 'failed'}: ${failure.Message ?? ''}`,
        failure.SenderFault === true,
      ),
    ]),
  );

/** Deletes, ten per DeleteMessageBatch call. */
export class DeleteBatcher {
  private readonly batcher: SqsBatcher<string>;

  constructor(sqs: SQSClient, queueUrl: string, lingerMs?: number) {
    this.batcher = new SqsBatcher(
      async (receiptHandles) => {
        const result = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: receiptHandles.map((ReceiptHandle, index) => ({ Id: String(index), ReceiptHandle })),
          }),
        );
        return failuresOf(result.Failed, 'delete');
      },
      undefined,
      lingerMs,
    );
  }

  delete(receiptHandle: string): Promise<void> {
    return this.batcher.add(receiptHandle);
  }

  flush(): void {
    this.batcher.flush();
  }
}

/** Copies to the dead-letter queue, ten per SendMessageBatch call: a flood of forged messages costs a tenth of the calls. */
export class DeadLetterBatcher {
  private readonly batcher: SqsBatcher<{ message: Message; reason: string; receives: number }>;

  constructor(sqs: SQSClient, deadLetterQueueUrl: string, lingerMs?: number) {
    this.batcher = new SqsBatcher(
      async (entries) => {
        const result = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: deadLetterQueueUrl,
            Entries: entries.map(({ message, reason, receives }, index) => ({
              Id: String(index),
              ...deadLetterCopy(message, reason, receives),
            })),
          }),
        );
        return failuresOf(result.Failed, 'dead-lettering');
      },
      ({ message }) => Math.min(Buffer.byteLength(message.Body ?? ''), COPY_BODY_BYTES) + COPY_ATTRIBUTE_BYTES,
      lingerMs,
    );
  }

  send(message: Message, reason: string, receives: number): Promise<void> {
    return this.batcher.add({ message, reason, receives });
  }

  flush(): void {
    this.batcher.flush();
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
  const timer = setInterval(
    () => {
      sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: visibilityTimeoutSeconds,
          }),
        )
        .catch(onError);
    },
    (visibilityTimeoutSeconds * 1000) / 2,
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** Lets another receiver take the message after `seconds` (0: at once). */
export async function releaseMessage(
  sqs: SQSClient,
  queueUrl: string,
  message: Message,
  seconds: number,
): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: message.ReceiptHandle,
      VisibilityTimeout: seconds,
    }),
  );
}

/**
 * The copy keeps a body up to 64 KiB, which is far more than any notification
 * AWS sends: a larger one (forged, most likely) is cut there, with its size
 * and hash, so that no body is ever too large for the dead-letter queue.
 */
const COPY_BODY_BYTES = 64 * 1024;
/** Room for the attributes below. */
const COPY_ATTRIBUTE_BYTES = 2048;

/** The message's body (unchanged unless over COPY_BODY_BYTES), with attributes that say why and where it came from. */
function deadLetterCopy(message: Message, reason: string, receives: number) {
  const text = (value: string) => ({ DataType: 'String', StringValue: value });
  const body = Buffer.from(message.Body ?? '');
  const truncated = body.length > COPY_BODY_BYTES;
  return {
    MessageBody: truncated
      ? body
          .subarray(0, COPY_BODY_BYTES)
          .toString('utf8')
          .replace(/\uFFFD$/, '')
      : body.toString('utf8'),
    MessageAttributes: {
      reason: text(reason.slice(0, 1000)),
      sourceMessageId: text(message.MessageId ?? ''),
      receiveCount: { DataType: 'Number', StringValue: String(receives) },
      ...(truncated
        ? {
            bodyBytes: { DataType: 'Number', StringValue: String(body.length) },
            bodySha256: text(createHash('sha256').update(body).digest('hex')),
          }
        : {}),
    },
  };
}
