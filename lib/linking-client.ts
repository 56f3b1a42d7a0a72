/**
 * How the API and the poller reach an AWS customer's link workflow. Both use
 * signalWithStart on the id built from the customer, so whichever comes first
 * starts the workflow and the other joins it; nothing waits for the other.
 */
import type { Client } from '@temporalio/client';
import { linkWorkflowId } from '../workflows/ids';
import { awsNotificationSignal, linkAccount, requestLinkSignal, type LinkAccountInput } from '../workflows/link-account';
import type { AwsCustomer, AwsSyncNotification } from '../workflows/link-model';
import { customerSearchAttributes, signalWithStartBounded } from './temporal';

export interface LinkWorkflowTarget {
  temporal: Client;
  taskQueue: string;
  syncTimeoutMs: number;
}

function startOptions(target: LinkWorkflowTarget, customer: AwsCustomer) {
  const input: LinkAccountInput = { customer, syncTimeoutMs: target.syncTimeoutMs };
  return {
    taskQueue: target.taskQueue,
    workflowId: linkWorkflowId(customer),
    args: [input] as [LinkAccountInput],
    // A finished link may be followed by a new run (a retry after a refusal, a re-sent subscribe-success).
    workflowIdReusePolicy: 'ALLOW_DUPLICATE' as const,
    typedSearchAttributes: customerSearchAttributes(customer),
  };
}

export function signalLinkRequest(target: LinkWorkflowTarget, customer: AwsCustomer, accountId: string): Promise<string> {
  return signalWithStartBounded(target.temporal, () =>
    target.temporal.workflow.signalWithStart(linkAccount, {
      ...startOptions(target, customer),
      signal: requestLinkSignal,
      signalArgs: [{ accountId }],
    }),
  );
}

export function signalAwsNotification(target: LinkWorkflowTarget, customer: AwsCustomer, notification: AwsSyncNotification): Promise<string> {
  return signalWithStartBounded(target.temporal, () =>
    target.temporal.workflow.signalWithStart(linkAccount, {
      ...startOptions(target, customer),
      signal: awsNotificationSignal,
      signalArgs: [notification],
    }),
  );
}
