/**
 * One long-lived workflow per AWS Marketplace subscription (id
 * `subscription:<key>`, see subscription-identity.ts). It is the only writer
 * of the subscription's billing state, and every event reaches it: the buyer's
 * link request (an update, from the API), each AWS notification (a signal,
 * from the poller) and each operator action (updates). Events are serialised
 * here and ordered by AWS's clock (aws-ordering.ts), so no order of delivery
 * can revive a cancelled subscription or cancel a paying one.
 *
 *   registered → awaiting-aws → active → unsubscribe-pending → awaiting-unsubscribe-success
 *     → stopping → grace-period → deleting → deleted;   a resubscription → active …
 *
 * Each phase below waits for what moves it on, acts, and names the next phase.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import * as act from './effects';
import { noOperatorRequests, OPERATOR_PHASES, registerHandlers, type OperatorRequests } from './handlers';
import type { SubscriptionRef } from '../../domain/subscription-identity';
import type {
  CancellationRecord,
  SubscriptionPhase,
  SubscriptionSettings,
  SubscriptionSnapshot,
} from '../../domain/subscription-model';
import { SubscriptionState } from './state';

export interface SubscriptionInput {
  ref: SubscriptionRef;
  settings: SubscriptionSettings;
  /** Set only by continue-as-new. */
  resume?: SubscriptionSnapshot;
  /** Set only by the migration of a running cancelSubscription: the mark it put on the deployments it stopped. */
  legacyStoppedBy?: string;
}

const HOUR_MS = 3_600_000;
const DEFAULT_IDLE_MS = 30 * 24 * HOUR_MS;
const DEFAULT_UNSUBSCRIBE_WAIT_MS = 6 * HOUR_MS;

export async function subscription(input: SubscriptionInput): Promise<SubscriptionSnapshot> {
  const { settings } = input;
  const sub = new SubscriptionState(input.resume ?? { ref: input.ref }, () => Date.now());
  const ops = noOperatorRequests();

  // --- Every way in: AWS's events, the buyer's link requests, operators' updates and the state query. ---
  registerHandlers(sub, ops);

  // --- Start: what the store knows (a saved run, or the workflows this one replaced). ---
  if (!input.resume) {
    const stored = await act.loadSubscription(sub.ref, input.legacyStoppedBy);
    sub.restore(stored.snapshot, stored.recorded);
    // A reservation restored from the replaced linkAccount workflow gets a full sync timeout from now.
    if (sub.phase === 'awaiting-aws' && sub.syncDeadline === undefined)
      sub.syncDeadline = Date.now() + settings.syncTimeoutMs;
    // A billed subscription restored from them has been activated for its current AWS period.
    if ((sub.phase === 'active' || sub.phase === 'awaiting-unsubscribe-success') && sub.handledPeriodAt === undefined)
      sub.handledPeriodAt = sub.aws.periodStartedAt;
  }
  // A failure saved by an earlier run (terminated while it waited) is retried now: nothing is left waiting for retryNow.
  sub.failure = undefined;

  // --- The life of the subscription. ---
  const phases: Record<SubscriptionPhase, () => Promise<SubscriptionPhase | 'idle'>> = {
    registered,
    'awaiting-aws': awaitingAws,
    'sync-timed-out': awaitingAws,
    active,
    'unsubscribe-pending': finalMetering,
    'awaiting-unsubscribe-success': awaitingUnsubscribeSuccess,
    stopping,
    'grace-period': gracePeriod,
    deleting,
    deleted: ended,
    cancelled: ended,
  };
  for (;;) {
    await act.publish(sub);
    const received = sub.received;
    let next: SubscriptionPhase | 'idle';
    try {
      next = await phases[sub.phase]();
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      await waitOutFailure(error);
      continue;
    }
    if (next !== 'idle') {
      sub.phase = next;
      dropStaleOperatorRequests();
    } else if ((await settled()) && sub.received === received) {
      // Idle for long: the state is saved and the next event starts a new run from it.
      log.info('Subscription idle: run complete, state saved', { phase: sub.phase });
      return sub.snapshot();
    }
    if (historyLong() && (await settled())) {
      // Every request was answered and every event applied: the snapshot carries the rest.
      return continueAsNew<typeof subscription>({ ref: sub.ref, settings, resume: sub.snapshot() });
    }
  }

  /**
   * Answers every waiting request and lets every handler finish, so a run can end. False when an operator's
   * action is waiting for its phase to act on it: the run goes on instead.
   */
  async function settled(): Promise<boolean> {
    for (;;) {
      await answerRequests();
      await condition(() => allHandlersFinished() || sub.hasRequests || operatorWaiting());
      if (operatorWaiting()) return false;
      if (!sub.hasRequests) return true;
    }
  }

  /** Waits end on it too: notifications that change nothing (duplicates, stale ones) still grow the history. */
  function historyLong(): boolean {
    return (
      workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (settings.maxHistoryEvents ?? 10_000)
    );
  }

  function operatorWaiting(): boolean {
    return Object.values(ops).some(Boolean);
  }

  /**
   * An operator's request belongs to the phase it was accepted in. When something else moved the subscription
   * on first (a resubscription during deleteNow, say), the request is answered with the new state and forgotten,
   * so it never acts on a later cycle.
   */
  function dropStaleOperatorRequests(): void {
    for (const [flag, phases] of Object.entries(OPERATOR_PHASES) as Array<
      [keyof OperatorRequests, SubscriptionPhase[]]
    >) {
      if (ops[flag] && !phases.includes(sub.phase)) ops[flag] = false;
    }
    if (!sub.failure) ops.retryNow = false;
  }

  /**
   * A step failed beyond its retries (the platform refused a deployment call, the store was down for a day).
   * The subscription stays in its phase, visible and counted, and tries again in an hour or on `retryNow`.
   */
  async function waitOutFailure(error: ActivityFailure): Promise<void> {
    const message = error.cause?.message ?? error.message;
    sub.failure = { phase: sub.phase, message, at: new Date(Date.now()).toISOString() };
    log.error('A subscription step failed; it is retried in an hour, or now with the retryNow update', {
      phase: sub.phase,
      message,
    });
    act.countAttention('step-failed');
    await act.publish(sub);
    await condition(() => ops.retryNow || sub.hasRequests, '1 hour');
    await answerRequests();
    ops.retryNow = false;
    sub.failure = undefined;
  }

  /** No platform account yet: the buyer's link request decides. AWS may already have spoken. */
  async function registered(): Promise<SubscriptionPhase | 'idle'> {
    if (!(await condition(() => sub.hasRequests || historyLong(), settings.idleMs ?? DEFAULT_IDLE_MS))) return 'idle';
    await answerRequests();
    return sub.owner ? 'awaiting-aws' : 'registered';
  }

  /** A platform account holds the reservation; AWS confirms with subscribe-success (it may have, long ago). */
  async function awaitingAws(): Promise<SubscriptionPhase> {
    const changes = sub.awsChanges;
    const timeLeft = sub.phase === 'sync-timed-out' ? undefined : (sub.syncDeadline ?? 0) - Date.now();
    const wake = () =>
      sub.awsSubscribed ||
      sub.awsEnded ||
      sub.hasRequests ||
      ops.cancelLink ||
      ops.retrySync ||
      sub.awsChanges !== changes ||
      historyLong();
    const woke =
      timeLeft === undefined ? (await condition(wake), true) : timeLeft > 0 && (await condition(wake, timeLeft));
    // The buyer waits for this: with nothing to answer, billing switches before the state is saved (the next publish
    // saves both), which spares the sync a whole activity round trip. Runs from before it save first, as they did.
    const activateNow =
      sub.awsSubscribed && !sub.hasRequests && !ops.cancelLink && patched('activate-before-saving-aws-event');
    if (!activateNow) await answerRequests();
    if (ops.cancelLink) return release('LinkCancelled', () => (ops.cancelLink = false));
    // AWS ended the subscription before it was ever billed: nothing to activate, nothing to stop.
    if (sub.awsEnded) return release('SubscriptionEnded');
    if (sub.awsSubscribed) return activate();
    if (ops.retrySync) {
      ops.retrySync = false;
      sub.syncDeadline = Date.now() + settings.syncTimeoutMs;
      sub.setLinkPhase(sub.owner!, 'waiting-for-aws');
      return 'awaiting-aws';
    }
    if (!woke) {
      log.warn(
        'AWS has not confirmed the subscription within the sync timeout; an operator may retrySync or cancelLink',
        { owner: sub.owner },
      );
      act.countAttention('sync-timed-out');
      sub.setLinkPhase(sub.owner!, 'sync-timed-out');
      return 'sync-timed-out';
    }
    if (sub.owner) sub.setLinkPhase(sub.owner, sub.phase === 'sync-timed-out' ? 'sync-timed-out' : 'waiting-for-aws');
    return sub.phase;
  }

  /** Paid through AWS Marketplace; hourly metering reads the link. Waits for AWS to say the buyer is leaving. */
  async function active(): Promise<SubscriptionPhase> {
    await condition(() => sub.awsLeaving || sub.awsEnded || sub.hasRequests || historyLong());
    await answerRequests();
    if (sub.awsEnded) {
      // unsubscribe-success without unsubscribe-pending: AWS accepts no more records, so no final metering.
      newCancellation();
      return 'stopping';
    }
    if (sub.awsLeaving) return 'unsubscribe-pending';
    return 'active';
  }

  /** unsubscribe-pending: about an hour to send the last records. */
  async function finalMetering(): Promise<SubscriptionPhase> {
    const record = newCancellation();
    // The Billing page says "being cancelled" while the last records go out.
    await act.publish(sub);
    await act.markCancellationPending(sub.ref);
    record.finalMetering = await act.meterFinalHours(sub.ref);
    return 'awaiting-unsubscribe-success';
  }

  /** Billing ends only on AWS's word; a resubscription (subscribe-success instead) keeps it going. */
  async function awaitingUnsubscribeSuccess(): Promise<SubscriptionPhase> {
    const wake = () => !sub.awsLeaving || sub.hasRequests || ops.confirmUnsubscribed;
    sub.unsubscribeDeadline ??= Date.now() + (settings.unsubscribeWaitMs ?? DEFAULT_UNSUBSCRIBE_WAIT_MS);
    const timeLeft = sub.unsubscribeDeadline - Date.now();
    if (timeLeft > 0 ? !(await condition(wake, timeLeft)) : !wake()) {
      if (!sub.unsubscribeOverdue) {
        sub.unsubscribeOverdue = true;
        log.warn(
          'unsubscribe-success has not arrived; metering continues. An operator may confirmUnsubscribed once AWS confirms the end',
          { owner: sub.owner },
        );
        act.countAttention('awaiting-unsubscribe-success');
        await act.publish(sub);
      }
      await condition(wake);
    }
    await answerRequests();
    if (sub.awsSubscribed) return resubscribe();
    if (sub.awsEnded || ops.confirmUnsubscribed) return 'stopping';
    return 'awaiting-unsubscribe-success';
  }

  /** Billing ends, and every running deployment stops but the trial, which runs until its trial ends. */
  async function stopping(): Promise<SubscriptionPhase> {
    const { workflowId, runId } = workflowInfo();
    const record = sub.cancellation ?? newCancellation();
    // One mark per cancellation cycle: a stop repeated after a crash or a new run keeps it, so what it stopped is still ours.
    record.stoppedBy ||= `${workflowId}@${runId}`;
    sub.unsubscribeDeadline = undefined;
    sub.unsubscribeOverdue = false;
    await act.endMarketplaceBilling(sub.ref, sub.owner!);
    sub.setLinkPhase(sub.owner!, 'cancelled');
    const { stopped, keptRunning } = await act.stopAllButTrial(sub.owner!, record.stoppedBy);
    record.stopped = stopped;
    record.keptRunning = keptRunning;
    record.deletionDueAt = new Date(Date.now() + settings.gracePeriodMs).toISOString();
    ops.confirmUnsubscribed = false;
    return 'grace-period';
  }

  /** A durable timer; operators may shorten, extend or abort it, and a resubscription cancels it. */
  async function gracePeriod(): Promise<SubscriptionPhase> {
    const record = sub.cancellation!;
    const interrupted = await condition(
      () => sub.awsSubscribed || sub.hasRequests || ops.deleteNow || ops.abortDeletion || ops.restore || ops.dueChanged,
      Math.max(Date.parse(record.deletionDueAt!) - Date.now(), 1),
    );
    await answerRequests();
    if (sub.awsSubscribed || ops.restore) return resubscribe();
    if (ops.abortDeletion) {
      record.abortedBy = 'operator';
      delete record.deletionDueAt;
      ops.abortDeletion = false;
      return 'cancelled';
    }
    if (ops.dueChanged) ops.dueChanged = false;
    return interrupted && !ops.deleteNow ? 'grace-period' : 'deleting';
  }

  /** Deletes what this cancellation stopped, unless somebody restarted it meanwhile. */
  async function deleting(): Promise<SubscriptionPhase> {
    const record = sub.cancellation!;
    for (const { id, outcome } of record.stopped) {
      if (outcome !== 'stopped' || record.deleted.some((d) => d.id === id)) continue;
      // A resubscription that lands mid-deletion still saves what is left.
      if (sub.awsSubscribed) return resubscribe();
      record.deleted.push({ id, outcome: await act.deleteIfStillStopped(id, record.stoppedBy) });
    }
    delete record.deletionDueAt;
    ops.deleteNow = false;
    return 'deleted';
  }

  /** Ended: a resubscription or an operator's restore revives it; otherwise the run completes when idle. */
  async function ended(): Promise<SubscriptionPhase | 'idle'> {
    const woke = await condition(
      () => sub.newPeriod || sub.hasRequests || ops.restore || historyLong(),
      settings.idleMs ?? DEFAULT_IDLE_MS,
    );
    await answerRequests();
    if (sub.newPeriod || ops.restore) return sub.owner ? resubscribe() : 'registered';
    return woke ? sub.phase : 'idle';
  }

  // --- The steps the phases share. ---

  /** Each cancellation cycle starts a record of its own: nothing of an earlier cycle shows on the Billing page. */
  function newCancellation(): CancellationRecord {
    sub.cancellation = { stoppedBy: '', stopped: [], keptRunning: [], deleted: [] };
    return sub.cancellation;
  }

  /** AWS confirmed (again): the owner pays through AWS Marketplace, if the platform's rules still allow it. */
  async function activate(): Promise<SubscriptionPhase> {
    sub.handledPeriodAt = sub.aws.periodStartedAt;
    const refusal = await act.activate(sub.ref, sub.owner!);
    if (refusal) return release(refusal);
    sub.setLinkPhase(sub.owner!, 'linked');
    return 'active';
  }

  async function resubscribe(): Promise<SubscriptionPhase> {
    const byOperator = ops.restore;
    ops.restore = false;
    // The operator vouches that AWS bills the buyer: only a notification AWS sends after the last one applied ends it again.
    if (byOperator) sub.overrideAwsStatus('subscribed');
    sub.handledPeriodAt = sub.aws.periodStartedAt;
    if (sub.cancellation?.deletionDueAt) {
      sub.cancellation.abortedBy = byOperator ? 'operator' : 'resubscription';
      delete sub.cancellation.deletionDueAt;
    }
    // Deployments stay stopped: restarting them is the buyer's choice, so nothing runs (and bills) by surprise.
    if ((await act.restoreBilling(sub.ref, sub.owner!)) === 'kept-cancelled') {
      log.info('Resubscribed, but the account now pays another way; billing stays ended', { owner: sub.owner });
      return 'cancelled';
    }
    sub.setLinkPhase(sub.owner!, 'linked');
    return 'active';
  }

  /** The owner's claim ends without a link; the reservation is given back. */
  async function release(
    reason: 'LinkCancelled' | 'SubscriptionEnded' | Exclude<Awaited<ReturnType<typeof act.activate>>, undefined>,
    after?: () => void,
  ): Promise<SubscriptionPhase> {
    const owner = sub.owner!;
    await act.releaseLink(sub.ref, owner);
    sub.owner = undefined;
    sub.syncDeadline = undefined;
    sub.setLinkPhase(
      owner,
      reason === 'SubscriptionEnded' ? 'cancelled' : 'refused',
      reason === 'SubscriptionEnded' ? undefined : reason,
    );
    log.info('Link released', { accountId: owner, reason });
    after?.();
    return sub.awsEnded ? 'cancelled' : 'registered';
  }

  /** Every waiting link request gets its decision. */
  async function answerRequests(): Promise<void> {
    for (let pending = sub.nextRequest(); pending; pending = sub.nextRequest()) {
      const { accountId } = pending;
      if (sub.owner === accountId) {
        sub.answer(pending, sub.linkStatusOf(accountId) ?? sub.setLinkPhase(accountId, ownerLinkPhase()));
      } else if (sub.owner) {
        sub.answer(pending, sub.setLinkPhase(accountId, 'refused', 'CustomerLinkedToAnotherAccount'));
      } else if (sub.awsEnded || sub.phase === 'deleted' || sub.phase === 'cancelled') {
        sub.answer(pending, sub.setLinkPhase(accountId, 'refused', 'SubscriptionEnded'));
      } else {
        sub.setLinkPhase(accountId, 'checking');
        await act.publish(sub);
        const refusal = await act.claim(sub.ref, accountId);
        if (refusal) {
          log.info('Link refused', { accountId, refusal });
          sub.answer(pending, sub.setLinkPhase(accountId, 'refused', refusal));
          continue;
        }
        sub.owner = accountId;
        sub.syncDeadline = Date.now() + settings.syncTimeoutMs;
        sub.phase = 'awaiting-aws';
        sub.answer(pending, sub.setLinkPhase(accountId, 'waiting-for-aws'));
      }
    }
    await act.publish(sub);
  }

  function ownerLinkPhase() {
    if (sub.phase === 'sync-timed-out') return 'sync-timed-out' as const;
    if (sub.phase === 'awaiting-aws' || sub.phase === 'registered') return 'waiting-for-aws' as const;
    return ['active', 'unsubscribe-pending', 'awaiting-unsubscribe-success'].includes(sub.phase)
      ? ('linked' as const)
      : ('cancelled' as const);
  }
}
