/**
 * How the poller reaches an AWS customer's cancellation workflow:
 * unsubscribe-* starts it or joins it; subscribe-success only ever joins a
 * running one (it is how a resubscription aborts the deletion).
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { cancellationWorkflowId } from '../workflows/ids';
import { cancelSubscription, subscriptionNotificationSignal, type CancellationNotification } from '../workflows/cancel-subscription';
import type { AwsCustomer } from '../workflows/link-model';
import { AwsAccountId, AwsProductCode } from './search-attributes';

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
  const start = () => target.temporal.withDeadline(Date.now() + 5000, () =>
    target.temporal.workflow.signalWithStart(cancelSubscription, {
      taskQueue: target.taskQueue,
      workflowId,
      args: [{ customer, gracePeriodMs: target.gracePeriodMs }],
      signal: subscriptionNotificationSignal,
      signalArgs: [notification],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: AwsAccountId, value: customer.awsAccountId },
        { key: AwsProductCode, value: customer.productCode },
      ],
    }),
  );
  // Two pollers racing on a brand-new id can see "already started"; by then the workflow exists and the retry signals it.
  await start().catch((error: unknown) => (error instanceof WorkflowExecutionAlreadyStartedError ? start() : Promise.reject(error)));
  return 'signalled';
}
