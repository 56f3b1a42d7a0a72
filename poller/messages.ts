/**
 * Turns one SQS body into what the poller acts on. Three formats arrive on the
 * queue: the SNS envelope (SNS's default delivery), the bare subscription
 * message (raw delivery) and EventBridge agreement events. An envelope is
 * trusted only from a configured topic and, unless verification is off, with a
 * valid SNS signature; raw and EventBridge bodies carry no signature, so for
 * them the queue policy is the boundary (see the README).
 */
import { classifyEventBridgeEvent, looksLikeEventBridgeEvent } from './formats/eventbridge';
import { jsonOf, type Classified } from './formats/classified';
import { classifyEnvelopeMessage, classifySubscriptionMessage, looksLikeSnsEnvelope, looksLikeSubscriptionMessage, parseSnsEnvelope } from './formats/sns';
import type { SnsSignatureVerifier } from './sns-signature';

export type { Classified, MarketplaceNotification, IgnoredNotification, NotificationFormat } from './formats/classified';

export interface TrustPolicy {
  /** The SNS topics whose envelopes are accepted; empty refuses every envelope. */
  topicArns: readonly string[];
  /** Undefined: signatures are not checked (only for local servers that cannot sign). */
  verifier?: SnsSignatureVerifier;
}

export type Received =
  | Classified
  /** An envelope we must not believe: a wrong topic or a bad signature (retryable: the certificate could not be fetched). */
  | { kind: 'untrusted'; check: 'topic' | 'signature'; reason: string; retryable: boolean };

export async function classifyMessage(body: string, sqsMessageId: string, trust: TrustPolicy): Promise<Received> {
  const json = jsonOf(body);
  if (json === undefined) return { kind: 'poison', reason: 'the body is not JSON' };
  if (looksLikeSnsEnvelope(json)) {
    const parsed = parseSnsEnvelope(json);
    if (!parsed.ok) return { kind: 'poison', reason: parsed.reason };
    const { envelope } = parsed;
    if (!trust.topicArns.includes(envelope.TopicArn)) {
      return { kind: 'untrusted', check: 'topic', reason: `TopicArn ${envelope.TopicArn.slice(0, 200)} is not a configured topic (SNS_TOPIC_ARN)`, retryable: false };
    }
    if (trust.verifier) {
      const verdict = await trust.verifier.verify(envelope);
      if (!verdict.ok) return { kind: 'untrusted', check: 'signature', reason: verdict.reason, retryable: verdict.retryable };
    }
    return classifyEnvelopeMessage(envelope);
  }
  if (looksLikeEventBridgeEvent(json)) return classifyEventBridgeEvent(json);
  if (looksLikeSubscriptionMessage(json)) return classifySubscriptionMessage(json, sqsMessageId, 'sns-raw', undefined);
  return { kind: 'poison', reason: 'neither an SNS envelope, a raw subscription message nor an EventBridge event' };
}
