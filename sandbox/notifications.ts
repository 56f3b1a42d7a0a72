/**
 * What AWS sends the seller: SNS subscription notifications (delivered into SQS
 * in the SNS envelope by a real topic subscription) and EventBridge
 * `aws.agreement-marketplace` events (an EventBridge rule targeting SQS puts the
 * bare event JSON in the message body, which is what we send).
 */
import { randomUUID } from 'node:crypto';
import { ListSubscriptionsByTopicCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { queueUrlOfArn } from '../lib/aws';
import { signedEnvelope, type SignatureVersion, type SnsSigningKey } from './sns-signing';
import type { SandboxCustomer, SubscriptionStatus } from './store';

export const SNS_ACTIONS = [
  'subscribe-success',
  'subscribe-fail',
  'unsubscribe-pending',
  'unsubscribe-success',
] as const;
export type SnsAction = (typeof SNS_ACTIONS)[number];

export const EVENT_DETAIL_TYPES = [
  'Purchase Agreement Created - Manufacturer',
  'Purchase Agreement Amended - Manufacturer',
  'Purchase Agreement Ended - Manufacturer',
  'License Updated - Manufacturer',
  'License Deprovisioned - Manufacturer',
  // An ISV selling its own offer gets these instead of the Manufacturer agreement events (the License ones stay Manufacturer).
  'Purchase Agreement Created - Proposer',
  'Purchase Agreement Amended - Proposer',
  'Purchase Agreement Ended - Proposer',
] as const;
export type EventDetailType = (typeof EVENT_DETAIL_TYPES)[number];

export interface EventBodyOptions {
  /**
   * 'aws-sample' shapes the event like AWS's documented sample of its detail
   * type: agreement events without `detail.product` or `detail.license`, and
   * License events with an agreement id only. The default also puts the
   * product and license on agreement events.
   */
  shape?: 'full' | 'aws-sample';
  /** `detail.agreement.intent` of an agreement event: AMEND for Amended, NEW otherwise. */
  intent?: 'NEW' | 'RENEW' | 'REPLACE' | 'AMEND';
}

/** How each notification moves the customer's subscription in the sandbox (undefined: unchanged). */
export const statusAfterAction: Record<SnsAction, SubscriptionStatus | undefined> = {
  'subscribe-success': 'subscribed',
  'subscribe-fail': undefined,
  'unsubscribe-pending': 'unsubscribe-pending',
  'unsubscribe-success': 'unsubscribed',
};

export const statusAfterEvent: Record<EventDetailType, SubscriptionStatus | undefined> = {
  'Purchase Agreement Created - Manufacturer': 'subscribed',
  'Purchase Agreement Amended - Manufacturer': 'subscribed',
  'Purchase Agreement Ended - Manufacturer': 'unsubscribe-pending',
  'License Updated - Manufacturer': undefined,
  'License Deprovisioned - Manufacturer': 'unsubscribed',
  'Purchase Agreement Created - Proposer': 'subscribed',
  'Purchase Agreement Amended - Proposer': 'subscribed',
  'Purchase Agreement Ended - Proposer': 'unsubscribe-pending',
};

export function snsMessage(customer: SandboxCustomer, action: SnsAction): Record<string, string> {
  return {
    action,
    'customer-identifier': customer.customerIdentifier ?? customer.customerAwsAccountId,
    'customer-aws-account-id': customer.customerAwsAccountId,
    'product-code': customer.productCode,
    ...(action.startsWith('subscribe-') ? { 'offer-identifier': customer.offerId } : {}),
    isFreeTrialTermPresent: String(customer.freeTrial),
  };
}

/** The seller's own account: the EventBridge bus the events arrive on, and the proposer of its offers. */
const SELLER_ACCOUNT = '111122223333';

/** The bare event an EventBridge rule puts in the SQS body, as AWS prints it. */
export function eventBridgeEvent(
  customer: SandboxCustomer,
  detailType: EventDetailType,
  region: string,
  options: EventBodyOptions = {},
) {
  const now = new Date().toISOString();
  const agreementId = `agmt-${customer._id.replace(/-/g, '').slice(0, 25)}`;
  const isLicenseEvent = detailType.startsWith('License ');
  const sample = options.shape === 'aws-sample';
  const withProduct = isLicenseEvent || !sample;
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source: 'aws.agreement-marketplace',
    account: SELLER_ACCOUNT,
    time: now,
    region,
    resources: [`arn:aws:aws-marketplace::aws:agreement:${agreementId}`],
    detail: {
      requestId: randomUUID(),
      catalog: 'AWSMarketplace',
      agreement:
        isLicenseEvent && sample ? { id: agreementId } : agreementOf(customer, agreementId, detailType, now, options),
      acceptor: { accountId: customer.customerAwsAccountId },
      proposer: { accountId: SELLER_ACCOUNT },
      offer: { id: customer.offerId },
      ...(withProduct ? { product: { code: customer.productCode, id: `prod-${customer.productCode}` } } : {}),
      ...(withProduct ? { license: { arn: printedLicenseArn(customer.licenseArn) } } : {}),
    },
  };
}

function agreementOf(
  customer: SandboxCustomer,
  id: string,
  detailType: EventDetailType,
  now: string,
  options: EventBodyOptions,
) {
  // AWS's Ended samples carry the agreement's id and status only.
  if (detailType.startsWith('Purchase Agreement Ended'))
    return options.shape === 'aws-sample' ? { id, status: 'CANCELLED' } : { id, status: 'CANCELLED', endTime: now };
  return {
    id,
    intent: options.intent ?? (detailType.startsWith('Purchase Agreement Amended') ? 'AMEND' : 'NEW'),
    status: 'ACTIVE',
    acceptanceTime: customer.createdAt.toISOString(),
    startTime: customer.createdAt.toISOString(),
  };
}

/** AWS's event samples print the license ARN without the leading `arn:` that ResolveCustomer returns. */
function printedLicenseArn(arn: string): string {
  return arn.replace(/^arn:/, '');
}

export interface SnsSigning {
  key: SnsSigningKey;
  /** Where the sandbox serves the certificate (known once it listens). */
  certUrl(): string;
  version: SignatureVersion;
}

export class NotificationPublisher {
  constructor(
    private readonly deps: {
      sns?: SNSClient;
      topicArn?: string;
      sqs?: SQSClient;
      eventBridgeQueueUrl?: string;
      region: string;
      signing?: SnsSigning;
    },
  ) {}

  /**
   * With a signing key the sandbox builds and signs the envelope itself and
   * delivers it to the topic's SQS subscribers, as SNS would; without one it
   * publishes through the SNS emulator, whose signatures are not real.
   */
  async publishSns(
    customer: SandboxCustomer,
    action: SnsAction,
    version?: SignatureVersion,
  ): Promise<{ messageId: string }> {
    const { sns, topicArn, signing } = this.deps;
    if (!sns || !topicArn) throw new Error('SNS is not configured: set SANDBOX_SNS_TOPIC_ARN and AWS_ENDPOINT_URL_SNS');
    const message = JSON.stringify(snsMessage(customer, action));
    if (!signing) {
      const result = await sns.send(new PublishCommand({ TopicArn: topicArn, Message: message }));
      return { messageId: result.MessageId ?? '' };
    }
    const envelope = signedEnvelope(
      { topicArn, message, certUrl: signing.certUrl(), version: version ?? signing.version },
      signing.key,
    );
    const body = JSON.stringify(envelope);
    await Promise.all(
      (await this.subscribedQueues(sns, topicArn)).map((url) =>
        this.sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: body })),
      ),
    );
    return { messageId: envelope.MessageId };
  }

  async publishEvent(
    customer: SandboxCustomer,
    detailType: EventDetailType,
    options?: EventBodyOptions,
  ): Promise<{ eventId: string }> {
    const { eventBridgeQueueUrl: queueUrl, region } = this.deps;
    if (!queueUrl)
      throw new Error('EventBridge delivery is not configured: set SQS_EVENTBRIDGE_QUEUE_URL and AWS_ENDPOINT_URL_SQS');
    const event = eventBridgeEvent(customer, detailType, region, options);
    await this.sqs().send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(event) }));
    return { eventId: event.id };
  }

  private sqs(): SQSClient {
    if (!this.deps.sqs) throw new Error('SQS is not configured: set AWS_ENDPOINT_URL_SQS');
    return this.deps.sqs;
  }

  private async subscribedQueues(sns: SNSClient, topicArn: string): Promise<string[]> {
    const { Subscriptions = [] } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }));
    const queueArns = Subscriptions.filter((s) => s.Protocol === 'sqs' && s.Endpoint).map((s) => s.Endpoint!);
    return Promise.all(queueArns.map((arn) => queueUrlOfArn(this.sqs(), arn)));
  }
}
