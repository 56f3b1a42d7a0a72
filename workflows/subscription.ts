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
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import * as act from './subscription-activities';
import {
  abortDeletionUpdate,
  awsEventSignal,
  cancelLinkUpdate,
  confirmUnsubscribedUpdate,
  deleteNowUpdate,
  extendGracePeriodUpdate,
  requestLinkUpdate,
  restoreSubscriptionUpdate,
  retrySyncUpdate,
  subscriptionStateQuery,
} from './subscription-messages';
import type { SubscriptionRef } from './subscription-identity';
import type { CancellationRecord, SubscriptionPhase, SubscriptionSettings, SubscriptionSnapshot } from './subscription-model';
import { SubscriptionState } from './subscription-state';

export interface SubscriptionInput {
  ref: SubscriptionRef;
  settings: SubscriptionSettings;
  /** Set only by continue-as-new. */
  resume?: SubscriptionSnapshot;
}

const HOUR_MS = 3_600_000;
const DEFAULT_IDLE_MS = 30 * 24 * HOUR_MS;
const DEFAULT_UNSUBSCRIBE_WAIT_MS = 6 * HOUR_MS;

/** Operator requests, taken by the phase they belong to. */
interface OperatorRequests {
  retrySync: boolean;
  cancelLink: boolean;
  confirmUnsubscribed: boolean;
  deleteNow: boolean;
  abortDeletion: boolean;
  restore: boolean;
  dueChanged: boolean;
}

export async function subscription(input: SubscriptionInput): Promise<SubscriptionSnapshot> {
  const { settings } = input;
  const sub = new SubscriptionState(input.resume ?? { ref: input.ref }, () => Date.now());
  const ops: OperatorRequests = { retrySync: false, cancelLink: false, confirmUnsubscribed: false, deleteNow: false, abortDeletion: false, restore: false, dueChanged: false };

  // --- Handlers: state first, then every way in. ---
  setHandler(awsEventSignal, (event) => sub.receive(event));
  setHandler(subscriptionStateQuery, () => sub.view());
  setHandler(
    requestLinkUpdate,
    async ({ accountId }) => {
      const pending = sub.request(accountId);
      await condition(() => pending.answer !== undefined);
      await sub.published();
      return pending.answer!;
    },
    { validator: (request) => assertAccountId(request?.accountId) },
  );
  const operatorUpdate = <R>(flag: keyof OperatorRequests, phases: SubscriptionPhase[], done: () => boolean, result: () => R) => ({
    handler: async () => {
      ops[flag] = true;
      await condition(done);
      // Answered once the pages and the search attributes show it too.
      await sub.published();
      return result();
    },
    validator: () => assertPhase(sub.phase, phases, flag),
  });
  for (const [definition, flag, phases, done] of [
    [retrySyncUpdate, 'retrySync', ['sync-timed-out'], () => sub.phase !== 'sync-timed-out'],
    [cancelLinkUpdate, 'cancelLink', ['awaiting-aws', 'sync-timed-out'], () => !ops.cancelLink],
    [confirmUnsubscribedUpdate, 'confirmUnsubscribed', ['awaiting-unsubscribe-success'], () => !ops.confirmUnsubscribed],
  ] as const) {
    const { handler, validator } = operatorUpdate(flag, [...phases], done, () => sub.view());
    setHandler(definition, handler, { validator });
  }
  const restore = operatorUpdate('restore', ['grace-period', 'deleted', 'cancelled'], () => !ops.restore, () => sub.view());
  setHandler(
    restoreSubscriptionUpdate,
    async ({ reason }) => {
      log.warn('Operator restores a cancelled subscription', { reason, owner: sub.owner });
      return restore.handler();
    },
    {
      validator: (input) => {
        restore.validator();
        if (!sub.owner) refuse('restoreSubscription needs a linked platform account; this subscription has none', 'InvalidPhase');
        if (typeof input?.reason !== 'string' || input.reason.trim().length < 3) refuse('give the reason (for the audit trail)', 'InvalidRequest');
      },
    },
  );
  const cancellation = () => sub.cancellation!;
  for (const [definition, flag, done] of [
    [deleteNowUpdate, 'deleteNow', () => !ops.deleteNow],
    [abortDeletionUpdate, 'abortDeletion', () => !ops.abortDeletion],
  ] as const) {
    const { handler, validator } = operatorUpdate(flag, ['grace-period'], done, cancellation);
    setHandler(definition, handler, { validator });
  }
  setHandler(
    extendGracePeriodUpdate,
    async ({ hours }) => {
      const due = Date.parse(sub.cancellation!.deletionDueAt!) + hours * HOUR_MS;
      sub.cancellation!.deletionDueAt = new Date(due).toISOString();
      ops.dueChanged = true;
      await sub.published();
      return sub.cancellation!;
    },
    {
      validator: (extension) => {
        assertPhase(sub.phase, ['grace-period'], 'extendGracePeriod');
        if (!Number.isFinite(extension?.hours) || extension.hours <= 0 || extension.hours > 24 * 30) {
          refuse('hours must be a number above 0 and at most 720', 'InvalidRequest');
        }
      },
    },
  );

  // --- Start: what the store knows (a saved run, or the workflows this one replaced). ---
  if (!input.resume) {
    const stored = await act.loadSubscription(sub.ref);
    sub.restore(stored.snapshot, stored.recorded);
    // A reservation restored from the replaced linkAccount workflow gets a full sync timeout from now.
    if (sub.phase === 'awaiting-aws' && sub.syncDeadline === undefined) sub.syncDeadline = Date.now() + settings.syncTimeoutMs;
    // A billed subscription restored from them has been activated for its current AWS period.
    if ((sub.phase === 'active' || sub.phase === 'awaiting-unsubscribe-success') && sub.handledPeriodAt === undefined) sub.handledPeriodAt = sub.aws.periodStartedAt;
  }

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
    const next = await phases[sub.phase]();
    if (next !== 'idle') {
      sub.phase = next;
    } else {
      // Idle for long: end this run (its state is saved; the next event starts a new one), unless something just came in.
      await condition(allHandlersFinished);
      // Saved before the end: the next run starts from it, so nothing this run applied is lost.
      await act.publish(sub);
      if (sub.received === received && !sub.hasRequests) {
        log.info('Subscription idle: run complete, state saved', { phase: sub.phase });
        return sub.snapshot();
      }
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (settings.maxHistoryEvents ?? 10_000)) {
      await act.publish(sub);
      await condition(allHandlersFinished);
      // Every request was answered and every event applied: the snapshot carries the rest.
      return continueAsNew<typeof subscription>({ ref: sub.ref, settings, resume: sub.snapshot() });
    }
  }

  /** No platform account yet: the buyer's link request decides. AWS may already have spoken. */
  async function registered(): Promise<SubscriptionPhase | 'idle'> {
    if (!(await condition(() => sub.hasRequests, settings.idleMs ?? DEFAULT_IDLE_MS))) return 'idle';
    await answerRequests();
    return sub.owner ? 'awaiting-aws' : 'registered';
  }

  /** A platform account holds the reservation; AWS confirms with subscribe-success (it may have, long ago). */
  async function awaitingAws(): Promise<SubscriptionPhase> {
    const changes = sub.awsChanges;
    const timeLeft = sub.phase === 'sync-timed-out' ? undefined : (sub.syncDeadline ?? 0) - Date.now();
    const wake = () => sub.awsSubscribed || sub.awsEnded || sub.hasRequests || ops.cancelLink || ops.retrySync || sub.awsChanges !== changes;
    const woke = timeLeft === undefined ? (await condition(wake), true) : timeLeft > 0 && (await condition(wake, timeLeft));
    await answerRequests();
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
      log.warn('AWS has not confirmed the subscription within the sync timeout; an operator may retrySync or cancelLink', { owner: sub.owner });
      act.countOverdue('sync-timed-out');
      sub.setLinkPhase(sub.owner!, 'sync-timed-out');
      return 'sync-timed-out';
    }
    if (sub.owner) sub.setLinkPhase(sub.owner, sub.phase === 'sync-timed-out' ? 'sync-timed-out' : 'waiting-for-aws');
    return sub.phase;
  }

  /** Paid through AWS Marketplace; hourly metering reads the link. Waits for AWS to say the buyer is leaving. */
  async function active(): Promise<SubscriptionPhase> {
    await condition(() => sub.awsLeaving || sub.awsEnded || sub.hasRequests);
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
    if (!(await condition(wake, settings.unsubscribeWaitMs ?? DEFAULT_UNSUBSCRIBE_WAIT_MS))) {
      log.warn('unsubscribe-success has not arrived; metering continues. An operator may confirmUnsubscribed once AWS confirms the end', { owner: sub.owner });
      act.countOverdue('awaiting-unsubscribe-success');
      await condition(wake);
    }
    await answerRequests();
    if (sub.awsSubscribed) return resubscribe();
    if (sub.awsEnded || ops.confirmUnsubscribed) {
      ops.confirmUnsubscribed = false;
      return 'stopping';
    }
    return 'awaiting-unsubscribe-success';
  }

  /** Billing ends, and every running deployment stops but the trial, which runs until its trial ends. */
  async function stopping(): Promise<SubscriptionPhase> {
    const { workflowId, runId } = workflowInfo();
    const record = sub.cancellation ?? newCancellation();
    record.stoppedBy = `${workflowId}@${runId}`;
    await act.endMarketplaceBilling(sub.ref, sub.owner!);
    sub.setLinkPhase(sub.owner!, 'cancelled');
    const { stopped, keptRunning } = await act.stopAllButTrial(sub.owner!, record.stoppedBy);
    record.stopped = stopped;
    record.keptRunning = keptRunning;
    record.deletionDueAt = new Date(Date.now() + settings.gracePeriodMs).toISOString();
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
    const woke = await condition(() => sub.newPeriod || sub.hasRequests || ops.restore, settings.idleMs ?? DEFAULT_IDLE_MS);
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
  async function release(reason: 'LinkCancelled' | 'SubscriptionEnded' | Exclude<Awaited<ReturnType<typeof act.activate>>, undefined>, after?: () => void): Promise<SubscriptionPhase> {
    const owner = sub.owner!;
    await act.releaseLink(sub.ref, owner);
    sub.owner = undefined;
    sub.syncDeadline = undefined;
    sub.setLinkPhase(owner, reason === 'SubscriptionEnded' ? 'cancelled' : 'refused', reason === 'SubscriptionEnded' ? undefined : reason);
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
    return ['active', 'unsubscribe-pending', 'awaiting-unsubscribe-success'].includes(sub.phase) ? ('linked' as const) : ('cancelled' as const);
  }
}

// Refused requests are answers, not faults: non-retryable, with no stack worth logging.
function refuse(message: string, type: 'InvalidRequest' | 'InvalidPhase'): never {
  throw ApplicationFailure.create({ message, type, nonRetryable: true });
}

function assertAccountId(accountId: unknown): void {
  if (typeof accountId !== 'string' || !/^[A-Za-z0-9_.:@-]{1,128}$/.test(accountId)) refuse('accountId must be a platform account id', 'InvalidRequest');
}

function assertPhase(phase: SubscriptionPhase, allowed: SubscriptionPhase[], action: string): void {
  if (!allowed.includes(phase)) refuse(`${action} is only possible in ${allowed.join(' or ')}; the subscription is "${phase}"`, 'InvalidPhase');
}
