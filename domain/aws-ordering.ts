/**
 * What AWS says about one subscription, ordered by AWS's own clock. Pure:
 * the subscription workflow applies every notification through `applyAwsEvent`
 * and acts only on the verdict, so a redelivered, reordered or replayed
 * notification can never move the subscription backwards.
 *
 * The rule is "the newest status-bearing event by AWS send time wins":
 * - subscribe-success, unsubscribe-pending and unsubscribe-success each set the
 *   status, unless an event AWS sent later has already been applied;
 * - subscribe-fail only matters before the first subscribe-success of a period
 *   (AWS keeps trying to charge; we keep waiting);
 * - an amendment (EventBridge "Purchase Agreement Amended") never starts or
 *   revives anything.
 * AWS re-sends subscribe-success when an offer is amended, and sends it instead
 * of unsubscribe-success when the buyer resubscribes during unsubscribe-pending;
 * both cases are covered by the rule. No rule compares an AWS time with our
 * own clock: the poller only clamps a send time to no later than its receipt.
 */

export type AwsAction = 'subscribe-success' | 'subscribe-fail' | 'unsubscribe-pending' | 'unsubscribe-success';

export interface AwsEvent {
  /** The SNS MessageId or EventBridge event id: a redelivery has the same one. */
  id: string;
  action: AwsAction;
  /** When AWS sent it (ISO), clamped to no later than when we received it. */
  sentAt: string;
  /** EventBridge "Purchase Agreement Amended" (or intent AMEND): not a new subscription. */
  amendment?: boolean;
}

/**
 * unknown: nothing heard yet; payment-failed: subscribe-fail, still waiting;
 * subscribed: metering may run; leaving: unsubscribe-pending (final metering);
 * unsubscribed: no more metering is accepted.
 */
export type AwsStatus = 'unknown' | 'payment-failed' | 'subscribed' | 'leaving' | 'unsubscribed';

export interface AwsView {
  status: AwsStatus;
  /** AWS time (ms) of the newest event that set the status. */
  latestAt?: number;
  /** AWS time (ms) of the subscribe-success that started the current period. */
  periodStartedAt?: number;
  /** An operator restored the subscription: only an event AWS sent strictly after `latestAt` may change it. */
  operatorOverride?: boolean;
}

export type Verdict =
  /** Sent before something already applied, or an amendment of nothing: recorded, no effect. */
  | 'stale'
  /** Consistent with what we know (a repeat of the status): no effect. */
  | 'no-change'
  | 'subscribed'
  | 'resubscribed'
  | 'payment-failed'
  | 'leaving'
  | 'unsubscribed'
  | 'amended';

export const UNKNOWN: AwsView = { status: 'unknown' };

/** Ties at the same millisecond go to the more final event: never bill a cancelled customer. */
const RANK: Record<AwsAction, number> = {
  'subscribe-fail': 0,
  'subscribe-success': 1,
  'unsubscribe-pending': 2,
  'unsubscribe-success': 3,
};
const RANK_OF_STATUS: Record<AwsStatus, number> = {
  unknown: -1,
  'payment-failed': 0,
  subscribed: 1,
  leaving: 2,
  unsubscribed: 3,
};

export function applyAwsEvent(view: AwsView, event: AwsEvent): { view: AwsView; verdict: Verdict } {
  const at = Date.parse(event.sentAt);
  const same = (verdict: Verdict) => ({ view, verdict });
  if (event.amendment) return same(view.status === 'subscribed' || view.status === 'leaving' ? 'amended' : 'stale');
  if (view.latestAt !== undefined) {
    if (at < view.latestAt || (view.operatorOverride && at === view.latestAt)) return same('stale');
    if (at === view.latestAt && RANK[event.action] <= RANK_OF_STATUS[view.status])
      return same(view.status === statusOf(event.action) ? 'no-change' : 'stale');
  }
  const moved = (status: AwsStatus, verdict: Verdict, periodStartedAt = view.periodStartedAt) => ({
    view: { status, latestAt: at, ...(periodStartedAt === undefined ? {} : { periodStartedAt }) },
    verdict,
  });
  switch (event.action) {
    case 'subscribe-success':
      if (view.status === 'subscribed') return moved('subscribed', 'no-change');
      return moved(
        'subscribed',
        view.status === 'leaving' || view.status === 'unsubscribed' ? 'resubscribed' : 'subscribed',
        at,
      );
    case 'subscribe-fail':
      // Only a subscription still waiting for its first charge is told about a payment problem.
      if (view.status === 'subscribed' || view.status === 'leaving') return same('no-change');
      return moved('payment-failed', view.status === 'payment-failed' ? 'no-change' : 'payment-failed');
    case 'unsubscribe-pending':
      if (view.status === 'unsubscribed') return same('stale');
      return moved('leaving', view.status === 'leaving' ? 'no-change' : 'leaving');
    case 'unsubscribe-success':
      return moved('unsubscribed', view.status === 'unsubscribed' ? 'no-change' : 'unsubscribed');
  }
}

function statusOf(action: AwsAction): AwsStatus {
  return action === 'subscribe-success'
    ? 'subscribed'
    : action === 'subscribe-fail'
      ? 'payment-failed'
      : action === 'unsubscribe-pending'
        ? 'leaving'
        : 'unsubscribed';
}

/** A send time as AWS stated it, but never later than our receipt (a forged or skewed future time cannot win every comparison). */
export function clampSentAt(sentAt: Date | undefined, receivedAt: Date): string {
  if (!sentAt || Number.isNaN(sentAt.getTime()) || sentAt.getTime() > receivedAt.getTime())
    return receivedAt.toISOString();
  return sentAt.toISOString();
}

/**
 * The ids already applied, bounded so a subscription that lives for years keeps
 * a small state across continue-as-new. Redeliveries come within days; the
 * ordering rule makes an older id that fell out harmless anyway.
 */
export class SeenIds {
  private readonly ids: string[];
  private readonly set: Set<string>;

  constructor(
    initial: readonly string[] = [],
    private readonly limit = 200,
  ) {
    this.ids = initial.slice(-limit);
    this.set = new Set(this.ids);
  }

  /** Adds `id`; false when it was already there. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    this.ids.push(id);
    this.set.add(id);
    if (this.ids.length > this.limit) this.set.delete(this.ids.shift()!);
    return true;
  }

  toJSON(): string[] {
    return [...this.ids];
  }
}
