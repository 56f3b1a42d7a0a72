/**
 * The platform's accounts. The real account service lives outside this
 * service; here accounts are documents we read for eligibility and whose
 * payment method we switch when a link completes.
 */
import { collectionOf } from '../mongo';

export const PAYMENT_METHODS = ['none', 'credit-card', 'available-credits', 'aws-marketplace'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

export interface MarketplaceBilling {
  /** The subscription's store key (subscription-identity.ts); absent on links made before subscriptions had one. */
  key?: string;
  awsAccountId: string;
  productCode: string;
  customerIdentifier?: string;
  licenseArn?: string;
  linkedAt: Date;
  /** Set when AWS confirmed the cancellation; cleared by a resubscription. */
  cancelledAt?: Date;
}

export interface AccountDoc {
  _id: string;
  email: string;
  name: string;
  /** scrypt, see lib/passwords.ts; absent for accounts that cannot sign in here. */
  passwordHash?: string;
  /**
   * Sessions carry the version they were issued with (`sv`) and are valid only while it is current;
   * signing out moves it on (api/session.ts). Absent: 0. The platform's sign-in reads it when it issues a token.
   */
  sessionVersion?: number;
  paymentMethod: PaymentMethod;
  creditCard?: { brand: string; last4: string };
  /** Prepaid balance in US dollars; a positive balance means the account uses Available Credits. */
  availableCredits?: number;
  marketplace?: MarketplaceBilling;
  createdAt: Date;
}

export const DEPLOYMENT_STATES = ['running', 'stopped', 'deleted'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

export interface DeploymentDoc {
  _id: string;
  accountId: string;
  name: string;
  plan: 'trial' | 'standard';
  state: DeploymentState;
  trialEndsAt?: Date;
  createdAt: Date;
  /** Who stopped it and when: only the same stopper may delete it, and only while it stays stopped. */
  stoppedBy?: string;
  stoppedAt?: Date;
  deletedAt?: Date;
}

/**
 * The platform's rules as a store filter: no card, no credits, no other way
 * to pay. Writes that switch billing to AWS repeat it, so a change made since
 * the activity read the account is never overwritten.
 */
export const mayPayThroughMarketplace = {
  creditCard: { $exists: false },
  paymentMethod: { $in: ['none', 'aws-marketplace'] as PaymentMethod[] },
  availableCredits: { $not: { $gt: 0 } },
};

export const paymentMethodLabels: Record<PaymentMethod, string> = {
  none: 'None',
  'credit-card': 'Credit card',
  'available-credits': 'Available Credits',
  'aws-marketplace': 'AWS Marketplace Subscription',
};

export function paymentMethodLabel(account: Pick<AccountDoc, 'paymentMethod' | 'creditCard'>): string {
  if (account.paymentMethod === 'credit-card' && account.creditCard) {
    return `Credit card (${account.creditCard.brand} ending ${account.creditCard.last4})`;
  }
  return paymentMethodLabels[account.paymentMethod];
}

export const accountsOf = collectionOf<AccountDoc>('accounts');

export const deploymentsOf = collectionOf<DeploymentDoc>('deployments');
