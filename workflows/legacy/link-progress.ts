/**
 * The state of one AWS customer's link, and the rules that move it. Pure and
 * synchronous: the workflow owns the waiting and the side effects, this class
 * owns the decisions, so signal handlers stay one line each.
 */
import type { LinkRecord } from '../../activities/subscription/linking';
import {
  linkMessage,
  type AwsCustomer,
  type AwsSyncNotification,
  type BillingStatus,
  type LinkPhase,
  type LinkRefusal,
  type LinkRequest,
  type LinkStatus,
} from '../../domain/link-model';

/** What the `linkState` query returns: everything an operator needs on one screen. */
export interface LinkState {
  customer: AwsCustomer;
  status: BillingStatus;
  owner?: string;
  synced: boolean;
  paymentProblem: boolean;
  syncDeadline?: string;
  pendingRequests: number;
  accounts: LinkStatus[];
  notifications: Array<AwsSyncNotification & { receivedAt: string }>;
}

const KEPT_NOTIFICATIONS = 50;

export class LinkProgress {
  owner?: string;
  synced = false;
  paymentProblem = false;
  private syncDeadline?: number;
  private syncTimedOut = false;
  private lastRefusal?: LinkRefusal;
  private readonly queue: LinkRequest[] = [];
  private readonly seenMessages = new Set<string>();
  private readonly notifications: LinkState['notifications'] = [];
  private readonly statuses = new Map<string, LinkStatus>();
  private readonly unpublished = new Set<string>();
  private sequence = 0;

  constructor(
    readonly customer: AwsCustomer,
    private readonly syncTimeoutMs: number,
    private readonly now: () => number,
  ) {}

  get hasRequests(): boolean {
    return this.queue.length > 0;
  }

  get hasUnpublished(): boolean {
    return this.unpublished.size > 0;
  }

  /** A link request; a repeat from an account already queued changes nothing. */
  enqueue(request: LinkRequest): void {
    if (!this.queue.some((queued) => queued.accountId === request.accountId)) this.queue.push(request);
  }

  nextRequest(): LinkRequest | undefined {
    return this.queue.shift();
  }

  /** An AWS notification; the same MessageId twice has one effect. Returns whether it was new. */
  notify(notification: AwsSyncNotification): boolean {
    if (this.seenMessages.has(notification.messageId)) return false;
    this.seenMessages.add(notification.messageId);
    this.notifications.push({ ...notification, receivedAt: new Date(this.now()).toISOString() });
    if (this.notifications.length > KEPT_NOTIFICATIONS) this.notifications.shift();
    if (this.synced) return true;
    if (notification.action === 'subscribe-success') {
      this.synced = true;
      return true;
    }
    // subscribe-fail: payment may have failed; the owner keeps waiting and is told why.
    this.paymentProblem = true;
    if (this.owner) this.setPhase(this.owner, this.statuses.get(this.owner)?.phase ?? 'waiting-for-aws');
    return true;
  }

  /** Picks up what earlier runs and the poller stored, so a new run continues where the last one stopped. */
  restore(record: LinkRecord): void {
    record.notifications.forEach((notification) => this.notify(notification));
    if (!record.owner) return;
    // An active link was confirmed by AWS in an earlier run, even if that notification is gone.
    if (record.owner.active) this.synced = true;
    this.claim(record.owner.accountId);
  }

  checking(accountId: string): void {
    this.setPhase(accountId, 'checking');
  }

  claim(accountId: string): void {
    this.owner = accountId;
    this.syncDeadline = this.now() + this.syncTimeoutMs;
    this.setPhase(accountId, 'waiting-for-aws');
  }

  refuse(accountId: string, refusal: LinkRefusal): void {
    this.lastRefusal = refusal;
    this.setPhase(accountId, 'refused', refusal);
  }

  /** Milliseconds left to wait for AWS, or undefined once timed out (then only a retry restarts the clock). */
  syncTimeLeft(): number | undefined {
    if (this.syncTimedOut || this.syncDeadline === undefined) return undefined;
    return this.syncDeadline - this.now();
  }

  markSyncTimedOut(): void {
    this.syncTimedOut = true;
    if (this.owner) this.setPhase(this.owner, 'sync-timed-out');
  }

  /** Update validator: retrying only makes sense after the sync timed out. */
  assertCanRetrySync(): void {
    if (!this.syncTimedOut)
      throw new Error(`retrySync is only allowed after the sync timed out; the link is "${this.status()}"`);
  }

  retrySync(): void {
    this.syncTimedOut = false;
    this.syncDeadline = this.now() + this.syncTimeoutMs;
    if (this.owner) this.setPhase(this.owner, 'waiting-for-aws');
  }

  markLinked(): void {
    if (this.owner) this.setPhase(this.owner, 'linked');
  }

  cancelRequested = false;

  /** Update validator: an operator may cancel a link that has an owner and is not yet active. */
  assertCanCancel(): void {
    if (!this.owner || this.linked) throw new Error(`cancelLink needs a pending link; the link is "${this.status()}"`);
  }

  requestCancel(): void {
    this.cancelRequested = true;
  }

  /** The owner's claim ends without a link (cancelled, or no longer eligible); the reservation is released by the workflow. */
  dropOwner(refusal: LinkRefusal): void {
    if (this.owner) this.refuse(this.owner, refusal);
    this.owner = undefined;
    this.syncDeadline = undefined;
    this.syncTimedOut = false;
  }

  get linked(): boolean {
    return this.owner !== undefined && this.statuses.get(this.owner)?.phase === 'linked';
  }

  status(): BillingStatus {
    if (this.linked) return 'linked';
    if (this.owner) {
      if (this.syncTimedOut) return 'sync-timed-out';
      return this.paymentProblem ? 'payment-problem' : 'waiting-for-aws';
    }
    if ([...this.statuses.values()].some((s) => s.phase === 'checking')) return 'checking';
    return this.lastRefusal ? 'refused' : 'awaiting-link';
  }

  /** The statuses changed since the last call, for the workflow to persist. */
  takeUnpublished(): LinkStatus[] {
    const changed = [...this.unpublished].map((accountId) => this.statuses.get(accountId)!);
    this.unpublished.clear();
    return changed;
  }

  snapshot(): LinkState {
    return {
      customer: this.customer,
      status: this.status(),
      owner: this.owner,
      synced: this.synced,
      paymentProblem: this.paymentProblem,
      syncDeadline: this.syncDeadline === undefined ? undefined : new Date(this.syncDeadline).toISOString(),
      pendingRequests: this.queue.length,
      accounts: [...this.statuses.values()],
      notifications: [...this.notifications],
    };
  }

  private setPhase(accountId: string, phase: LinkPhase, refusal?: LinkRefusal): void {
    const now = this.now();
    const paymentProblem = accountId === this.owner && this.paymentProblem && !this.synced;
    this.statuses.set(accountId, {
      ...this.customer,
      accountId,
      phase,
      ...(refusal ? { refusal } : {}),
      paymentProblem,
      message: linkMessage(phase, { refusal, paymentProblem }),
      // Workflow time orders writes across runs too; the sequence orders those within one task.
      version: now * 1000 + (this.sequence++ % 1000),
      updatedAt: new Date(now).toISOString(),
    });
    this.unpublished.add(accountId);
  }
}
