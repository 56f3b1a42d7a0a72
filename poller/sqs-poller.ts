/**
 * Long-polls the notification queue and deletes each message only after its
 * hand-off succeeded. A failed hand-off leaves the message to reappear after
 * the visibility timeout; a message that can never be parsed is left too, and
 * the queue's redrive policy moves it to the dead-letter queue after
 * maxReceiveCount receives, so it can neither be lost nor loop forever.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { parseNotification, type MarketplaceNotification } from './messages';

export interface PollerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  waitTimeSeconds: number;
  maxMessages: number;
  handOff(notification: MarketplaceNotification): Promise<string>;
  log: PollerLog;
  /** Backoff after a failed receive or a batch whose hand-offs all failed. */
  backoff?: { initialMs: number; maxMs: number };
}

export interface BatchOutcome {
  received: number;
  handedOff: number;
  failed: number;
  poison: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class SqsNotificationPoller {
  constructor(private readonly options: PollerOptions) {}

  /** Polls until `signal` aborts, then returns once the batch in flight is finished. */
  async run(signal: AbortSignal): Promise<void> {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let delay = initialMs;
    while (!signal.aborted) {
      let outcome: BatchOutcome | undefined;
      try {
        outcome = await this.pollOnce(signal);
      } catch (error) {
        if (signal.aborted) break;
        this.options.log.error({ err: error }, 'receiving from the notification queue failed');
      }
      const stalled = outcome === undefined || (outcome.failed > 0 && outcome.handedOff === 0);
      if (!stalled) {
        delay = initialMs;
        continue;
      }
      // Jittered exponential backoff: an outage of Temporal, the store or SQS slows us down instead of spinning.
      await sleep(delay / 2 + Math.random() * (delay / 2), signal);
      delay = Math.min(delay * 2, maxMs);
    }
  }

  async pollOnce(signal?: AbortSignal): Promise<BatchOutcome> {
    const { sqs, queueUrl, waitTimeSeconds, maxMessages } = this.options;
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: maxMessages,
        WaitTimeSeconds: waitTimeSeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: signal },
    );
    const results = await Promise.all(Messages.map((message) => this.process(message)));
    return {
      received: Messages.length,
      handedOff: results.filter((r) => r === 'handed-off').length,
      failed: results.filter((r) => r === 'failed').length,
      poison: results.filter((r) => r === 'poison').length,
    };
  }

  private async process(message: Message): Promise<'handed-off' | 'failed' | 'poison'> {
    const { log, handOff, sqs, queueUrl } = this.options;
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const parsed = parseNotification(message.Body ?? '', message.MessageId ?? '');
    if (!parsed.ok) {
      log.warn({ sqsMessageId: message.MessageId, receives, reason: parsed.reason }, 'unreadable notification left for the dead-letter queue');
      return 'poison';
    }
    const { notification } = parsed;
    try {
      const result = await handOff(notification);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
      log.info({ messageId: notification.messageId, action: notification.action, result }, 'notification handed off');
      return 'handed-off';
    } catch (error) {
      log.warn({ err: error, messageId: notification.messageId, receives }, 'hand-off failed; the message will be redelivered');
      return 'failed';
    }
  }
}
