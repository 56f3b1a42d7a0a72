/**
 * Holds SQS messages while a handler settles them, with bounded concurrency.
 * What a message becomes is the handler's business (see settlement.ts); this
 * module only guarantees that each one is held until the handler says how it
 * ended, and that holding never turns into spinning.
 *
 * Flow control: a few receivers long-poll batches of up to ten while fewer than
 * `maxInFlight` messages are being settled. A message whose handler has asked
 * for its delete no longer counts: its effect is durable and the batched delete
 * only waits for company, which must not hold back the next receive. As many
 * again may wait for their delete, no more, so an SQS
 * that stops deleting still stops intake. A failed attempt keeps its message
 * invisible and retries with jittered backoff; while any attempt is failing,
 * no new messages are received, so an outage of Temporal or the store slows
 * intake down instead of spinning or burning receive counts.
 */
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Tracing } from '../lib/telemetry/tracing';
import { isPermanentFailure } from './failures';
import type { PollerMetrics } from './metrics';
import { DeadLetterBatcher, DeleteBatcher, keepInvisible, releaseMessage } from './queue-actions';

export interface PollerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What a handler may do with the message it is given: each ends the lease one way. */
export interface HeldMessage {
  readonly message: Message;
  /** False on the retries of a held message, which are not new receipts. */
  readonly firstAttempt: boolean;
  delete(): Promise<void>;
  /** Lets another receiver take the message after `seconds` (0: at once). */
  release(seconds: number): Promise<void>;
  /** Sends a copy, with `reason` attached; the message itself stays held until deleted or released. */
  copyToDeadLetterQueue(reason: string, receives: number): Promise<void>;
}

export interface LeaseHandler<Outcome extends string> {
  /** One attempt; throws when something it depends on failed, so the lease can hold the message and retry. */
  settle(held: HeldMessage): Promise<Outcome>;
  /** Attempts keep failing for a reason waiting will not cure: end the lease another way (dead-letter the message). */
  giveUp(held: HeldMessage, attempts: number, error: Error): Promise<Outcome>;
  /** Whether the message's effect is durable after this outcome: only those are timed from receipt. */
  effectDurable(outcome: Outcome): boolean;
}

export type LeaseMetrics = Pick<PollerMetrics, 'inFlight' | 'handOffFailures' | 'intakePauses' | 'handOffSeconds'>;

export interface QueueLeaseOptions {
  sqs: SQSClient;
  queueUrl: string;
  deadLetterQueueUrl: string;
  metrics: LeaseMetrics;
  log: PollerLog;
  /** The queue's visibility timeout: held messages are extended every half of it. */
  visibilityTimeoutSeconds: number;
  waitTimeSeconds?: number;
  batchSize?: number;
  receivers?: number;
  maxInFlight?: number;
  /** Attempts failing for a permanent reason before the handler is told to give up. */
  maxPermanentFailures?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** How long shutdown waits for held messages before leaving them to redelivery. */
  shutdownTimeoutMs?: number;
  /** A span per message settled, when tracing is on; the handler's calls are its children. */
  traceMessage?: Tracing['traceMessage'];
}

/** The lease ended without the handler: our hold lapsed, or shutdown came while an attempt was failing. */
export type Released = 'released';

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

/**
 * How long a delete waits for nine others. A waiting delete holds no slot, so waiting costs no intake; at
 * 300 messages a second, 20 ms sent batches of about 7. In bench/notifications (bound by its 2 cores) the
 * two changes together moved the ratio within noise (0.797–0.814 before, 0.807–0.829 after) and took about
 * 1 s of CPU each off moto and the poller.
 */
const DELETE_LINGER_MS = 50;

const jittered = (ms: number) => ms / 2 + Math.random() * (ms / 2);

export class QueueLease<Outcome extends string> {
  private readonly inFlight = new Set<Promise<Outcome | Released>>();
  /** Messages held and not yet waiting for their delete: what maxInFlight bounds. */
  private readonly settling = new Set<Message>();
  private readonly deletes: DeleteBatcher;
  private readonly deadLetters: DeadLetterBatcher;
  private failingAttempts = 0;
  /** Room taken by receives under way, so that concurrent receivers never settle more than maxInFlight together. */
  private reserved = 0;
  private capacityWaiters: Array<() => void> = [];
  private stopping = new AbortController();

  constructor(
    private readonly options: QueueLeaseOptions,
    private readonly handler: LeaseHandler<Outcome>,
  ) {
    this.deletes = new DeleteBatcher(options.sqs, options.queueUrl, DELETE_LINGER_MS);
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
    if (!finished)
      this.options.log.warn(
        { held: this.inFlight.size },
        'shutdown timeout: the messages still held will be redelivered',
      );
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
   * Waits for room for a batch and no attempt failing (during an outage only
   * the held messages are retried), then claims the room in the same step, so
   * that concurrent receivers never settle more than maxInFlight together, nor
   * hold more than twice that.
   */
  private async claimCapacity(batch: number): Promise<void> {
    while (
      !this.stopping.signal.aborted &&
      (this.settling.size + this.reserved + batch > this.maxInFlight ||
        this.inFlight.size + this.reserved + batch > 2 * this.maxInFlight ||
        this.failingAttempts > 0)
    ) {
      await this.nextChange();
    }
    if (!this.stopping.signal.aborted) this.reserved += batch;
  }

  /**
   * A retry settles the message again. One that had asked for its delete (which then failed) first takes a
   * place among the settling messages again, so that retries, too, never settle more than maxInFlight.
   */
  private async settleAgain(message: Message): Promise<void> {
    while (!this.settling.has(message) && this.settling.size >= this.maxInFlight && !this.stopping.signal.aborted) {
      await this.nextChange();
    }
    this.settling.add(message);
  }

  /** Resolves when a held message moves on, or at shutdown. */
  private nextChange(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.stopping.signal.removeEventListener('abort', wake);
        resolve();
      };
      this.capacityWaiters.push(wake);
      this.stopping.signal.addEventListener('abort', wake, { once: true });
    });
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
      const settled = traceMessage
        ? traceMessage(queueUrl, message.MessageId, () => this.hold(message))
        : this.hold(message);
      this.inFlight.add(settled);
      metrics.inFlight.set(this.inFlight.size);
      void settled
        .catch((error: unknown) => {
          // Every failure is handled in hold(); this is the last guard: the message is redelivered after its timeout.
          this.options.log.error(
            { err: error, sqsMessageId: message.MessageId },
            'settling the message failed; it will be redelivered',
          );
        })
        .finally(() => {
          this.settling.delete(message);
          this.inFlight.delete(settled);
          metrics.inFlight.set(this.inFlight.size);
          this.wakeReceivers();
        });
    }
  }

  /** Holds the message invisible until it is settled one way or another. */
  private async hold(message: Message): Promise<Outcome | Released> {
    const { sqs, queueUrl, visibilityTimeoutSeconds, log, metrics } = this.options;
    this.settling.add(message);
    const receivedAt = process.hrtime.bigint();
    const stopExtending = keepInvisible(sqs, queueUrl, message, visibilityTimeoutSeconds, (error) =>
      log.warn(
        { err: error, sqsMessageId: message.MessageId },
        'could not extend visibility; the message may be redelivered',
      ),
    );
    try {
      const settled = await this.settleWithRetries(message);
      if (settled !== 'released' && this.handler.effectDurable(settled)) {
        metrics.handOffSeconds.observe(Number(process.hrtime.bigint() - receivedAt) / 1e9);
      }
      return settled;
    } finally {
      stopExtending();
    }
  }

  private heldMessage(message: Message, firstAttempt: boolean): HeldMessage {
    const { sqs, queueUrl } = this.options;
    return {
      message,
      firstAttempt,
      delete: () => {
        if (this.settling.delete(message)) this.wakeReceivers();
        return this.deletes.delete(message.ReceiptHandle!);
      },
      release: (seconds) => releaseMessage(sqs, queueUrl, message, seconds),
      copyToDeadLetterQueue: (reason, receives) => this.deadLetters.send(message, reason, receives),
    };
  }

  private async settleWithRetries(message: Message): Promise<Outcome | Released> {
    const { log, metrics } = this.options;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const maxPermanent = this.options.maxPermanentFailures ?? 5;
    let permanentFailures = 0;
    let failing = false;
    try {
      for (let attempt = 1; ; attempt++) {
        if (attempt > 1) await this.settleAgain(message);
        try {
          return await this.handler.settle(this.heldMessage(message, attempt === 1));
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
              return await this.handler.giveUp(this.heldMessage(message, false), attempt, error as Error);
            } catch (deadLetterError) {
              log.warn(
                { err: deadLetterError, sqsMessageId: message.MessageId },
                'dead-lettering failed; retrying with backoff',
              );
            }
          }
          if (!failing) {
            failing = true;
            if (this.failingAttempts++ === 0) metrics.intakePauses.inc();
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
        this.failingAttempts--;
        this.wakeReceivers();
      }
    }
  }
}
