/**
 * How the poller reaches an AWS customer's cancellation workflow:
 * unsubscribe-* starts it or joins it; subscribe-success only ever joins a
 * running one (it is how a resubscription aborts the deletion).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { cancellationWorkflowId } from '../workflows/ids';
import { cancelSubscription, subscriptionNotificationSignal, type CancellationNotification } from '../workflows/cancel-subscription';
import type { AwsCustomer } from '../workflows/link-model';
import { customerSearchAttributes, signalWithStartBounded } from './temporal';

export interface CancellationTarget {
  temporal: Client;
  taskQueue: string;
  gracePeriodMs: number;
}

export async function signalCancellation(target: CancellationTarget, customer: AwsCustomer, notification: CancellationNotification): Promise<'signalled' | 'no-cancellation'> {
  const workflowId = cancellationWorkflowId(customer);
  if (notification.action === 'subscribe-success') {
    try {
      await target.temporal.workflow.getHandle(workflowId).signal(subscriptionNotificationSignal, notification);
      return 'signalled';
    } catch (error) {
      // No cancellation running (or it already finished): a plain subscribe-success is the link workflow's business.
      if (error instanceof WorkflowNotFoundError) return 'no-cancellation';
      throw error;
    }
  }
  await signalWithStartBounded(target.temporal, () =>
    target.temporal.workflow.signalWithStart(cancelSubscription, {
      taskQueue: target.taskQueue,
      workflowId,
      args: [{ customer, gracePeriodMs: target.gracePeriodMs }],
      signal: subscriptionNotificationSignal,
      signalArgs: [notification],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: customerSearchAttributes(customer),
    }),
  );
  return 'signalled';
}
