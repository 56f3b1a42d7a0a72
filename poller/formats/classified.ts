/** What one queue message turned out to be, whatever format it came in. */
import type { SchemaIssue } from '../../lib/schema';
import type { NotificationDoc } from '../../lib/store/marketplace';

export type NotificationFormat = NonNullable<NotificationDoc['format']>;

/**
 * The internal event every format maps to: the SNS actions, about one AWS
 * subscription, with what the store records of it (`sentAt` orders
 * notifications that arrive out of order). EventBridge adds `detailType`, the
 * `agreementId` and `intent`, and `amendment`; its agreement events may carry
 * no `productCode`, so the subscription is then known by license or agreement.
 */
export type EventFields = Pick<
  NotificationDoc,
  | 'action'
  | 'productCode'
  | 'customerIdentifier'
  | 'awsAccountId'
  | 'offerIdentifier'
  | 'licenseArn'
  | 'agreementId'
  | 'intent'
  | 'amendment'
  | 'freeTrial'
  | 'sentAt'
  | 'detailType'
>;

/** A notification to hand over, keyed by the SNS MessageId, the EventBridge event id, or (raw delivery) the SQS MessageId. */
export interface MarketplaceNotification extends EventFields {
  messageId: string;
  format: NotificationFormat;
}

/** Understood but with no effect for us (an unknown action or detail type): recorded and acknowledged. */
export interface IgnoredNotification {
  messageId: string;
  format: NotificationFormat;
  reason: string;
  productCode?: string;
  customerIdentifier?: string;
  awsAccountId?: string;
  detailType?: string;
  sentAt?: Date;
}

export type Classified =
  | { kind: 'event'; notification: MarketplaceNotification }
  | ({ kind: 'ignored' } & IgnoredNotification)
  /** Can never be handed over: dead-lettered at once with the reason. */
  | { kind: 'poison'; reason: string };

export function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function describeIssues(issues: SchemaIssue[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => `${issue.path || '(root)'} ${issue.message}`)
    .join('; ');
}
