/**
 * The state of one subscription and the bookkeeping around it: AWS's events
 * through the ordering rules, link requests waiting for their answer, and the
 * per-account link statuses the pages read. Pure and synchronous: the workflow
 * owns the waiting and the side effects, so its handlers stay one line each.
 */
import { condition } from '@temporalio/workflow';
import { applyAwsEvent, SeenIds, UNKNOWN, type AwsView, type Verdict } from '../../domain/aws-ordering';
import { linkMessage, type LinkPhase, type LinkRefusal, type LinkStatus } from '../../domain/link-model';
import type { SubscriptionRef } from '../../domain/subscription-identity';
import type {
  CancellationRecord,
  LinkAnswer,
  SubscriptionEvent,
  SubscriptionPhase,
  SubscriptionSnapshot,
  SubscriptionView,
} from '../../domain/subscription-model';

const KEPT_EVENTS = 30;

interface PendingRequest {
  accountId: string;
  answer?: LinkAnswer;
}

export class SubscriptionState {
  ref: SubscriptionRef;
  customerIdentifier?: string;
  phase: SubscriptionPhase;
  owner?: string;
  aws: AwsView;
  syncDeadline?: number;
  cancellation?: CancellationRecord;
  /** The AWS period (its subscribe-success time) the workflow last activated or restored billing for. */
  handledPeriodAt?: number;
  failure?: SubscriptionSnapshot['failure'];
  /** When a missing unsubscribe-success is reported (workflow time, ms), and whether it was. */
  unsubscribeDeadline?: number;
  unsubscribeOverdue = false;
  /** Until the store has been read, events wait here, so a restored state never overwrites a newer event. */
  private restored: boolean;
  private readonly early: SubscriptionEvent[] = [];
  private readonly seen: SeenIds;
  private readonly history: SubscriptionSnapshot['history'];
  private readonly requests: PendingRequest[] = [];
  private readonly statuses = new Map<string, LinkStatus>();
  private sequence = 0;
  /** Bumped by every AWS event that changed something, so waits wake on it. */
  awsChanges = 0;
  /** Every event received, duplicates too: a run only ends when nothing arrived meanwhile. */
  received = 0;
  /** What was last saved to the store, so an unchanged state is not written again. */
  readonly saved = { fingerprint: '', count: 0, effects: '' };

  /** Resolves once the workflow's decisions so far are saved: what an answer says, the pages then show. */
  published(): Promise<void> {
    return condition(() => this.effectsPublished);
  }

  constructor(
    snapshot: SubscriptionSnapshot | { ref: SubscriptionRef },
    private readonly now: () => number,
  ) {
    const full = 'phase' in snapshot ? snapshot : undefined;
    this.ref = snapshot.ref;
    this.phase = 'registered';
    this.aws = UNKNOWN;
    this.seen = new SeenIds();
    this.history = [];
    if (full) {
      this.customerIdentifier = full.customerIdentifier;
      this.load(full);
    }
    this.restored = full !== undefined;
  }

  /** Takes over a saved state's decisions and memory; the caller decides how the names combine. */
  private load(snapshot: SubscriptionSnapshot): void {
    this.phase = snapshot.phase;
    this.owner = snapshot.owner;
    this.aws = snapshot.aws;
    this.syncDeadline = snapshot.syncDeadline ? Date.parse(snapshot.syncDeadline) : undefined;
    this.cancellation = snapshot.cancellation;
    this.handledPeriodAt = snapshot.handledPeriodAt;
    this.failure = snapshot.failure;
    this.unsubscribeDeadline = snapshot.unsubscribeDeadline ? Date.parse(snapshot.unsubscribeDeadline) : undefined;
    this.unsubscribeOverdue = snapshot.unsubscribeOverdue ?? false;
    snapshot.seen.forEach((id) => this.seen.add(id));
    this.history.push(...snapshot.history);
  }

  /** An AWS notification; applied at once, or after the restore when it came first. */
  receive(event: SubscriptionEvent): void {
    this.received++;
    if (!this.restored) {
      this.early.push(event);
      return;
    }
    this.apply(event);
  }

  /** What the store knew (a saved or legacy state), then what arrived while it was being read. */
  restore(snapshot: SubscriptionSnapshot | undefined, recorded: SubscriptionEvent[]): void {
    if (snapshot) {
      this.ref = { ...snapshot.ref, ...Object.fromEntries(Object.entries(this.ref).filter(([, value]) => value)) };
      this.customerIdentifier ??= snapshot.customerIdentifier;
      this.load(snapshot);
    }
    this.restored = true;
    for (const event of [...recorded, ...this.early.splice(0)]) this.apply(event);
  }

  private apply(event: SubscriptionEvent): Verdict | 'duplicate' {
    this.learn(event);
    if (!this.seen.add(event.id)) return 'duplicate';
    const { view, verdict } = applyAwsEvent(this.aws, event);
    this.aws = view;
    this.remember(event, verdict);
    if (verdict !== 'stale' && verdict !== 'no-change') this.awsChanges++;
    return verdict;
  }

  private remember(event: SubscriptionEvent, verdict: SubscriptionSnapshot['history'][number]['verdict']): void {
    this.history.push({
      id: event.id,
      action: event.action,
      sentAt: event.sentAt,
      ...(event.amendment ? { amendment: true } : {}),
      verdict,
    });
    if (this.history.length > KEPT_EVENTS) this.history.shift();
  }

  /** An operator's word on what AWS bills (restoreSubscription); AWS's next notification, if newer, still decides. */
  overrideAwsStatus(status: 'subscribed'): void {
    this.aws = { ...this.aws, status, operatorOverride: true };
  }

  /**
   * What operators and buyers see of the workflow's decisions (not of AWS's events, which the next phase
   * step publishes): an answer waits until this has been saved, so the pages agree with it.
   */
  effects(): string {
    return JSON.stringify([
      this.phase,
      this.owner,
      this.syncDeadline,
      this.cancellation,
      this.failure,
      this.unpublished.size,
    ]);
  }

  get effectsPublished(): boolean {
    return this.effects() === this.saved.effects;
  }

  /** `effects`: as they were when the saved state was taken, so a change made during the save is not counted as saved. */
  markPublished(effects: string): void {
    this.saved.effects = effects;
  }

  /**
   * Names AWS gives in events fill in what the subscription did not know yet (never overwrite). The license is
   * not among them: it is part of the key, and a subscription keyed by account and product keeps that key.
   */
  learn(names: { productCode?: string; customerIdentifier?: string }): void {
    if (names.productCode && !this.ref.productCode) this.ref = { ...this.ref, productCode: names.productCode };
    if (names.customerIdentifier && !this.customerIdentifier) this.customerIdentifier = names.customerIdentifier;
  }

  get awsSubscribed(): boolean {
    return this.aws.status === 'subscribed';
  }

  /** AWS started a subscription period that billing has not been (re)started for. */
  get newPeriod(): boolean {
    return this.awsSubscribed && this.aws.periodStartedAt !== this.handledPeriodAt;
  }

  get awsLeaving(): boolean {
    return this.aws.status === 'leaving';
  }

  get awsEnded(): boolean {
    return this.aws.status === 'unsubscribed';
  }

  // Link requests: each waits in its update handler until the workflow answers it.

  request(accountId: string): PendingRequest {
    const pending: PendingRequest = { accountId };
    this.requests.push(pending);
    return pending;
  }

  get hasRequests(): boolean {
    return this.requests.some((r) => !r.answer);
  }

  nextRequest(): PendingRequest | undefined {
    return this.requests.find((r) => !r.answer);
  }

  answer(pending: PendingRequest, status: LinkStatus): void {
    pending.answer = status;
    this.requests.splice(this.requests.indexOf(pending), 1);
  }

  // Per-account link statuses, persisted for the pages.

  private readonly unpublished = new Set<string>();

  setLinkPhase(accountId: string, phase: LinkPhase, refusal?: LinkRefusal): LinkStatus {
    const now = this.now();
    const paymentProblem = accountId === this.owner && this.aws.status === 'payment-failed';
    const status: LinkStatus = {
      awsAccountId: this.ref.awsAccountId,
      productCode: this.ref.productCode,
      ...(this.ref.licenseArn ? { licenseArn: this.ref.licenseArn } : {}),
      accountId,
      phase,
      ...(refusal ? { refusal } : {}),
      paymentProblem,
      message: linkMessage(phase, { refusal, paymentProblem }),
      // Workflow time orders writes across runs too; the sequence orders those within one task.
      version: now * 1000 + (this.sequence++ % 1000),
      updatedAt: new Date(now).toISOString(),
    };
    this.statuses.set(accountId, status);
    this.unpublished.add(accountId);
    return status;
  }

  linkStatusOf(accountId: string): LinkStatus | undefined {
    return this.statuses.get(accountId);
  }

  takeUnpublished(): LinkStatus[] {
    const changed = [...this.unpublished].map((accountId) => this.statuses.get(accountId)!);
    this.unpublished.clear();
    return changed;
  }

  snapshot(): SubscriptionSnapshot {
    return {
      ref: this.ref,
      ...(this.customerIdentifier ? { customerIdentifier: this.customerIdentifier } : {}),
      phase: this.phase,
      ...(this.owner ? { owner: this.owner } : {}),
      aws: this.aws,
      seen: this.seen.toJSON(),
      ...(this.syncDeadline !== undefined ? { syncDeadline: new Date(this.syncDeadline).toISOString() } : {}),
      ...(this.cancellation ? { cancellation: this.cancellation } : {}),
      ...(this.handledPeriodAt !== undefined ? { handledPeriodAt: this.handledPeriodAt } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
      ...(this.unsubscribeDeadline !== undefined
        ? { unsubscribeDeadline: new Date(this.unsubscribeDeadline).toISOString() }
        : {}),
      ...(this.unsubscribeOverdue ? { unsubscribeOverdue: true } : {}),
      history: [...this.history],
    };
  }

  view(): SubscriptionView {
    return { ...this.snapshot(), pendingRequests: this.requests.filter((r) => !r.answer).length };
  }
}
