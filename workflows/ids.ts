/** Workflow ids are built from business keys, so every starter lands on the same workflow. */
import type { AwsCustomer } from '../domain/link-model';

export function linkWorkflowId(customer: AwsCustomer): string {
  return `link:${customer.awsAccountId}:${customer.productCode}`;
}

export function cancellationWorkflowId(customer: AwsCustomer): string {
  return `cancel:${customer.awsAccountId}:${customer.productCode}`;
}
