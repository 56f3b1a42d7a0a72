/**
 * The queue lease's flow control, against a fake SQS whose deletes can be held back: a message whose
 * handler has asked for its delete leaves the `maxInFlight` bound (its effect is durable), but no more than
 * as many again may wait for their delete, so an SQS that stops deleting stops intake too.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { QueueLease, type HeldMessage, type LeaseMetrics } from '../../poller/queue-lease';

const gauge = () => ({ set: () => undefined });
const counter = () => ({ inc: () => undefined });
const metrics = {
  inFlight: gauge(),
  handOffFailures: counter(),
  intakePauses: counter(),
  handOffSeconds: { observe: () => undefined },
} as unknown as LeaseMetrics;
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A queue of `count` messages; deletes wait for `releaseDeletes()`. */
function fakeSqs(count: number) {
  const waiting: Message[] = Array.from({ length: count }, (_, i) => ({
    MessageId: `m-${i}`,
    ReceiptHandle: `r-${i}`,
    Body: '{}',
  }));
  const deleted = new Set<string>();
  let received = 0;
  let deletesReleased = false;
  let deletesFail = false;
  const held: Array<() => void> = [];
  const sqs = {
    async send(command: unknown, options?: { abortSignal?: AbortSignal }) {
      if (command instanceof ReceiveMessageCommand) {
        const batch = waiting.splice(0, command.input.MaxNumberOfMessages ?? 1);
        received += batch.length;
        if (batch.length > 0) return { Messages: batch };
        // An empty queue long-polls until the lease stops.
        await new Promise<void>((resolve) => options?.abortSignal?.addEventListener('abort', () => resolve()));
        return { Messages: [] };
      }
      if (command instanceof DeleteMessageBatchCommand) {
        if (!deletesReleased) await new Promise<void>((resolve) => held.push(resolve));
        if (deletesFail) throw new Error('ServiceUnavailable');
        for (const entry of command.input.Entries ?? []) deleted.add(entry.ReceiptHandle!);
        return { Successful: command.input.Entries, Failed: [] };
      }
      return {};
    },
  };
  return {
    sqs: sqs as unknown as SQSClient,
    received: () => received,
    deleted: () => deleted.size,
    releaseDeletes() {
      deletesReleased = true;
      held.splice(0).forEach((resolve) => resolve());
    },
    failDeletes(fail: boolean) {
      deletesFail = fail;
    },
  };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 100));

/** Runs a lease of at most 10 settling, two receivers, whose handler runs `settle` and then reports `done`. */
function runLease(sqs: SQSClient, settle: (held: HeldMessage) => Promise<void>, backoffMs = 500) {
  const stopping = new AbortController();
  const running = new QueueLease<'done'>(
    {
      sqs,
      queueUrl: 'queue',
      deadLetterQueueUrl: 'dlq',
      metrics,
      log,
      visibilityTimeoutSeconds: 300,
      waitTimeSeconds: 1,
      receivers: 2,
      maxInFlight: 10,
      backoff: { initialMs: backoffMs, maxMs: backoffMs },
    },
    {
      settle: async (held) => {
        await settle(held);
        return 'done';
      },
      giveUp: async () => 'done',
      effectDurable: () => true,
    },
  ).run(stopping.signal);
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

async function untilAllDeleted(queue: ReturnType<typeof fakeSqs>, count: number) {
  for (let i = 0; i < 50 && queue.deleted() < count; i++) await settled();
}

describe('the queue lease', () => {
  it('does not count a message waiting for its delete against maxInFlight, up to as many again', async () => {
    const queue = fakeSqs(100);
    const lease = runLease(queue.sqs, (held) => held.delete());

    await settled();
    // Every handler is waiting for its delete: 10 settling would have stopped intake at 10; it stops at 20.
    expect([queue.received(), queue.deleted()]).toEqual([20, 0]);

    queue.releaseDeletes();
    await untilAllDeleted(queue, 100);
    expect([queue.received(), queue.deleted()]).toEqual([100, 100]);
    await lease.stop();
  });

  it('counts a message whose delete failed as settling again, so its retries stay within maxInFlight', async () => {
    const queue = fakeSqs(100);
    let settling = 0;
    let mostSettling = 0;
    let attempts = 0;
    const lease = runLease(
      queue.sqs,
      async (held) => {
        attempts += 1;
        mostSettling = Math.max(mostSettling, ++settling);
        // The settle's own work (a store write, say) takes a moment on every attempt.
        await new Promise((resolve) => setTimeout(resolve, 5));
        settling--;
        await held.delete();
      },
      20,
    );

    await settled();
    // 20 held, every one waiting for its delete; then SQS refuses the deletes and every settle is retried.
    expect([queue.received(), mostSettling]).toEqual([20, 10]);
    queue.failDeletes(true);
    queue.releaseDeletes();
    await settled();
    expect(attempts).toBeGreaterThan(20);
    queue.failDeletes(false);
    await untilAllDeleted(queue, 100);
    expect([queue.received(), queue.deleted(), mostSettling]).toEqual([100, 100, 10]);
    await lease.stop();
  });

  it('holds at most maxInFlight messages while their handlers are still settling them', async () => {
    const queue = fakeSqs(100);
    let finish: () => void = () => undefined;
    const handlersMayFinish = new Promise<void>((resolve) => (finish = resolve));
    let settling = 0;
    let mostSettling = 0;
    const lease = runLease(queue.sqs, async (held) => {
      mostSettling = Math.max(mostSettling, ++settling);
      await handlersMayFinish;
      settling--;
      await held.delete();
    });

    await settled();
    expect([queue.received(), mostSettling]).toEqual([10, 10]);

    queue.releaseDeletes();
    finish();
    await untilAllDeleted(queue, 100);
    expect([queue.received(), queue.deleted(), mostSettling]).toEqual([100, 100, 10]);
    await lease.stop();
  });
});
