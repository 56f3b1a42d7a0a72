/**
 * Hands one notification over to the subscription it is about, then records it
 * in the store under its unique id. A redelivery that the poller's memory did
 * not catch is recognised when its insert meets the existing record, after a
 * repeated signal that the workflow deduplicates by id.
 *
 * A notification about a subscription we have not registered yet (AWS may
 * notify before the buyer's browser reaches us) starts nothing: it is recorded
 * first, and the workflow reads the record when it starts. The lookup is
 * repeated after the record is written, so a registration racing with it is
 * signalled instead: either the workflow's start read the record, or this
 * second lookup sees the registration.
 */
import type { Db } from 'mongodb';
import { clampSentAt } from '../domain/aws-ordering';
import { licenseIdOf } from '../domain/subscription-identity';
import { recordNotification } from '../lib/store/marketplace';
import { createSubscriptionLookup } from '../lib/store/subscription-lookup';
import { signalAwsEvent, type SubscriptionTarget } from '../clients/subscription-client';
import type { SubscriptionEvent } from '../domain/subscription-model';
import type { MarketplaceNotification } from './messages';

/** signalled: the workflow has it; recorded: no registered subscription yet, the record waits for it; duplicate: already handed off. */
export type HandOffResult = 'signalled' | 'recorded' | 'duplicate';

export interface HandOffDeps {
  db: Db;
  subscriptions: SubscriptionTarget;
}

export type HandOff = (notification: MarketplaceNotification) => Promise<HandOffResult>;

export function createHandOff({ db, subscriptions }: HandOffDeps): HandOff {
  const findSubscriptionOf = createSubscriptionLookup(db);
  return async function handOff(notification) {
    const { messageId, ...fields } = notification;
    const receivedAt = new Date();
    const sentAt = new Date(clampSentAt(notification.sentAt, receivedAt));
    // The license id makes the record findable by equality whatever spelling of the ARN AWS used.
    const licenseId = notification.licenseArn ? { licenseId: licenseIdOf(notification.licenseArn) } : {};
    const record = () =>
      recordNotification(db, { _id: messageId, ...fields, ...licenseId, sentAt, receivedAt, handedOffAt: new Date() });
    const event: SubscriptionEvent = {
      id: messageId,
      action: notification.action,
      sentAt: sentAt.toISOString(),
      ...(notification.amendment ? { amendment: true } : {}),
      ...(notification.productCode ? { productCode: notification.productCode } : {}),
      ...(notification.licenseArn ? { licenseArn: notification.licenseArn } : {}),
      ...(notification.customerIdentifier ? { customerIdentifier: notification.customerIdentifier } : {}),
      ...(notification.offerIdentifier ? { offerIdentifier: notification.offerIdentifier } : {}),
    };

    let ref = await findSubscriptionOf(notification);
    if (ref) {
      await signalAwsEvent(subscriptions, ref, event);
      return (await record()) ? 'signalled' : 'duplicate';
    }
    const fresh = await record();
    ref = await findSubscriptionOf(notification);
    if (!ref) return fresh ? 'recorded' : 'duplicate';
    await signalAwsEvent(subscriptions, ref, event);
    return fresh ? 'signalled' : 'duplicate';
  };
}
