/**
 * How the world talks to a subscription workflow. Module-scope definitions,
 * exported for the API, the poller, operators' scripts and tests.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CancellationRecord, LinkAnswer, SubscriptionEvent, SubscriptionView } from './subscription-model';

/** From the poller (signal-with-start): one AWS notification. */
export const awsEventSignal = defineSignal<[SubscriptionEvent]>('awsEvent');

/** From the API (update-with-start): the signed-in account asks to pay through this subscription; returns the decision. */
export const requestLinkUpdate = defineUpdate<LinkAnswer, [{ accountId: string }]>('requestLink');

export const subscriptionStateQuery = defineQuery<SubscriptionView>('subscriptionState');

// Operator actions. Each returns after it took effect, and its validator refuses what can no longer happen.

/** sync-timed-out: wait for AWS again, for another full sync timeout. */
export const retrySyncUpdate = defineUpdate<SubscriptionView, []>('retrySync');
/** awaiting-aws or sync-timed-out: give the reservation back, so the account can link elsewhere. */
export const cancelLinkUpdate = defineUpdate<SubscriptionView, []>('cancelLink');
/** awaiting-unsubscribe-success: AWS confirmed the end elsewhere (console, support); proceed as if unsubscribe-success arrived. */
export const confirmUnsubscribedUpdate = defineUpdate<SubscriptionView, []>('confirmUnsubscribed');
/** grace-period: delete the stopped deployments now; returns once they are deleted. */
export const deleteNowUpdate = defineUpdate<CancellationRecord, []>('deleteNow');
/** grace-period: push the deletion back. */
export const extendGracePeriodUpdate = defineUpdate<CancellationRecord, [{ hours: number }]>('extendGracePeriod');
/** grace-period: keep the stopped deployments; nothing is deleted, billing stays ended. */
export const abortDeletionUpdate = defineUpdate<CancellationRecord, []>('abortDeletion');
/**
 * grace-period, deleted or cancelled after a wrong cancellation (AWS confirms the
 * buyer is still subscribed): billing through AWS Marketplace is restored and
 * the deletion, if pending, is aborted. The stopped deployments stay stopped for the buyer to restart.
 */
export const restoreSubscriptionUpdate = defineUpdate<SubscriptionView, [{ reason: string }]>('restoreSubscription');
/** After a step failed beyond its retries (see `failure` in the state): try the phase again now instead of in an hour. */
export const retryNowUpdate = defineUpdate<SubscriptionView, []>('retryNow');
