/**
 * The vocabulary of account linking, shared by the workflow, its activities,
 * the API and the pages. Pure data: safe to import from workflow code.
 */

/** Why a link is refused; each is the `type` of a non-retryable ApplicationFailure. */
export const LINK_REFUSALS = [
  'CreditCardOnFile',
  'UsesAvailableCredits',
  'AccountAlreadyLinked',
  'CustomerLinkedToAnotherAccount',
  'AccountLinkPending',
  'AccountNotFound',
  'LinkCancelled',
  'SubscriptionEnded',
] as const;
export type LinkRefusal = (typeof LINK_REFUSALS)[number];

export function isLinkRefusal(type: unknown): type is LinkRefusal {
  return (LINK_REFUSALS as readonly unknown[]).includes(type);
}

export const refusalMessages: Record<LinkRefusal, string> = {
  CreditCardOnFile:
    'Your account already has a credit card set up. Remove the card from your billing settings, then click Set Up Your Account on AWS Marketplace again.',
  UsesAvailableCredits:
    'Your account uses Available Credits, which cannot be combined with an AWS Marketplace subscription. Contact support to move your billing.',
  AccountAlreadyLinked: 'Your account is already linked to an AWS Marketplace product.',
  CustomerLinkedToAnotherAccount: 'This AWS Marketplace subscription is already linked to another platform account.',
  AccountLinkPending:
    'Your account is already being linked to another AWS Marketplace subscription. Wait for that link to finish.',
  AccountNotFound: 'We could not find your platform account. Sign in again and retry.',
  LinkCancelled: 'Our operators cancelled this link. Click Set Up Your Account on AWS Marketplace to start again.',
  SubscriptionEnded: 'AWS reports that this subscription has ended. Subscribe again on AWS Marketplace to link it.',
};

/** Where one platform account's link request stands. */
export const LINK_PHASES = ['checking', 'refused', 'waiting-for-aws', 'linked', 'sync-timed-out', 'cancelled'] as const;
export type LinkPhase = (typeof LINK_PHASES)[number];

export interface LinkStatus {
  awsAccountId: string;
  productCode: string;
  /** The subscription's license, when AWS named it by one. */
  licenseArn?: string;
  accountId: string;
  phase: LinkPhase;
  refusal?: LinkRefusal;
  /** AWS sent subscribe-fail: payment may have failed; we keep waiting for subscribe-success. */
  paymentProblem: boolean;
  message: string;
  /** Grows with every change the workflow makes, so a late write never overwrites a newer one. */
  version: number;
  updatedAt: string;
}

export function linkMessage(
  phase: LinkPhase,
  details: { refusal?: LinkRefusal; paymentProblem?: boolean } = {},
): string {
  switch (phase) {
    case 'checking':
      return 'Checking that your account can be billed through AWS Marketplace…';
    case 'refused':
      return refusalMessages[details.refusal ?? 'AccountNotFound'];
    case 'waiting-for-aws':
      return details.paymentProblem
        ? 'AWS reported a payment problem; still waiting.'
        : 'Linked to your AWS Billing Account. Waiting for AWS to finish syncing your subscription…';
    case 'linked':
      return 'Your account is linked. Your Payment Method is now AWS Marketplace Subscription.';
    case 'sync-timed-out':
      return 'AWS has not confirmed your subscription yet. Our operators have been alerted and will retry; you can close this page.';
    case 'cancelled':
      return 'Your AWS Marketplace subscription has ended. Your account no longer pays through AWS Marketplace.';
  }
}

/** The workflow-wide state, also the BillingStatus search attribute operators filter on. */
export type BillingStatus =
  | 'awaiting-link'
  | 'checking'
  | 'waiting-for-aws'
  | 'payment-problem'
  | 'linked'
  | 'refused'
  | 'sync-timed-out'
  | 'cancelled'
  | 'abandoned';

export type SyncAction = 'subscribe-success' | 'subscribe-fail';

/** An AWS notification as the poller hands it to the workflow. */
export interface AwsSyncNotification {
  /** The SNS MessageId; duplicates carry the same one. */
  messageId: string;
  action: SyncAction;
}

export interface LinkRequest {
  /** The signed-in platform account asking to be billed through this AWS customer. */
  accountId: string;
}

export interface AwsCustomer {
  awsAccountId: string;
  productCode: string;
}
