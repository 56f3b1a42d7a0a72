/**
 * The subscription workflow's side effects, named for what they mean to the
 * process. Only activity *types* are imported; timeouts and retries live here
 * so the workflow reads as the business process.
 */
import {
  ActivityFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  AwsAccountId,
  AwsCustomerIdentifier,
  AwsLicenseArn,
  AwsProductCode,
  BillingStatus,
  PlatformAccountId,
} from '../../domain/search-attributes';
import type { LinkRefusal } from '../../domain/link-model';
import { count, WORKFLOW_COUNTERS, type AttentionReason } from '../common/metrics';
import type { SubscriptionRef } from '../../domain/subscription-identity';
import type { CancellationRecord } from '../../domain/subscription-model';
import type { SubscriptionState } from './state';

const store = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
/** The platform's deployment API: a 4xx other than 404 is a refusal that no retry fixes, and nothing retries for ever. */
const deployments = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  scheduleToCloseTimeout: '1 day',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: ['DeploymentRequestRefused', 'DeploymentAnswerInvalid'],
  },
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

export const loadSubscription = (ref: SubscriptionRef, legacyStoppedBy?: string) =>
  store.loadSubscription(ref, legacyStoppedBy);

/** Checks the platform's rules and reserves the subscription for the account; a refusal is an answer, not a failure. */
export const claim = (ref: SubscriptionRef, accountId: string): Promise<LinkRefusal | undefined> =>
  store.claimSubscription({ customer: ref, accountId });

export const activate = (ref: SubscriptionRef, accountId: string): Promise<LinkRefusal | undefined> =>
  store.activateSubscription({ customer: ref, accountId });

export const releaseLink = (ref: SubscriptionRef, accountId: string) => store.releaseLink({ customer: ref, accountId });

export const markCancellationPending = (ref: SubscriptionRef) => store.markCancellationPending(ref);

export const endMarketplaceBilling = (ref: SubscriptionRef, accountId: string) =>
  store.endMarketplaceBilling({ customer: ref, accountId });

export const restoreBilling = (ref: SubscriptionRef, accountId: string) =>
  store.restoreMarketplaceBilling({ customer: ref, accountId });

/** Final metering is worth an hour of retries, not the cancellation itself: a failure is recorded for an operator. */
export async function meterFinalHours(ref: SubscriptionRef): Promise<CancellationRecord['finalMetering']> {
  try {
    const totals = await meterCustomerNow(ref);
    return { records: totals.records, sent: totals.sent };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const cause = error.cause?.message ?? error.message;
    // Hourly metering still sends these hours while the link is unsubscribe-pending; after unsubscribe-success they are lost.
    log.error('Final metering failed; hourly metering sends what it can until unsubscribe-success', { message: cause });
    countAttention('final-metering-failed');
    return { error: cause };
  }
}

export async function stopAllButTrial(
  accountId: string,
  stoppedBy: string,
): Promise<Pick<CancellationRecord, 'stopped' | 'keptRunning'>> {
  const stopped: CancellationRecord['stopped'] = [];
  const keptRunning: CancellationRecord['keptRunning'] = [];
  for (const deployment of await deployments.listRunningDeployments(accountId)) {
    if (deployment.plan === 'trial') {
      keptRunning.push({
        id: deployment.id,
        name: deployment.name,
        ...(deployment.trialEndsAt ? { trialEndsAt: deployment.trialEndsAt } : {}),
      });
      continue;
    }
    // One deployment the platform refuses to stop must not keep the others running: it is recorded for an operator.
    const outcome = await deployments
      .stopDeployment({ deploymentId: deployment.id, stoppedBy })
      .catch(failedFor('stop', deployment.id));
    stopped.push({ id: deployment.id, name: deployment.name, outcome });
  }
  return { stopped, keptRunning };
}

export const deleteIfStillStopped = (deploymentId: string, stoppedBy: string) =>
  deployments.deleteDeploymentIfStillStopped({ deploymentId, stoppedBy }).catch(failedFor('delete', deploymentId));

function failedFor(action: string, deploymentId: string) {
  return (error: unknown): 'failed' => {
    if (!(error instanceof ActivityFailure)) throw error;
    log.error(`A deployment could not be ${action === 'stop' ? 'stopped' : 'deleted'}; an operator must act on it`, {
      deploymentId,
      message: error.cause?.message ?? error.message,
    });
    countAttention('step-failed');
    return 'failed';
  };
}

/** Counted on the worker's metrics endpoint, so an alert fires however many subscriptions there are. */
export function countAttention(reason: AttentionReason): void {
  count(WORKFLOW_COUNTERS.attentionNeeded, 1, reason);
}

/**
 * Persists what changed: the per-account link statuses, the subscription's
 * state for the pages and for a later run, the search attributes operators
 * filter on, and the Billing page's cancellation record.
 */
export async function publish(sub: SubscriptionState): Promise<void> {
  const { ref, phase, owner } = sub;
  const attributes = [
    { key: BillingStatus, value: phase },
    { key: AwsAccountId, value: ref.awsAccountId },
    // A released owner is no longer found by its account.
    { key: PlatformAccountId, value: owner ?? null },
    ...(ref.productCode ? [{ key: AwsProductCode, value: ref.productCode }] : []),
    ...(ref.licenseArn ? [{ key: AwsLicenseArn, value: ref.licenseArn }] : []),
    ...(sub.customerIdentifier ? [{ key: AwsCustomerIdentifier, value: sub.customerIdentifier }] : []),
  ];
  const shown = workflowInfo().typedSearchAttributes;
  // Only real changes reach the history.
  const changed = attributes.filter(({ key, value }) => (shown.get(key) ?? null) !== value);
  if (changed.length > 0) upsertSearchAttributes(changed);
  const details = [
    `**${phase}**`,
    owner ? `platform account \`${owner}\`` : 'no platform account',
    `AWS says *${sub.aws.status}*`,
    sub.syncDeadline !== undefined && (phase === 'awaiting-aws' || phase === 'sync-timed-out')
      ? `sync deadline ${new Date(sub.syncDeadline).toISOString()}`
      : '',
    sub.cancellation?.deletionDueAt && phase === 'grace-period' ? `deletion due ${sub.cancellation.deletionDueAt}` : '',
    sub.failure ? `step failed: ${sub.failure.message.slice(0, 200)} (retryNow)` : '',
  ].filter(Boolean);
  setCurrentDetails(details.join(' · '));
  const statuses = sub.takeUnpublished();
  const snapshot = sub.snapshot();
  const effects = sub.effects();
  for (const status of statuses) await store.publishLinkStatus(status);
  const fingerprint = JSON.stringify(snapshot);
  if (fingerprint !== sub.saved.fingerprint) {
    // Workflow time orders the saves across runs; the counter orders those within one task.
    await store.saveSubscription({ snapshot, version: Date.now() * 1000 + (sub.saved.count++ % 1000) });
    sub.saved.fingerprint = fingerprint;
  }
  sub.markPublished(effects);
}
