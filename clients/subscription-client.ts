/**
 * How the API and the poller reach a subscription's workflow. The poller uses
 * signal-with-start (a notification needs no answer); the API uses
 * update-with-start, so a link request returns the workflow's real decision.
 * Whichever comes first starts the workflow; the other joins it.
 */
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { awsEventSignal, requestLinkUpdate } from '../domain/subscription-messages';
import { subscription, type SubscriptionInput } from '../workflows/subscription/subscription';
import { licenseIdOf, subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import type { LinkAnswer, SubscriptionEvent, SubscriptionSettings } from '../domain/subscription-model';
import { AwsAccountId, AwsLicenseArn, AwsProductCode } from '../domain/search-attributes';
import { signalWithStartBounded } from '../lib/temporal';

export interface SubscriptionTarget {
  temporal: Client;
  taskQueue: string;
  settings: SubscriptionSettings;
}

/** How long a buyer's link request may wait for the workflow's decision before the API answers 503. */
const LINK_DECISION_DEADLINE_MS = 10_000;

/** How every starter starts a subscription's workflow: the API, the poller, and the migration of the replaced workflows. */
export function subscriptionStartOptions(
  target: Pick<SubscriptionTarget, 'taskQueue' | 'settings'>,
  ref: SubscriptionRef,
) {
  const input: SubscriptionInput = { ref, settings: target.settings };
  return {
    taskQueue: target.taskQueue,
    workflowId: subscriptionWorkflowId(ref),
    args: [input] as [SubscriptionInput],
    // A run that ended idle is followed by a new one, which starts from the state it saved.
    workflowIdReusePolicy: 'ALLOW_DUPLICATE' as const,
    typedSearchAttributes: [
      { key: AwsAccountId, value: ref.awsAccountId },
      ...(ref.productCode ? [{ key: AwsProductCode, value: ref.productCode }] : []),
      ...(ref.licenseArn ? [{ key: AwsLicenseArn, value: ref.licenseArn }] : []),
    ],
    staticSummary: `AWS Marketplace subscription of ${ref.awsAccountId}${ref.productCode ? ` to ${ref.productCode}` : ''}${ref.licenseArn ? ` (license ${licenseIdOf(ref.licenseArn)})` : ''}`,
    staticDetails: [
      `AWS account \`${ref.awsAccountId}\``,
      ref.productCode ? `product \`${ref.productCode}\`` : '',
      ref.licenseArn ? `license \`${ref.licenseArn}\`` : 'legacy model (account + product)',
      'Query `subscriptionState` for the phase and the last AWS events; operator updates: retrySync, cancelLink, confirmUnsubscribed, deleteNow, extendGracePeriod, abortDeletion, restoreSubscription.',
    ]
      .filter(Boolean)
      .join(' · '),
  };
}

export function signalAwsEvent(
  target: SubscriptionTarget,
  ref: SubscriptionRef,
  event: SubscriptionEvent,
): Promise<string> {
  return signalWithStartBounded(target.temporal, () =>
    target.temporal.workflow.signalWithStart(subscription, {
      ...subscriptionStartOptions(target, ref),
      signal: awsEventSignal,
      signalArgs: [event],
    }),
  );
}

/** The workflow's decision on the account's request; throws when Temporal cannot be reached in time. */
export function requestLink(target: SubscriptionTarget, ref: SubscriptionRef, accountId: string): Promise<LinkAnswer> {
  const startWorkflowOperation = new WithStartWorkflowOperation(subscription, {
    ...subscriptionStartOptions(target, ref),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return target.temporal.withDeadline(Date.now() + LINK_DECISION_DEADLINE_MS, () =>
    target.temporal.workflow.executeUpdateWithStart(requestLinkUpdate, {
      args: [{ accountId }],
      startWorkflowOperation,
    }),
  );
}
