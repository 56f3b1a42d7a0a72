/**
 * SNS subscription notifications. With SNS's default delivery the SQS body is
 * the signed envelope and the Marketplace message is a JSON string inside it;
 * with raw delivery the body is the message itself and carries no MessageId.
 */
import { checkWith, StringEnum, Type, type Static } from '../../lib/schema';
import { SnsEnvelope } from '../../lib/sns-envelope';
import type { NotificationAction } from '../../lib/store/marketplace';
import { describeIssues, jsonOf, type Classified, type EventFields } from './classified';

const ACTIONS = [
  'subscribe-success',
  'subscribe-fail',
  'unsubscribe-pending',
  'unsubscribe-success',
] as const satisfies readonly NotificationAction[];

/** Any action string is accepted here: an unknown one is recorded and acknowledged, not retried. */
const SubscriptionMessage = Type.Object({
  action: Type.String({ minLength: 1 }),
  'customer-identifier': Type.Optional(Type.String({ minLength: 1 })),
  'customer-aws-account-id': Type.Optional(Type.String({ pattern: '^[0-9]{12}$' })),
  'product-code': Type.String({ minLength: 1 }),
  'offer-identifier': Type.Optional(Type.String()),
  // AWS sends the *string* "true" or "false".
  isFreeTrialTermPresent: Type.Optional(StringEnum(['true', 'false'] as const)),
});
type SubscriptionMessage = Static<typeof SubscriptionMessage>;

const isKnownAction = (action: string): action is NotificationAction => (ACTIONS as readonly string[]).includes(action);

/** Any field of SNS's envelope makes a body an envelope claim, to be verified as one: dropping `Type` must not make it "raw". */
const ENVELOPE_FIELDS = ['Type', 'TopicArn', 'Signature', 'SignatureVersion', 'SigningCertURL', 'UnsubscribeURL'];

export function looksLikeSnsEnvelope(json: unknown): boolean {
  return typeof json === 'object' && json !== null && ENVELOPE_FIELDS.some((field) => Object.hasOwn(json, field));
}

export function looksLikeSubscriptionMessage(json: unknown): boolean {
  return typeof json === 'object' && json !== null && Object.hasOwn(json, 'action');
}

/** The subscription message, from inside an envelope (`format: 'sns'`) or delivered raw (`format: 'sns-raw'`). */
export function classifySubscriptionMessage(
  json: unknown,
  id: string,
  format: 'sns' | 'sns-raw',
  sentAt: Date | undefined,
): Classified {
  const parsed = checkWith(SubscriptionMessage, json);
  if (!parsed.ok) return { kind: 'poison', reason: `${format} message: ${describeIssues(parsed.issues)}` };
  const message: SubscriptionMessage = parsed.value;
  const customer = {
    productCode: message['product-code'],
    ...(message['customer-identifier'] ? { customerIdentifier: message['customer-identifier'] } : {}),
    ...(message['customer-aws-account-id'] ? { awsAccountId: message['customer-aws-account-id'] } : {}),
  };
  if (!customer.customerIdentifier && !customer.awsAccountId) {
    return {
      kind: 'poison',
      reason: `${format} message names no customer (customer-identifier or customer-aws-account-id)`,
    };
  }
  const { action } = message;
  if (!isKnownAction(action)) {
    return {
      kind: 'ignored',
      messageId: id,
      format,
      ...(sentAt ? { sentAt } : {}),
      reason: `unknown action "${action.slice(0, 80)}"`,
      ...customer,
    };
  }
  const fields: EventFields = {
    ...customer,
    action,
    ...(message['offer-identifier'] ? { offerIdentifier: message['offer-identifier'] } : {}),
    ...(message.isFreeTrialTermPresent ? { freeTrial: message.isFreeTrialTermPresent === 'true' } : {}),
    ...(sentAt ? { sentAt } : {}),
  };
  return { kind: 'event', notification: { messageId: id, format, ...fields } };
}

/** Parses the envelope only; the caller checks its topic and signature before trusting the message inside. */
export function parseSnsEnvelope(json: unknown): { ok: true; envelope: SnsEnvelope } | { ok: false; reason: string } {
  const parsed = checkWith(SnsEnvelope, json);
  return parsed.ok
    ? { ok: true, envelope: parsed.value }
    : { ok: false, reason: `SNS envelope: ${describeIssues(parsed.issues)}` };
}

export function classifyEnvelopeMessage(envelope: SnsEnvelope): Classified {
  const sentAt = new Date(envelope.Timestamp);
  const inner = jsonOf(envelope.Message);
  if (inner === undefined) return { kind: 'poison', reason: 'SNS message is not JSON' };
  return classifySubscriptionMessage(
    inner,
    envelope.MessageId,
    'sns',
    Number.isNaN(sentAt.getTime()) ? undefined : sentAt,
  );
}
