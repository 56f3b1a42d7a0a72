/**
 * Turns one SQS body into what the poller acts on, trusting it only as far as
 * its source vouches for it. Three formats can arrive: the SNS envelope (SNS's
 * default delivery), the bare subscription message (raw delivery) and
 * EventBridge agreement events. Only the envelope is signed, so it is believed
 * only from a configured topic and with a valid SNS signature. Raw and
 * EventBridge bodies carry no proof at all: each queue names the formats it
 * may carry (SQS_QUEUE_FORMATS, default `sns`), and there the queue policy is
 * the boundary (see the README). Anything else is untrusted, whatever it says.
 */
import type { QueueFormat } from '../lib/config';
import { classifyEventBridgeEvent, looksLikeEventBridgeEvent } from './formats/eventbridge';
import { jsonOf, type Classified } from './formats/classified';
import {
  classifyEnvelopeMessage,
  classifySubscriptionMessage,
  looksLikeSnsEnvelope,
  looksLikeSubscriptionMessage,
  parseSnsEnvelope,
} from './formats/sns';
import type { SnsSignatureVerifier } from './sns-signature';

export type {
  Classified,
  MarketplaceNotification,
  IgnoredNotification,
  NotificationFormat,
} from './formats/classified';

export interface TrustPolicy {
  /** What this queue may carry; a body of any other format is untrusted. */
  formats: readonly QueueFormat[];
  /** The SNS topics whose envelopes are accepted; empty refuses every envelope. */
  topicArns: readonly string[];
  /** Undefined: signatures are not checked (only for local servers that cannot sign). */
  verifier?: SnsSignatureVerifier;
}

export type UntrustedCheck = 'format' | 'topic' | 'signature';

export type Received =
  | Classified
  /** A body we must not believe: a format this queue does not carry, a wrong topic or a bad signature (retryable: the certificate could not be fetched). */
  | { kind: 'untrusted'; check: UntrustedCheck; reason: string; retryable: boolean };

/** The format a body claims to be, from its shape alone; nothing in it is believed yet. */
function claimedFormat(json: unknown): QueueFormat | undefined {
  if (looksLikeSnsEnvelope(json)) return 'sns';
  if (looksLikeEventBridgeEvent(json)) return 'eventbridge';
  if (looksLikeSubscriptionMessage(json)) return 'sns-raw';
  return undefined;
}

const untrusted = (check: UntrustedCheck, reason: string, retryable = false): Received => ({
  kind: 'untrusted',
  check,
  reason,
  retryable,
});

/** No format AWS sends nests deeper than a few levels; schema checks of deeper bodies recurse without bound. */
const MAX_DEPTH = 32;

function nestedDeeperThan(json: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[json, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Never throws for a body: whatever an unverified body does to the parsers is
 * that body's problem (untrusted), never an outage that would pause intake.
 * Only once a body is trusted can it be poison (a schema violation AWS made).
 */
export async function classifyMessage(body: string, sqsMessageId: string, trust: TrustPolicy): Promise<Received> {
  const json = jsonOf(body);
  // Nothing AWS sends is anything but a JSON object, so a body that is not one was not sent by AWS.
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return untrusted('format', 'the body is not a JSON object');
  if (nestedDeeperThan(json, MAX_DEPTH)) return untrusted('format', `the body nests deeper than ${MAX_DEPTH} levels`);
  try {
    return await classifyObject(json, sqsMessageId, trust);
  } catch (error) {
    return untrusted('format', `the body could not be read: ${(error as Error).message.slice(0, 200)}`);
  }
}

async function classifyObject(json: object, sqsMessageId: string, trust: TrustPolicy): Promise<Received> {
  const format = claimedFormat(json);
  if (!format || !trust.formats.includes(format)) {
    const what = format
      ? `a ${format} body`
      : 'a body that is neither an SNS envelope, a raw subscription message nor an EventBridge event';
    return untrusted('format', `${what} is not accepted on this queue, which carries only ${trust.formats.join(', ')}`);
  }
  switch (format) {
    case 'sns': {
      const parsed = parseSnsEnvelope(json);
      // An envelope we cannot even read cannot be verified either.
      if (!parsed.ok) return untrusted('signature', parsed.reason);
      const { envelope } = parsed;
      if (!trust.topicArns.includes(envelope.TopicArn)) {
        return untrusted(
          'topic',
          `TopicArn ${envelope.TopicArn.slice(0, 200)} is not a configured topic (SNS_TOPIC_ARN)`,
        );
      }
      if (trust.verifier) {
        const verdict = await trust.verifier.verify(envelope);
        if (!verdict.ok) return untrusted('signature', verdict.reason, verdict.retryable);
      }
      return classifyEnvelopeMessage(envelope);
    }
    case 'eventbridge':
      return classifyEventBridgeEvent(json);
    case 'sns-raw':
      return classifySubscriptionMessage(json, sqsMessageId, 'sns-raw', undefined);
  }
}
