/**
 * Hands one notification over: signal the AWS customer's workflows, then
 * record it in the store under its unique id. The insert is the only store
 * write, and no read is needed (reads by key scan the collection in the
 * SQLite-backed store): a redelivery that the poller's memory did not catch
 * is recognised when its insert meets the existing record, after a repeated
 * signal that the workflows deduplicate by id. A crash between signal and
 * record is the same case. The record is also what a link workflow that
 * starts later reads, so the order of events does not matter.
 */
import type { Db } from 'mongodb';
import { signalCancellation, type CancellationTarget } from '../lib/cancellation-client';
import { signalAwsNotification, type LinkWorkflowTarget } from '../lib/linking-client';
import { findAwsAccountId, recordNotification } from '../lib/store/marketplace';
import type { MarketplaceNotification } from './messages';

/** signalled: the workflows have it; recorded: no known AWS account yet, the record waits for the workflow; duplicate: already handed off. */
export type HandOffResult = 'signalled' | 'recorded' | 'duplicate';

export interface HandOffDeps {
  db: Db;
  workflows: LinkWorkflowTarget;
  cancellations: CancellationTarget;
}

export type HandOff = (notification: MarketplaceNotification) => Promise<HandOffResult>;

export function createHandOff({ db, workflows, cancellations }: HandOffDeps): HandOff {
  return async function handOff(notification) {
    const { messageId, ...fields } = notification;
    const receivedAt = new Date();
    const result = await signalWorkflows(notification);
    const fresh = await recordNotification(db, { _id: messageId, ...fields, receivedAt, handedOffAt: new Date() });
    return fresh ? result : 'duplicate';
  };

  async function signalWorkflows(notification: MarketplaceNotification): Promise<'signalled' | 'recorded'> {
    const { messageId, action, productCode } = notification;
    const awsAccountId =
      notification.awsAccountId ??
      (notification.customerIdentifier ? await findAwsAccountId(db, productCode, notification.customerIdentifier) : undefined);
    // A legacy customer we have not resolved yet: its link workflow will find the record when it starts.
    if (!awsAccountId) return 'recorded';
    const customer = { awsAccountId, productCode };
    if (action === 'subscribe-success' || action === 'subscribe-fail') {
      await signalAwsNotification(workflows, customer, { messageId, action });
    }
    // unsubscribe-* start or join the cancellation; a subscribe-success joins a running one (a resubscription).
    const sentAt = (notification.sentAt ?? new Date()).toISOString();
    if (action !== 'subscribe-fail') await signalCancellation(cancellations, customer, { messageId, action, sentAt });
    return 'signalled';
  }
}
