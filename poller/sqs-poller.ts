/**
 * A notification poller for one queue: the queue lease (queue-lease.ts: how
 * many messages are held, for how long, and when intake pauses) running
 * notification settlement (settlement.ts: what each message becomes).
 */
import { QueueLease, type QueueLeaseOptions } from './queue-lease';
import { NotificationSettlement, type Settled, type SettlementOptions } from './settlement';

export type { PollerLog } from './queue-lease';

export type PollerOptions = QueueLeaseOptions & SettlementOptions;

export class SqsNotificationPoller {
  private readonly lease: QueueLease<Settled>;

  constructor(options: PollerOptions) {
    this.lease = new QueueLease(options, new NotificationSettlement(options));
  }

  /** Receives until `signal` aborts, then finishes (or, after the shutdown timeout, releases) the messages it holds. */
  run(signal: AbortSignal): Promise<void> {
    return this.lease.run(signal);
  }
}
