/**
 * How the API and the poller reach an AWS customer's link workflow. Both use
 * signalWithStart on the id built from the customer, so whichever comes first
 * starts the workflow and the other joins it; nothing waits for the other.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { linkWorkflowId } from '../workflows/ids';
import { awsNotificationSignal, linkAccount, requestLinkSignal, type LinkAccountInput } from '../workflows/link-account';
import type { AwsCustomer, AwsSyncNotification } from '../workflows/link-model';
import { AwsAccountId, AwsProductCode } from './search-attributes';

export interface LinkWorkflowTarget {
  temporal: Client;
  taskQueue: string;
  syncTimeoutMs: number;
  /** How long a hand-off may take before the caller gives up; a buyer is waiting on the API's. */
  deadlineMs?: number;
}

const DEFAULT_DEADLINE_MS = 5000;

function startOptions(target: LinkWorkflowTarget, customer: AwsCustomer) {
  const input: LinkAccountInput = { customer, syncTimeoutMs: target.syncTimeoutMs };
  return {
    taskQueue: target.taskQueue,
    workflowId: linkWorkflowId(customer),
    args: [input] as [LinkAccountInput],
    // A finished link may be followed by a new run (a retry after a refusal, a re-sent subscribe-success).
    workflowIdReusePolicy: 'ALLOW_DUPLICATE' as const,
    typedSearchAttributes: [
      { key: AwsAccountId, value: customer.awsAccountId },
      { key: AwsProductCode, value: customer.productCode },
    ],
  };
}

/**
 * Two starters racing on a brand-new id can see "already started" (the
 * time-skipping test server does this under concurrent signalWithStart); by
 * then the workflow exists, so the second attempt simply signals it.
 */
async function signalWithStartOnce(target: LinkWorkflowTarget, start: () => Promise<{ workflowId: string }>): Promise<string> {
  const attempt = () => target.temporal.withDeadline(Date.now() + (target.deadlineMs ?? DEFAULT_DEADLINE_MS), start);
  try {
    return (await attempt()).workflowId;
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    return (await attempt()).workflowId;
  }
}

export function signalLinkRequest(target: LinkWorkflowTarget, customer: AwsCustomer, accountId: string): Promise<string> {
  return signalWithStartOnce(target, () =>
    target.temporal.workflow.signalWithStart(linkAccount, {
      ...startOptions(target, customer),
      signal: requestLinkSignal,
      signalArgs: [{ accountId }],
    }),
  );
}

export function signalAwsNotification(target: LinkWorkflowTarget, customer: AwsCustomer, notification: AwsSyncNotification): Promise<string> {
  return signalWithStartOnce(target, () =>
    target.temporal.workflow.signalWithStart(linkAccount, {
      ...startOptions(target, customer),
      signal: awsNotificationSignal,
      signalArgs: [notification],
    }),
  );
}
