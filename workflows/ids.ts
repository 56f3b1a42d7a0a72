/** Workflow ids are built from business keys, so every starter lands on the same workflow. */
import type { AwsCustomer } from './link-model';

const LINK_PREFIX = 'link';

export function linkWorkflowId(customer: AwsCustomer): string {
  return `${LINK_PREFIX}:${customer.awsAccountId}:${customer.productCode}`;
}

export function parseLinkWorkflowId(workflowId: string): AwsCustomer | undefined {
  const match = /^link:([0-9]{12}):(.+)$/.exec(workflowId);
  return match ? { awsAccountId: match[1]!, productCode: match[2]! } : undefined;
}

export function cancellationWorkflowId(customer: AwsCustomer): string {
  return `cancel:${customer.awsAccountId}:${customer.productCode}`;
}
