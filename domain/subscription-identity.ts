/**
 * Which AWS Marketplace subscription an event is about. Pure data: safe to
 * import from workflow code.
 *
 * AWS names a subscription in two ways:
 * - by its `LicenseArn` (ResolveCustomer for new integrations, EventBridge
 *   events): with Concurrent Agreements one AWS account may hold several
 *   purchases of one product, each with its own license;
 * - by AWS account + product (legacy `CustomerIdentifier` listings and every
 *   SNS message, which carries no LicenseArn).
 * The key is the license when known, else the account and product.
 */

export interface SubscriptionRef {
  awsAccountId: string;
  /** Empty only while an EventBridge event without `detail.product` is all we know. */
  productCode: string;
  licenseArn?: string;
}

/**
 * AWS's pages print license ARNs with and without the leading `arn:`, and with
 * `license/` or `license:` before the id. Both compare equal after this.
 */
export function normalizeLicenseArn(arn: string): string {
  const trimmed = arn.trim();
  return trimmed.startsWith('arn:') ? trimmed : `arn:${trimmed}`;
}

/**
 * The license id (`l-…`), the part every spelling of the ARN shares:
 * ResolveCustomer's `…:license/l-…` and EventBridge's `…:123456789012:l-…`.
 */
export function licenseIdOf(arn: string): string {
  const normalized = normalizeLicenseArn(arn);
  const match = /[/:](l-[A-Za-z0-9]+)\s*$/.exec(normalized);
  return match ? match[1]! : normalized;
}

export function sameLicense(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && licenseIdOf(a) === licenseIdOf(b);
}

/** `license:<l-id>` for a licensed subscription, `<awsAccountId>:<productCode>` for the legacy model. */
export function subscriptionKey(ref: SubscriptionRef): string {
  return ref.licenseArn ? `license:${licenseIdOf(ref.licenseArn)}` : `${ref.awsAccountId}:${ref.productCode}`;
}

const PREFIX = 'subscription:';

export function subscriptionWorkflowId(ref: SubscriptionRef): string {
  return `${PREFIX}${subscriptionKey(ref)}`;
}

/** The reverse of subscriptionWorkflowId: the key, or undefined for any other id. */
export function parseSubscriptionWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith(PREFIX) ? workflowId.slice(PREFIX.length) : undefined;
}
