/**
 * SQS message bodies exactly as AWS would deliver them, for customers the
 * sandbox never stored: what the tests and the notification benchmark enqueue
 * in bulk.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  eventBridgeEvent,
  snsMessage,
  type EventBodyOptions,
  type EventDetailType,
  type SnsAction,
} from './notifications';
import { signedEnvelope, type SignatureVersion, type SnsSigningKey } from './sns-signing';
import type { SandboxCustomer } from './store';

export function syntheticCustomer(n: number, productCode: string): SandboxCustomer {
  return {
    _id: `synthetic-${n}`,
    model: 'account',
    customerAwsAccountId: String(200_000_000_000 + n),
    productCode,
    licenseArn: `arn:aws:license-manager::111122223333:license/l-synthetic${n}`,
    offerId: 'offer-synthetic',
    freeTrial: false,
    status: 'subscribed',
    createdAt: new Date(),
  };
}

export interface SnsSigner {
  key: SnsSigningKey;
  certUrl: string;
  topicArn: string;
  version?: SignatureVersion;
}

/** The SNS envelope (default delivery), signed; `messageId` fixes the id, as a redelivery would. */
export function snsEnvelopeBody(
  customer: SandboxCustomer,
  action: string,
  signer: SnsSigner,
  messageId?: string,
  timestamp?: Date,
): string {
  const message = JSON.stringify(snsMessage(customer, action as SnsAction));
  return JSON.stringify(
    signedEnvelope(
      {
        topicArn: signer.topicArn,
        message,
        certUrl: signer.certUrl,
        version: signer.version ?? '1',
        messageId,
        timestamp,
      },
      signer.key,
    ),
  );
}

/** Raw message delivery: the subscription message alone. */
export function rawMessageBody(customer: SandboxCustomer, action: string): string {
  return JSON.stringify(snsMessage(customer, action as SnsAction));
}

/** An EventBridge event as the rule delivers it; any detail type, so that unknown ones can be sent too. */
export function eventBridgeBody(
  customer: SandboxCustomer,
  detailType: string,
  region = 'us-east-1',
  options?: EventBodyOptions,
): { id: string; body: string } {
  const event = eventBridgeEvent(customer, detailType as EventDetailType, region, options);
  return { id: event.id, body: JSON.stringify(event) };
}

/** Sends bodies ten per SendMessageBatch call, `concurrency` calls at a time; returns the SQS MessageIds in order. */
export async function enqueueBodies(
  sqs: SQSClient,
  queueUrl: string,
  bodies: string[],
  concurrency = 8,
): Promise<string[]> {
  const ids = new Array<string>(bodies.length);
  let next = 0;
  const sender = async () => {
    while (next < bodies.length) {
      const start = next;
      next += 10;
      const batch = bodies.slice(start, start + 10);
      const result = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
      if (result.Failed?.length)
        throw new Error(`enqueue failed: ${result.Failed[0]!.Message ?? result.Failed[0]!.Code}`);
      for (const entry of result.Successful ?? []) ids[start + Number(entry.Id)] = entry.MessageId!;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  return ids;
}
