/**
 * What arrives on the notification queue. With SNS's default delivery the SQS
 * body is the SNS envelope and the Marketplace message is a JSON string inside
 * it; with raw delivery the body is the message itself. Both are validated with
 * the project's schema library.
 */
import { parseWith, StringEnum, Type, type Static } from '../lib/schema';
import type { NotificationAction, NotificationDoc } from '../lib/store/marketplace';

const SnsEnvelope = Type.Object({
  Type: Type.Literal('Notification'),
  MessageId: Type.String({ minLength: 1 }),
  TopicArn: Type.String({ minLength: 1 }),
  Message: Type.String(),
  Timestamp: Type.Optional(Type.String()),
});

const ACTIONS = ['subscribe-success', 'subscribe-fail', 'unsubscribe-pending', 'unsubscribe-success'] as const satisfies readonly NotificationAction[];

const SubscriptionMessage = Type.Object({
  action: StringEnum(ACTIONS),
  'customer-identifier': Type.Optional(Type.String({ minLength: 1 })),
  'customer-aws-account-id': Type.Optional(Type.String({ pattern: '^[0-9]{12}$' })),
  'product-code': Type.String({ minLength: 1 }),
  'offer-identifier': Type.Optional(Type.String()),
  // AWS sends the *string* "true" or "false".
  isFreeTrialTermPresent: Type.Optional(StringEnum(['true', 'false'] as const)),
});
type SubscriptionMessage = Static<typeof SubscriptionMessage>;

/** A notification as parsed: what the store records for it, keyed by its MessageId. */
export type MarketplaceNotification = Omit<NotificationDoc, '_id' | 'receivedAt'> & { messageId: string };

export type ParseResult = { ok: true; notification: MarketplaceNotification } | { ok: false; reason: string };

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function fromMessage(message: SubscriptionMessage, messageId: string, extra: { sentAt?: Date }): ParseResult {
  if (!message['customer-identifier'] && !message['customer-aws-account-id']) {
    return { ok: false, reason: 'the message names no customer (customer-identifier or customer-aws-account-id)' };
  }
  return {
    ok: true,
    notification: {
      messageId,
      action: message.action,
      productCode: message['product-code'],
      ...(message['customer-identifier'] ? { customerIdentifier: message['customer-identifier'] } : {}),
      ...(message['customer-aws-account-id'] ? { awsAccountId: message['customer-aws-account-id'] } : {}),
      ...(message['offer-identifier'] ? { offerIdentifier: message['offer-identifier'] } : {}),
      ...(message.isFreeTrialTermPresent ? { freeTrial: message.isFreeTrialTermPresent === 'true' } : {}),
      ...extra,
    },
  };
}

function describe(issues: Array<{ path: string; message: string }>): string {
  return issues.slice(0, 3).map((issue) => `${issue.path || '(root)'} ${issue.message}`).join('; ');
}

/** Parses one SQS body; `sqsMessageId` identifies raw deliveries, which carry no SNS MessageId. */
export function parseNotification(body: string, sqsMessageId: string): ParseResult {
  const json = jsonOf(body);
  if (json === undefined) return { ok: false, reason: 'the body is not JSON' };
  const envelope = parseWith(SnsEnvelope, json);
  if (envelope.ok) {
    const inner = parseWith(SubscriptionMessage, jsonOf(envelope.value.Message));
    if (!inner.ok) return { ok: false, reason: `SNS message: ${describe(inner.issues)}` };
    const sentAt = envelope.value.Timestamp ? new Date(envelope.value.Timestamp) : undefined;
    return fromMessage(inner.value, envelope.value.MessageId, sentAt ? { sentAt } : {});
  }
  const raw = parseWith(SubscriptionMessage, json);
  if (raw.ok) return fromMessage(raw.value, sqsMessageId, {});
  return { ok: false, reason: `neither an SNS envelope nor a raw subscription message: ${describe(raw.issues)}` };
}
