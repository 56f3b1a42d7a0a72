/**
 * EventBridge `aws.agreement-marketplace` events, which replace SNS for new
 * listings. An EventBridge rule targeting SQS puts the bare event in the body.
 * Each detail type maps onto the SNS action with the same meaning, so the rest
 * of the service sees one kind of event.
 */
import { checkWith, Type } from '../../lib/schema';
import type { NotificationAction } from '../../lib/store/marketplace';
import { describeIssues, type Classified } from './classified';

export const EVENT_SOURCE = 'aws.agreement-marketplace';

/** undefined: understood, but no subscription change for a SaaS pay-as-you-go product. */
const ACTION_OF_DETAIL_TYPE: Record<string, NotificationAction | undefined> = {
  'Purchase Agreement Created - Manufacturer': 'subscribe-success',
  // AWS re-sends subscribe-success when an offer is amended.
  'Purchase Agreement Amended - Manufacturer': 'subscribe-success',
  // Opens the one-hour final-metering window.
  'Purchase Agreement Ended - Manufacturer': 'unsubscribe-pending',
  // Closes it.
  'License Deprovisioned - Manufacturer': 'unsubscribe-success',
  'License Updated - Manufacturer': undefined,
};

const AgreementEvent = Type.Object({
  id: Type.String({ minLength: 1 }),
  'detail-type': Type.String({ minLength: 1 }),
  source: Type.String({ minLength: 1 }),
  time: Type.Optional(Type.String()),
  detail: Type.Object({
    agreement: Type.Optional(Type.Object({ id: Type.Optional(Type.String()), status: Type.Optional(Type.String()) })),
    acceptor: Type.Object({ accountId: Type.String({ pattern: '^[0-9]{12}$' }) }),
    offer: Type.Optional(Type.Object({ id: Type.Optional(Type.String()) })),
    product: Type.Object({ code: Type.String({ minLength: 1 }) }),
    license: Type.Optional(Type.Object({ arn: Type.Optional(Type.String()) })),
  }),
});

export function looksLikeEventBridgeEvent(json: unknown): boolean {
  return typeof json === 'object' && json !== null && 'detail-type' in json && 'source' in json;
}

export function classifyEventBridgeEvent(json: unknown): Classified {
  const parsed = checkWith(AgreementEvent, json);
  if (!parsed.ok) {
    const head = json as { id?: unknown; source?: unknown; 'detail-type'?: unknown };
    // Someone else's event on our queue: understood enough to acknowledge, never ours to retry.
    if (typeof head.id === 'string' && head.id && head.source !== EVENT_SOURCE) {
      return { kind: 'ignored', messageId: head.id, format: 'eventbridge', reason: `event source "${String(head.source).slice(0, 80)}" is not ${EVENT_SOURCE}` };
    }
    return { kind: 'poison', reason: `EventBridge event: ${describeIssues(parsed.issues)}` };
  }
  const event = parsed.value;
  const time = event.time ? new Date(event.time) : undefined;
  const sentAt = time && !Number.isNaN(time.getTime()) ? time : undefined;
  const detailType = event['detail-type'];
  const customer = { productCode: event.detail.product.code, awsAccountId: event.detail.acceptor.accountId };
  const common = { messageId: event.id, format: 'eventbridge' as const, detailType, ...(sentAt ? { sentAt } : {}), ...customer };
  if (event.source !== EVENT_SOURCE) return { kind: 'ignored', ...common, reason: `event source "${event.source.slice(0, 80)}" is not ${EVENT_SOURCE}` };
  const action = ACTION_OF_DETAIL_TYPE[detailType];
  if (!action) {
    const reason = detailType in ACTION_OF_DETAIL_TYPE ? `${detailType}: no subscription change` : `unknown detail type "${detailType.slice(0, 80)}"`;
    return { kind: 'ignored', ...common, reason };
  }
  return {
    kind: 'event',
    notification: {
      ...common,
      action,
      ...(event.detail.offer?.id ? { offerIdentifier: event.detail.offer.id } : {}),
      ...(event.detail.license?.arn ? { licenseArn: event.detail.license.arn } : {}),
    },
  };
}
