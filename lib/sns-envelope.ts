/**
 * The SNS Notification envelope, and the canonical string SNS signs for it:
 * shared by the poller, which verifies, and the sandbox, which signs.
 */
import { Type, type Static } from './schema';

export const SnsEnvelope = Type.Object({
  Type: Type.Literal('Notification'),
  MessageId: Type.String({ minLength: 1 }),
  TopicArn: Type.String({ minLength: 1 }),
  Subject: Type.Optional(Type.String()),
  Message: Type.String(),
  Timestamp: Type.String({ minLength: 1 }),
  SignatureVersion: Type.Optional(Type.String()),
  Signature: Type.Optional(Type.String()),
  SigningCertURL: Type.Optional(Type.String()),
  UnsubscribeURL: Type.Optional(Type.String()),
});
export type SnsEnvelope = Static<typeof SnsEnvelope>;

/** The fields SNS signs for a Notification, in this order, each as "name\nvalue\n" (Subject only when present). */
export function stringToSign(envelope: SnsEnvelope): string {
  const fields: Array<[string, string | undefined]> = [
    ['Message', envelope.Message],
    ['MessageId', envelope.MessageId],
    ['Subject', envelope.Subject],
    ['Timestamp', envelope.Timestamp],
    ['TopicArn', envelope.TopicArn],
    ['Type', envelope.Type],
  ];
  return fields.map(([name, value]) => (value === undefined ? '' : `${name}\n${value}\n`)).join('');
}
