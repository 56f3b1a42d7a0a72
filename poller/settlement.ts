/**
 * What one notification message becomes. Every message is settled exactly one
 * way: handed off (or recognised as a duplicate, or recorded as ignored) and
 * then deleted; dead-lettered with its reason; or left for redelivery. Nothing
 * is deleted before its effect is durable. Holding the message meanwhile, and
 * retrying when something we depend on fails, is the queue lease's job
 * (queue-lease.ts).
 */
import type { Message } from '@aws-sdk/client-sqs';
import type { Db } from 'mongodb';
import { recordUnprocessed, markForwarded } from '../lib/store/marketplace';
import type { HandOff, HandOffResult } from './hand-off';
import { classifyMessage, type IgnoredNotification, type MarketplaceNotification, type TrustPolicy } from './messages';
import type { DeadLetterReason, PollerMetrics } from './metrics';
import { refusedBySqs } from './queue-actions';
import type { HeldMessage, LeaseHandler, PollerLog } from './queue-lease';
import { rawDeliveryId } from './raw-delivery-id';
import { RecentIds } from './recent-ids';

export interface SettlementOptions {
  db: Db;
  trust: TrustPolicy;
  handOff: HandOff;
  metrics: PollerMetrics;
  log: PollerLog;
  /**
   * The receives a message gets (the redrive policy's maxReceiveCount). A
   * message whose signing certificate is still unavailable on its last receive
   * is dead-lettered by us, with the reason, instead of silently by SQS.
   */
  maxReceives?: number;
  /** Delay before an envelope whose certificate could not be fetched comes back: doubles per receive. */
  certificateRetry?: { initialSeconds: number; maxSeconds: number };
}

export type Settled = 'handed-off' | 'duplicate' | 'ignored' | 'dead-lettered' | 'released';

const BODY_KEPT = 4096;
/** How long a message the dead-letter queue refused waits before SQS may hand it out again, towards its redrive. */
const REDRIVE_DELAY_SECONDS = 60;

/**
 * An event cannot have been sent after it was put on the queue: its claimed
 * time (an EventBridge `time`, an SNS `Timestamp`) is clamped to the SQS
 * SentTimestamp, which SQS itself stamps, so no body can date itself into
 * the future and outrank every later notification.
 */
function notBeforeQueued(message: Message, notification: MarketplaceNotification): MarketplaceNotification {
  const queuedAt = Number(message.Attributes?.SentTimestamp);
  if (!Number.isFinite(queuedAt) || !notification.sentAt || notification.sentAt.getTime() <= queuedAt)
    return notification;
  return { ...notification, sentAt: new Date(queuedAt) };
}

const receivesOf = (message: Message) => Number(message.Attributes?.ApproximateReceiveCount ?? '1');

export class NotificationSettlement implements LeaseHandler<Settled> {
  /** Hand-offs per notification id in progress here: a concurrent duplicate waits for the first instead of signalling again. */
  private readonly handOffs = new Map<string, Promise<HandOffResult>>();
  private readonly recent = new RecentIds();

  constructor(private readonly options: SettlementOptions) {}

  effectDurable(outcome: Settled): boolean {
    return outcome === 'handed-off' || outcome === 'duplicate' || outcome === 'ignored';
  }

  giveUp(held: HeldMessage, attempts: number, error: Error): Promise<Settled> {
    return this.deadLetter(held, 'hand-off-failed', `hand-off failed ${attempts} times: ${error.message}`);
  }

  async settle(held: HeldMessage): Promise<Settled> {
    const { trust, log, metrics } = this.options;
    const { message } = held;
    // Retries of a held message are not new receipts.
    const countReceived = (format: string) => held.firstAttempt && metrics.received.inc({ format });
    const received = await classifyMessage(message.Body ?? '', message.MessageId ?? '', trust);
    switch (received.kind) {
      case 'poison':
        countReceived('unknown');
        return this.deadLetter(held, 'poison', received.reason);
      case 'untrusted': {
        const receives = receivesOf(message);
        const lastReceive = receives >= (this.options.maxReceives ?? 5);
        if (received.retryable && !lastReceive) return this.releaseForLater(held, received.reason);
        countReceived('untrusted');
        metrics.verificationFailed.inc({ check: received.check });
        const detail = received.retryable
          ? `still unverifiable after ${receives} receives: ${received.reason}`
          : received.reason;
        return this.deadLetter(held, 'untrusted', detail);
      }
      case 'ignored': {
        countReceived(received.format);
        await this.recordIgnored(message, received);
        await held.delete();
        metrics.ignored.inc();
        log.info(
          { messageId: received.messageId, format: received.format, reason: received.reason },
          'notification recorded and ignored',
        );
        return 'ignored';
      }
      case 'event': {
        const notification =
          received.notification.format === 'sns-raw'
            ? await this.keyRawDelivery(message, received.notification)
            : notBeforeQueued(message, received.notification);
        countReceived(notification.format);
        const result = await this.handOffOnce(notification);
        await held.delete();
        if (result === 'duplicate') metrics.duplicates.inc();
        else metrics.handedOff.inc({ action: notification.action });
        log.info(
          { messageId: notification.messageId, format: notification.format, action: notification.action, result },
          'notification handed off',
        );
        return result === 'duplicate' ? 'duplicate' : 'handed-off';
      }
    }
  }

  /**
   * The signing certificate could not be fetched. That is about this message's
   * certificate URL, not an outage of ours, so it does not pause intake: the
   * message comes back later, and the redrive policy bounds how often.
   */
  private async releaseForLater(held: HeldMessage, reason: string): Promise<Settled> {
    const receives = receivesOf(held.message);
    const { initialSeconds, maxSeconds } = this.options.certificateRetry ?? { initialSeconds: 30, maxSeconds: 900 };
    const seconds = Math.min(initialSeconds * 2 ** (receives - 1), maxSeconds);
    this.options.log.warn(
      { sqsMessageId: held.message.MessageId, receives, reason, retryInSeconds: seconds },
      'cannot verify the envelope yet; it will be redelivered',
    );
    await held.release(seconds);
    return 'released';
  }

  private async keyRawDelivery(
    message: Message,
    notification: MarketplaceNotification,
  ): Promise<MarketplaceNotification> {
    const sentAtMs = Number(message.Attributes?.SentTimestamp ?? Date.now());
    const messageId = await rawDeliveryId(
      this.options.db,
      message.Body ?? '',
      sentAtMs,
      (id) => this.recent.has(id) || this.handOffs.has(id),
    );
    return { ...notification, messageId, sentAt: new Date(sentAtMs) };
  }

  private async handOffOnce(notification: MarketplaceNotification): Promise<HandOffResult> {
    const id = notification.messageId;
    if (this.recent.has(id)) return 'duplicate';
    const running = this.handOffs.get(id);
    // Same id already being handed off here: its outcome is ours, as a duplicate.
    if (running) return running.then(() => 'duplicate' as const);
    const handOff = this.options.handOff(notification).finally(() => this.handOffs.delete(id));
    this.handOffs.set(id, handOff);
    const result = await handOff;
    this.recent.add(id);
    return result;
  }

  private async recordIgnored(message: Message, ignored: IgnoredNotification): Promise<void> {
    const { messageId, format, reason, productCode, awsAccountId, customerIdentifier, detailType, sentAt } = ignored;
    await recordUnprocessed(this.options.db, {
      _id: messageId,
      ...{ format, reason, productCode, awsAccountId, customerIdentifier, detailType, sentAt },
      outcome: 'ignored',
      sqsMessageId: message.MessageId ?? '',
      recordedAt: new Date(),
    });
  }

  /**
   * False when SQS refuses the copy for good (a dead-letter queue that takes
   * smaller messages, say): the message is then left to the queue's own
   * redrive policy, a minute at a time, so that no body can hold intake by
   * being impossible to dead-letter. An SQS outage still throws, to be waited out.
   */
  private async copyToDeadLetterQueue(held: HeldMessage, why: string, receives: number): Promise<boolean> {
    try {
      await held.copyToDeadLetterQueue(why, receives);
      return true;
    } catch (error) {
      if (!refusedBySqs(error)) throw error;
      this.options.log.error(
        { err: error, sqsMessageId: held.message.MessageId, reason: why },
        'the dead-letter queue refused the copy; leaving the message to the redrive policy',
      );
      this.options.metrics.deadLetterRefused.inc();
      await held.release(REDRIVE_DELAY_SECONDS);
      return false;
    }
  }

  /**
   * Copies the message to the dead-letter queue with the reason, then deletes
   * it. Poison is recorded first, so a redelivery after a crash finds it
   * already forwarded and only deletes. An untrusted message costs no store
   * write at all: a flood of forged messages must neither fill the store nor
   * take the writes genuine notifications need (FerretDB's SQLite backend
   * serialises them). Its dead-letter copy is the record; a crash between
   * copy and delete at worst copies it twice.
   */
  private async deadLetter(held: HeldMessage, reason: DeadLetterReason, detail: string): Promise<Settled> {
    const { db, metrics, log } = this.options;
    const { message } = held;
    const receives = receivesOf(message);
    const why = `${reason}: ${detail}`;
    if (reason === 'untrusted') {
      if (!(await this.copyToDeadLetterQueue(held, why, receives))) return 'released';
      metrics.deadLettered.inc({ reason });
    } else {
      const record = await recordUnprocessed(db, {
        _id: `sqs:${message.MessageId}`,
        outcome: 'dead-lettered',
        reason: why,
        sqsMessageId: message.MessageId ?? '',
        receives,
        body: (message.Body ?? '').slice(0, BODY_KEPT),
        recordedAt: new Date(),
      });
      if (!record.forwardedAt) {
        if (!(await this.copyToDeadLetterQueue(held, why, receives))) return 'released';
        await markForwarded(db, record._id);
        metrics.deadLettered.inc({ reason });
      }
    }
    await held.delete();
    log.warn({ sqsMessageId: message.MessageId, receives, reason, detail }, 'message moved to the dead-letter queue');
    return 'dead-lettered';
  }
}
