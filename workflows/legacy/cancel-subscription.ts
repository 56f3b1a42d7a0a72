/**
 * One workflow per AWS customer (id `cancel:<awsAccount>:<product>`), started
 * or signalled by the poller on unsubscribe-pending or unsubscribe-success,
 * whichever comes first:
 *   unsubscribe-pending → final metering while AWS still accepts it;
 *   unsubscribe-success → billing ends, running deployments stop (the trial
 *   runs on until its trial ends), then a durable grace period (3 days by
 *   default) → the deployments it stopped, if still stopped, are deleted.
 * A subscribe-success before the deletion aborts it: the link is active again
 * and the stopped deployments are kept, stopped, for the buyer to restart.
 */
import {
  ActivityFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { DeleteOutcome, StopOutcome } from '../../activities/subscription/deployment-control';
import { BillingStatus, PlatformAccountId } from '../../domain/search-attributes';
import type { AwsCustomer } from '../../domain/link-model';
import { inputField } from '../common/update-input';

export type CancellationAction = 'unsubscribe-pending' | 'unsubscribe-success' | 'subscribe-success';

export interface CancellationNotification {
  messageId: string;
  action: CancellationAction;
  /** When AWS sent it (the SNS Timestamp): a notification older than the current subscription is stale. */
  sentAt: string;
}

export type CancellationPhase =
  | 'awaiting-notice'
  | 'ignored-stale'
  | 'final-metering'
  | 'awaiting-unsubscribe-success'
  | 'stopping'
  | 'grace-period'
  | 'deleting'
  | 'deleted'
  | 'aborted'
  | 'no-linked-account';

export interface CancellationState {
  customer: AwsCustomer;
  accountId?: string;
  phase: CancellationPhase;
  finalMetering?: { records: number; sent: number } | { error: string };
  stopped: Array<{ id: string; name: string; outcome: StopOutcome }>;
  keptRunning: Array<{ id: string; name: string; trialEndsAt?: string }>;
  deletionDueAt?: string;
  /** Workflow time the deletion started. */
  deletingAt?: string;
  deleted: Array<{ id: string; outcome: DeleteOutcome }>;
  abortedBy?: 'resubscription' | 'operator';
}

export interface CancelSubscriptionInput {
  customer: AwsCustomer;
  /** The grace period before deletion; 3 days unless a demo shortens it. */
  gracePeriodMs?: number;
}

export const THREE_DAYS_MS = 3 * 24 * 3_600_000;

export const subscriptionNotificationSignal = defineSignal<[CancellationNotification]>('subscriptionNotification');
export const cancellationStateQuery = defineQuery<CancellationState>('cancellationState');
/** Operator: delete the stopped deployments now instead of at the end of the grace period. */
export const deleteNowUpdate = defineUpdate<CancellationState, []>('deleteNow');
/** Operator: push the deletion back by some hours. */
export const extendGracePeriodUpdate = defineUpdate<CancellationState, [{ hours: number }]>('extendGracePeriod');
/** Operator: keep the stopped deployments; nothing is deleted. */
export const abortDeletionUpdate = defineUpdate<CancellationState, []>('abortDeletion');

const activities = proxyActivities<Activities>({
  // Short: these are single store or platform calls, and a worker that died holding one is noticed quickly.
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const { meterCustomerNow } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '5 seconds',
    maximumInterval: '1 minute',
    maximumAttempts: 6,
    nonRetryableErrorTypes: ['HourOutsideWindow'],
  },
});

export async function cancelSubscription(input: CancelSubscriptionInput): Promise<CancellationState> {
  const { customer } = input;
  const state: CancellationState = { customer, phase: 'awaiting-notice', stopped: [], keptRunning: [], deleted: [] };
  const notices: Array<{ action: CancellationAction; sentAt: number }> = [];
  const seen = new Set<string>();
  const operator = { deleteNow: false, abort: false, dueChanged: false };
  let deletionDue = 0;

  setHandler(subscriptionNotificationSignal, (n) => {
    if (seen.has(n.messageId)) return;
    seen.add(n.messageId);
    notices.push({ action: n.action, sentAt: Date.parse(n.sentAt) });
  });
  setHandler(cancellationStateQuery, () => state);
  const inGracePeriod = () => {
    if (state.phase !== 'grace-period')
      throw new Error(`only possible during the grace period; the cancellation is "${state.phase}"`);
  };
  setHandler(deleteNowUpdate, () => ((operator.deleteNow = true), state), { validator: inGracePeriod });
  setHandler(abortDeletionUpdate, () => ((operator.abort = true), state), { validator: inGracePeriod });
  setHandler(
    extendGracePeriodUpdate,
    ({ hours }) => {
      deletionDue += hours * 3_600_000;
      state.deletionDueAt = new Date(deletionDue).toISOString();
      operator.dueChanged = true;
      return state;
    },
    {
      validator: (extension: unknown) => {
        inGracePeriod();
        const hours = inputField(extension, 'hours');
        if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > 24 * 30) {
          throw new Error('hours must be a number above 0 and at most 720');
        }
      },
    },
  );
  const publish = async (phase: CancellationPhase) => {
    state.phase = phase;
    upsertSearchAttributes([
      { key: BillingStatus, value: `cancel:${phase}` },
      ...(state.accountId ? [{ key: PlatformAccountId, value: state.accountId }] : []),
    ]);
    if (state.accountId) await save(state);
  };
  // Only notifications sent after the current subscription began count: a redelivered or reordered one from an
  // earlier cycle must not cancel a paying customer, and an old subscribe-success must not undo a cancellation.
  const link = await activities.findLinkedAccount(customer);
  const since = link ? Date.parse(link.subscribedSince) : Number.POSITIVE_INFINITY;
  const fresh = (action: CancellationAction, after = since) =>
    notices.some((n) => n.action === action && n.sentAt > after);
  const leftAt = () =>
    Math.min(...notices.filter((n) => n.action !== 'subscribe-success' && n.sentAt > since).map((n) => n.sentAt));
  const leaving = () => fresh('unsubscribe-pending') || fresh('unsubscribe-success');
  const confirmed = () => fresh('unsubscribe-success');
  const resubscribed = () => leaving() && fresh('subscribe-success', leftAt());

  // 1. AWS says the buyer is leaving; unsubscribe-success may come first, and then metering is over.
  if (!(await condition(leaving, '1 day'))) return (await publish(link ? 'ignored-stale' : 'no-linked-account'), state);
  state.accountId = link!.accountId;
  if (!confirmed()) {
    await publish('final-metering');
    try {
      const totals = await meterCustomerNow(customer);
      state.finalMetering = { records: totals.records, sent: totals.sent };
    } catch (error) {
      // Final metering is worth an hour of retries, not the cancellation itself: record it for an operator and go on.
      state.finalMetering = {
        error: error instanceof ActivityFailure ? (error.cause?.message ?? error.message) : String(error),
      };
      log.error('Final metering failed', { customer, error: state.finalMetering.error });
    }
    await activities.markCancellationPending(customer);
    await publish('awaiting-unsubscribe-success');
    await condition(() => confirmed() || resubscribed());
    if (!confirmed()) return abort(state, 'resubscription', publish);
  }

  // 2. Billing ends, and every running deployment stops but the trial. The run id marks our stops: a later cycle
  // (same workflow id) never deletes what this one stopped, nor the other way round.
  const stoppedBy = `${workflowInfo().workflowId}@${workflowInfo().runId}`;
  await publish('stopping');
  await activities.endMarketplaceBilling({ customer, accountId: state.accountId });
  for (const deployment of await activities.listRunningDeployments(state.accountId)) {
    if (deployment.plan === 'trial') {
      state.keptRunning.push({
        id: deployment.id,
        name: deployment.name,
        ...(deployment.trialEndsAt ? { trialEndsAt: deployment.trialEndsAt } : {}),
      });
      continue;
    }
    const outcome = await activities.stopDeployment({ deploymentId: deployment.id, stoppedBy });
    state.stopped.push({ id: deployment.id, name: deployment.name, outcome });
  }

  // 3. A durable grace period: operators may shorten, extend or cancel it; a resubscription cancels it.
  deletionDue = Date.now() + (input.gracePeriodMs ?? THREE_DAYS_MS);
  state.deletionDueAt = new Date(deletionDue).toISOString();
  await publish('grace-period');
  for (;;) {
    // The page shows the new deletion date after an extension; the flag is cleared first so none is missed.
    if (operator.dueChanged) {
      operator.dueChanged = false;
      await save(state);
    }
    const interrupted = await condition(
      () => operator.deleteNow || operator.abort || resubscribed() || operator.dueChanged,
      Math.max(deletionDue - Date.now(), 1),
    );
    if (!interrupted || operator.deleteNow || operator.abort || resubscribed()) break;
  }
  if (resubscribed()) return abort(state, 'resubscription', publish);
  if (operator.abort) return abort(state, 'operator', publish);

  // 4. Delete what this workflow stopped, unless somebody restarted it meanwhile.
  state.deletingAt = new Date(Date.now()).toISOString();
  await publish('deleting');
  for (const { id, outcome } of state.stopped) {
    if (outcome !== 'stopped') continue;
    // A resubscription that lands mid-deletion still saves what is left.
    if (resubscribed()) return abort(state, 'resubscription', publish);
    state.deleted.push({
      id,
      outcome: await activities.deleteDeploymentIfStillStopped({ deploymentId: id, stoppedBy }),
    });
  }
  await publish('deleted');
  return state;
}

async function abort(
  state: CancellationState,
  by: 'resubscription' | 'operator',
  publish: (phase: CancellationPhase) => Promise<void>,
): Promise<CancellationState> {
  // Deployments stay stopped: restarting them is the buyer's choice, so nothing runs (and bills) by surprise.
  if (by === 'resubscription' && state.accountId)
    await activities.restoreMarketplaceBilling({ customer: state.customer, accountId: state.accountId });
  state.abortedBy = by;
  state.deletionDueAt = undefined;
  await publish('aborted');
  return state;
}

function save(state: CancellationState): Promise<void> {
  return activities.saveCancellation({
    customer: state.customer,
    accountId: state.accountId!,
    phase: state.phase,
    ...(state.deletionDueAt ? { deletionDueAt: state.deletionDueAt } : {}),
    stopped: state.stopped.filter((d) => d.outcome === 'stopped').map(({ id, name }) => ({ id, name })),
    deleted: state.deleted.filter((d) => d.outcome === 'deleted').map((d) => d.id),
  });
}
