/**
 * The vocabulary of one subscription's life, shared by its workflow, its
 * activities, the clients and the pages. Pure data: safe to import from
 * workflow code.
 */
import type { AwsAction, AwsEvent, AwsView, Verdict } from './aws-ordering';
import type { LinkStatus } from './link-model';
import type { SubscriptionRef } from './subscription-identity';

/**
 * registered → awaiting-aws (sync-timed-out) → active
 *   → unsubscribe-pending (final metering) → awaiting-unsubscribe-success
 *   → stopping → grace-period → deleting → deleted
 * A resubscription returns to active from any phase after active;
 * `cancelled` is an end without deletion (AWS ended the subscription before it
 * was ever billed, or an operator kept the stopped deployments).
 */
export const SUBSCRIPTION_PHASES = [
  'registered',
  'awaiting-aws',
  'sync-timed-out',
  'active',
  'unsubscribe-pending',
  'awaiting-unsubscribe-success',
  'stopping',
  'grace-period',
  'deleting',
  'deleted',
  'cancelled',
] as const;
export type SubscriptionPhase = (typeof SUBSCRIPTION_PHASES)[number];

/** An AWS notification as the poller hands it over, with what it tells us about the subscription's names. */
export interface SubscriptionEvent extends AwsEvent {
  productCode?: string;
  licenseArn?: string;
  customerIdentifier?: string;
  offerIdentifier?: string;
}

export interface SubscriptionSettings {
  /** How long a claimed link waits for subscribe-success before an operator is alerted. */
  syncTimeoutMs: number;
  /** Between stopping the deployments and deleting them; 3 days unless a demo shortens it. */
  gracePeriodMs: number;
  /** After unsubscribe-pending, how long before a missing unsubscribe-success is reported. */
  unsubscribeWaitMs?: number;
  /** How long a subscription nobody links, or that ended, stays open before the run completes (the store keeps its state). */
  idleMs?: number;
  /** Continue as new past this many history events (default 10,000), besides the server's own suggestion. */
  maxHistoryEvents?: number;
}

export interface CancellationRecord {
  /** Marks our stops on the deployments: only this cancellation deletes what it stopped. */
  stoppedBy: string;
  /** `failed`: the platform refused the stop (or was down for a day); an operator must act on it. */
  stopped: Array<{ id: string; name: string; outcome: 'stopped' | 'already-stopped' | 'not-found' | 'failed' }>;
  keptRunning: Array<{ id: string; name: string; trialEndsAt?: string }>;
  deletionDueAt?: string;
  deleted: Array<{ id: string; outcome: string }>;
  finalMetering?: { records: number; sent: number } | { error: string };
  abortedBy?: 'resubscription' | 'operator';
}

/** Everything the workflow carries across continue-as-new and saves for the pages and a later run. */
export interface SubscriptionSnapshot {
  ref: SubscriptionRef;
  customerIdentifier?: string;
  phase: SubscriptionPhase;
  owner?: string;
  aws: AwsView;
  seen: string[];
  syncDeadline?: string;
  cancellation?: CancellationRecord;
  /** The AWS period (its subscribe-success time, ms) billing was last activated or restored for. */
  handledPeriodAt?: number;
  /** awaiting-unsubscribe-success: when a missing unsubscribe-success is reported to operators, and whether it was. */
  unsubscribeDeadline?: string;
  unsubscribeOverdue?: boolean;
  /** A step that failed beyond its retries: the phase is retried in an hour, or on the retryNow update. */
  failure?: { phase: SubscriptionPhase; message: string; at: string };
  /** The last events and what they did, newest last, for operators. */
  history: Array<{ id: string; action: AwsAction; sentAt: string; amendment?: boolean; verdict: Verdict }>;
}

/** What a link request gets back: the real decision, not a promise of one. */
export type LinkAnswer = LinkStatus;

/** What the `subscriptionState` query returns. */
export interface SubscriptionView extends SubscriptionSnapshot {
  pendingRequests: number;
}
