/**
 * Hands one notification over: record it in the store (once per MessageId),
 * then signal the AWS customer's link workflow. The record is what makes the
 * order of events irrelevant: a link workflow that starts later reads it.
 */
import type { Db } from 'mongodb';
import { signalCancellation, type CancellationTarget } from '../lib/cancellation-client';
import { signalAwsNotification, type LinkWorkflowTarget } from '../lib/linking-client';
import { findAwsAccountId, recordNotification } from '../lib/store/marketplace';
import type { MarketplaceNotification } from './messages';

export type HandOffResult = 'signalled' | 'recorded';

export interface HandOffDeps {
  db: Db;
  workflows: LinkWorkflowTarget;
  cancellations: CancellationTarget;
}

export function createHandOff({ db, workflows, cancellations }: HandOffDeps) {
  return async function handOff(notification: MarketplaceNotification): Promise<HandOffResult> {
    const { messageId, ...fields } = notification;
    await recordNotification(db, { _id: messageId, ...fields, receivedAt: new Date() });
    const awsAccountId =
      notification.awsAccountId ??
      (notification.customerIdentifier ? await findAwsAccountId(db, notification.productCode, notification.customerIdentifier) : undefined);
    // A legacy customer we have not resolved yet: its link workflow will find the record when it starts.
    if (!awsAccountId) return 'recorded';
    const customer = { awsAccountId, productCode: notification.productCode };
    const { action } = notification;
    // Signalled even when the record existed: a crash after recording must not lose the signal; the workflows dedupe.
    if (action === 'subscribe-success' || action === 'subscribe-fail') {
      await signalAwsNotification(workflows, customer, { messageId, action });
    }
    // unsubscribe-* start or join the cancellation; a subscribe-success joins a running one (a resubscription).
    const sentAt = (notification.sentAt ?? new Date()).toISOString();
    if (action !== 'subscribe-fail') await signalCancellation(cancellations, customer, { messageId, action, sentAt });
    return 'signalled';
  };
}
