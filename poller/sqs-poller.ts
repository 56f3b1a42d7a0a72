/**
 * Reads the notification queue with bounded concurrency and settles every
 * message exactly one way: handed off (or recognised as a duplicate, or
 * recorded as ignored) and then deleted; dead-lettered with its reason; or left
 * for redelivery. Nothing is deleted before its effect is durable.
 *
 * Flow control: a few receivers long-poll batches of up to ten while fewer than
 * `maxInFlight` messages are held. A failed hand-off keeps its message
 * invisible and retries with jittered backoff; while any hand-off is failing,
 * no new messages are received, so an outage of Temporal or the store slows
 * intake down instead of spinning or burning receive counts.
 */
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Db } from 'mongodb';
import { recordUnprocessed, markForwarded } from '../lib/store/marketplace';
import type { Tracing } from '../lib/telemetry/tracing';
import { isPermanentFailure } from './failures';
import type { HandOff, HandOffResult } from './hand-off';
import { classifyMessage, type IgnoredNotification, type MarketplaceNotification, type TrustPolicy } from './messages';
import { rawDeliveryId } from './raw-delivery-id';
import { RecentIds } from './recent-ids';
import type { DeadLetterReason, PollerMetrics } from './metrics';
import { DeadLetterBatcher, DeleteBatcher, keepInvisible, refusedBySqs, releaseMessage } from './queue-actions';

export interface PollerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  deadLetterQueueUrl: string;
  db: Db;
  trust: TrustPolicy;
  handOff: HandOff;
  metrics: PollerMetrics;
  log: PollerLog;
  /** The queue's visibility timeout: held messages are extended every half of it. */
  visibilityTimeoutSeconds: number;
  waitTimeSeconds?: number;
  batchSize?: number;
  receivers?: number;
  maxInFlight?: number;
  /** Attempts before a hand-off failing for a permanent reason is dead-lettered. */
  maxPermanentFailures?: number;
  /**
   * The receives a message gets (the redrive policy's maxReceiveCount). A
   * message whose signing certificate is still unavailable on its last receive
   * is dead-lettered by us, with the reason, instead of silently by SQS.
   */
  maxReceives?: number;
  /** Delay before an envelope whose certificate could not be fetched comes back: doubles per receive. */
  certificateRetry?: { initialSeconds: number; maxSeconds: number };
  backoff?: { initialMs: number; maxMs: number };
  /** How long shutdown waits for held messages before leaving them to redelivery. */
  shutdownTimeoutMs?: number;
  /** A span per message settled, when tracing is on; the hand-off's Temporal calls are its children. */
  traceMessage?: Tracing['traceMessage'];
}

type Settled = 'handed-off' | 'duplicate' | 'ignored' | 'dead-lettered' | 'released';

const BODY_KEPT = 4096;
/** How long a message the dead-letter queue refused waits before SQS may hand it out again, towards its redrive. */
const REDRIVE_DELAY_SECONDS = 60;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

const jittered = (ms: number) => ms / 2 + Math.random() * (ms / 2);

/**
 * An event cannot have been sent after it was put on the queue: its claimed
 * time (an EventBridge `time`, an SNS `Timestamp`) is clamped to the SQS
 * SentTimestamp, which SQS itself stamps, so no body can date itself into
 * the future and outrank every later notification.
 */
function notBeforeQueued(message: Message, notification: MarketplaceNotification): MarketplaceNotification {
  const queuedAt = Number(message.Attributes?.SentTimestamp);
  if (!Number.isFinite(queuedAt) || !notification.sentAt || notification.sentAt.getTime() <= queuedAt) return notification;
  return { ...notification, sentAt: new Date(queuedAt) };
}

export class SqsNotificationPoller {
  private readonly inFlight = new Set<Promise<Settled>>();
  /** Hand-offs per notification id in progress here: a concurrent duplicate waits for the first instead of signalling again. */
  private readonly handOffs = new Map<string, Promise<HandOffResult>>();
  private readonly recent = new RecentIds();
  private readonly deletes: DeleteBatcher;
  private readonly deadLetters: DeadLetterBatcher;
  private failingHandOffs = 0;
  /** Room taken by receives under way, so that concurrent receivers never hold more than maxInFlight together. */
  private reserved = 0;
  private capacityWaiters: Array<() => void> = [];
  private stopping = new AbortController();

  constructor(private readonly options: PollerOptions) {
    this.deletes = new DeleteBatcher(options.sqs, options.queueUrl);
    this.deadLetters = new DeadLetterBatcher(options.sqs, options.deadLetterQueueUrl);
  }

  private get maxInFlight() {
    return this.options.maxInFlight ?? 50;
  }

  /** Receives until `signal` aborts, then finishes (or, after the shutdown timeout, releases) the messages it holds. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.stopping.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    const receivers = Array.from({ length: this.options.receivers ?? 2 }, () => this.receiveLoop());
    await Promise.all(receivers);
    const deadline = new AbortController();
    const drained = Promise.all(this.inFlight).then(() => true);
    const timedOut = sleep(this.options.shutdownTimeoutMs ?? 25_000, deadline.signal).then(() => false);
    const finished = await Promise.race([drained, timedOut]);
    deadline.abort();
    if (!finished) this.options.log.warn({ held: this.inFlight.size }, 'shutdown timeout: the messages still held will be redelivered');
    this.deadLetters.flush();
    this.deletes.flush();
    signal.removeEventListener('abort', onAbort);
  }

  private async receiveLoop(): Promise<void> {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let delay = initialMs;
    const stop = this.stopping.signal;
    const batch = this.options.batchSize ?? 10;
    while (!stop.aborted) {
      await this.claimCapacity(batch);
      if (stop.aborted) break;
      try {
        await this.receiveBatch();
        delay = initialMs;
      } catch (error) {
        if (stop.aborted) break;
        this.options.log.error({ err: error }, 'receiving from the notification queue failed');
        await sleep(jittered(delay), stop);
        delay = Math.min(delay * 2, maxMs);
      } finally {
        this.reserved -= batch;
        this.wakeReceivers();
      }
    }
  }

  /**
   * Waits for room for a batch and no hand-off failing (during an outage only
   * the held messages are retried), then claims the room in the same step, so
   * that concurrent receivers never hold more than maxInFlight together.
   */
  private async claimCapacity(batch: number): Promise<void> {
    while (!this.stopping.signal.aborted && (this.inFlight.size + this.reserved + batch > this.maxInFlight || this.failingHandOffs > 0)) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.stopping.signal.removeEventListener('abort', wake);
          resolve();
        };
        this.capacityWaiters.push(wake);
        this.stopping.signal.addEventListener('abort', wake, { once: true });
      });
    }
    if (!this.stopping.signal.aborted) this.reserved += batch;
  }

  private wakeReceivers(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }

  private async receiveBatch(): Promise<void> {
    const { sqs, queueUrl, metrics, traceMessage } = this.options;
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: this.options.batchSize ?? 10,
        WaitTimeSeconds: this.options.waitTimeSeconds ?? 20,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
      { abortSignal: this.stopping.signal },
    );
    for (const message of Messages) {
      const settled = traceMessage ? traceMessage(queueUrl, message.MessageId, () => this.settle(message)) : this.settle(message);
      this.inFlight.add(settled);
      metrics.inFlight.set(this.inFlight.size);
      void settled
        .catch((error: unknown) => {
          // Every failure is handled in settle(); this is the last guard: the message is redelivered after its timeout.
          this.options.log.error({ err: error, sqsMessageId: message.MessageId }, 'settling the message failed; it will be redelivered');
        })
        .finally(() => {
          this.inFlight.delete(settled);
          metrics.inFlight.set(this.inFlight.size);
          this.wakeReceivers();
        });
    }
  }

  /** Holds the message invisible until it is settled one way or another. */
  private async settle(message: Message): Promise<Settled> {
    const { sqs, queueUrl, visibilityTimeoutSeconds, log, metrics } = this.options;
    const receivedAt = process.hrtime.bigint();
    const stopExtending = keepInvisible(sqs, queueUrl, message, visibilityTimeoutSeconds, (error) =>
      log.warn({ err: error, sqsMessageId: message.MessageId }, 'could not extend visibility; the message may be redelivered'),
    );
    try {
      const settled = await this.settleWithRetries(message);
      if (settled === 'handed-off' || settled === 'duplicate' || settled === 'ignored') {
        metrics.handOffSeconds.observe(Number(process.hrtime.bigint() - receivedAt) / 1e9);
      }
      return settled;
    } finally {
      stopExtending();
    }
  }

  private async settleWithRetries(message: Message): Promise<Settled> {
    const { log, metrics } = this.options;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const maxPermanent = this.options.maxPermanentFailures ?? 5;
    let permanentFailures = 0;
    let failing = false;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.settleOnce(message, attempt === 1);
        } catch (error) {
          // Our hold on the message lapsed (SQS caps it at 12 hours): it is someone else's now, and its redelivery is a duplicate.
          if (/ReceiptHandleIsInvalid/.test((error as Error).message)) return 'released';
          metrics.handOffFailures.inc();
          const permanent = isPermanentFailure(error);
          if (permanent) permanentFailures++;
          const fields = { err: error, sqsMessageId: message.MessageId, attempt, permanent };
          if (permanentFailures >= maxPermanent) {
            log.error(fields, 'hand-off keeps failing for a reason waiting will not cure; dead-lettering the message');
            try {
              return await this.deadLetter(message, 'hand-off-failed', `hand-off failed ${attempt} times: ${(error as Error).message}`);
            } catch (deadLetterError) {
              log.warn({ err: deadLetterError, sqsMessageId: message.MessageId }, 'dead-lettering failed; retrying with backoff');
            }
          }
          if (!failing) {
            failing = true;
            if (this.failingHandOffs++ === 0) metrics.intakePauses.inc();
          }
          if (this.stopping.signal.aborted) {
            log.warn(fields, 'hand-off failed during shutdown; the message will be redelivered');
            await releaseMessage(this.options.sqs, this.options.queueUrl, message, 0).catch(() => undefined);
            return 'released';
          }
          log.warn(fields, 'hand-off failed; holding the message and retrying with backoff');
          await sleep(jittered(Math.min(initialMs * 2 ** (attempt - 1), maxMs)), this.stopping.signal);
        }
      }
    } finally {
      if (failing) {
        this.failingHandOffs--;
        this.wakeReceivers();
      }
    }
  }

  /** One attempt; throws when something we depend on failed, so the caller can retry. */
  private async settleOnce(message: Message, firstAttempt: boolean): Promise<Settled> {
    const { trust, log, metrics } = this.options;
    // Retries of a held message are not new receipts.
    const countReceived = (format: string) => firstAttempt && metrics.received.inc({ format });
    const received = await classifyMessage(message.Body ?? '', message.MessageId ?? '', trust);
    switch (received.kind) {
      case 'poison':
        countReceived('unknown');
        return this.deadLetter(message, 'poison', received.reason);
      case 'untrusted': {
        const receives = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
        const lastReceive = receives >= (this.options.maxReceives ?? 5);
        if (received.retryable && !lastReceive) return this.releaseForLater(message, received.reason);
        countReceived('untrusted');
        metrics.verificationFailed.inc({ check: received.check });
        const detail = received.retryable ? `still unverifiable after ${receives} receives: ${received.reason}` : received.reason;
        return this.deadLetter(message, 'untrusted', detail);
      }
      case 'ignored': {
        countReceived(received.format);
        await this.recordIgnored(message, received);
        await this.deletes.delete(message.ReceiptHandle!);
        metrics.ignored.inc();
        log.info({ messageId: received.messageId, format: received.format, reason: received.reason }, 'notification recorded and ignored');
        return 'ignored';
      }
      case 'event': {
        const notification =
          received.notification.format === 'sns-raw' ? await this.keyRawDelivery(message, received.notification) : notBeforeQueued(message, received.notification);
        countReceived(notification.format);
        const result = await this.handOffOnce(notification);
        await this.deletes.delete(message.ReceiptHandle!);
        if (result === 'duplicate') metrics.duplicates.inc();
        else metrics.handedOff.inc({ action: notification.action });
        log.info({ messageId: notification.messageId, format: notification.format, action: notification.action, result }, 'notification handed off');
        return result === 'duplicate' ? 'duplicate' : 'handed-off';
      }
    }
  }

  /**
   * The signing certificate could not be fetched. That is about this message's
   * certificate URL, not an outage of ours, so it does not pause intake: the
   * message comes back later, and the redrive policy bounds how often.
   */
  private async releaseForLater(message: Message, reason: string): Promise<Settled> {
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const { initialSeconds, maxSeconds } = this.options.certificateRetry ?? { initialSeconds: 30, maxSeconds: 900 };
    const seconds = Math.min(initialSeconds * 2 ** (receives - 1), maxSeconds);
    this.options.log.warn({ sqsMessageId: message.MessageId, receives, reason, retryInSeconds: seconds }, 'cannot verify the envelope yet; it will be redelivered');
    await releaseMessage(this.options.sqs, this.options.queueUrl, message, seconds);
    return 'released';
  }

  private async keyRawDelivery(message: Message, notification: MarketplaceNotification): Promise<MarketplaceNotification> {
    const sentAtMs = Number(message.Attributes?.SentTimestamp ?? Date.now());
    const messageId = await rawDeliveryId(this.options.db, message.Body ?? '', sentAtMs, (id) => this.recent.has(id) || this.handOffs.has(id));
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
  private async copyToDeadLetterQueue(message: Message, why: string, receives: number): Promise<boolean> {
    try {
      await this.deadLetters.send(message, why, receives);
      return true;
    } catch (error) {
      if (!refusedBySqs(error)) throw error;
      this.options.log.error({ err: error, sqsMessageId: message.MessageId, reason: why }, 'the dead-letter queue refused the copy; leaving the message to the redrive policy');
      this.options.metrics.deadLetterRefused.inc();
      await releaseMessage(this.options.sqs, this.options.queueUrl, message, REDRIVE_DELAY_SECONDS);
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
  private async deadLetter(message: Message, reason: DeadLetterReason, detail: string): Promise<Settled> {
    const { db, metrics, log } = this.options;
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const why = `${reason}: ${detail}`;
    if (reason === 'untrusted') {
      if (!(await this.copyToDeadLetterQueue(message, why, receives))) return 'released';
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
        if (!(await this.copyToDeadLetterQueue(message, why, receives))) return 'released';
        await markForwarded(db, record._id);
        metrics.deadLettered.inc({ reason });
      }
    }
    await this.deletes.delete(message.ReceiptHandle!);
    log.warn({ sqsMessageId: message.MessageId, receives, reason, detail }, 'message moved to the dead-letter queue');
    return 'dead-lettered';
  }
}
