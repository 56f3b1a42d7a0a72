/**
 * Hands one notification over: record it in the store (once per MessageId),
 * then signal the AWS customer's link workflow. The record is what makes the
 * order of events irrelevant: a link workflow that starts later reads it.
 */
import type { Db } from 'mongodb';
import { signalAwsNotification, type LinkWorkflowTarget } from '../lib/linking-client';
import { findAwsAccountId, recordNotification } from '../lib/store/marketplace';
import type { MarketplaceNotification } from './messages';

export type HandOffResult = 'signalled' | 'recorded';

export interface HandOffDeps {
  db: Db;
  workflows: LinkWorkflowTarget;
}

export function createHandOff({ db, workflows }: HandOffDeps) {
  return async function handOff(notification: MarketplaceNotification): Promise<HandOffResult> {
    await recordNotification(db, {
      _id: notification.messageId,
      action: notification.action,
      productCode: notification.productCode,
      ...(notification.customerIdentifier ? { customerIdentifier: notification.customerIdentifier } : {}),
      ...(notification.awsAccountId ? { awsAccountId: notification.awsAccountId } : {}),
      ...(notification.offerIdentifier ? { offerIdentifier: notification.offerIdentifier } : {}),
      ...(notification.freeTrial !== undefined ? { freeTrial: notification.freeTrial } : {}),
      ...(notification.sentAt ? { sentAt: notification.sentAt } : {}),
      receivedAt: new Date(),
    });
    // Cancellation (unsubscribe-*) gets its own workflow in a later version; until then the record keeps it.
    if (notification.action !== 'subscribe-success' && notification.action !== 'subscribe-fail') return 'recorded';
    const awsAccountId =
      notification.awsAccountId ??
      (notification.customerIdentifier ? await findAwsAccountId(db, notification.productCode, notification.customerIdentifier) : undefined);
    // A legacy customer we have not resolved yet: its link workflow will find the record when it starts.
    if (!awsAccountId) return 'recorded';
    // Signalled even when the record existed: a crash after recording must not lose the signal; the workflow dedupes.
    await signalAwsNotification(workflows, { awsAccountId, productCode: notification.productCode }, {
      messageId: notification.messageId,
      action: notification.action,
    });
    return 'signalled';
  };
}
