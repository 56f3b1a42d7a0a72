/**
 * Finding and reading a subscription's workflow (`subscription:<key>`) from a
 * test: the key is the one the store registered the customer under, so tests
 * name the workflow exactly as the API and the poller do.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Db } from 'mongodb';
import { marketplaceCustomersOf, saveResolvedCustomer } from '../../lib/store/marketplace';
import { refOfCustomer } from '../../lib/store/subscription-lookup';
import type { SandboxCustomer } from '../../sandbox/store';
import { normalizeLicenseArn, subscriptionWorkflowId, type SubscriptionRef } from '../../domain/subscription-identity';
import { subscriptionStateQuery } from '../../domain/subscription-messages';
import type { SubscriptionView } from '../../domain/subscription-model';
import { eventually } from './time-skipping';

/** The registered subscription of an AWS account's purchase of a product (throws when it is not registered). */
export async function registeredRef(
  db: Db,
  names: { awsAccountId: string; productCode: string },
): Promise<SubscriptionRef> {
  const doc = await marketplaceCustomersOf(db).findOne({
    awsAccountId: names.awsAccountId,
    productCode: names.productCode,
  });
  if (!doc) throw new Error(`no registered subscription of ${names.awsAccountId} to ${names.productCode}`);
  return refOfCustomer(doc);
}

export async function subscriptionIdOf(db: Db, names: { awsAccountId: string; productCode: string }): Promise<string> {
  return subscriptionWorkflowId(await registeredRef(db, names));
}

export async function subscriptionHandle(
  temporal: Client,
  db: Db,
  names: { awsAccountId: string; productCode: string },
): Promise<WorkflowHandle> {
  return temporal.workflow.getHandle(await subscriptionIdOf(db, names));
}

export function subscriptionState(handle: WorkflowHandle): Promise<SubscriptionView> {
  return handle.query(subscriptionStateQuery);
}

/**
 * Polls the workflow's state until `accept` holds. The workflow may not exist
 * yet (its first signal or update is on the way), so "not found" is retried too.
 */
export function eventuallyState(
  handle: WorkflowHandle,
  accept: (state: SubscriptionView) => boolean,
  attempts = 400,
): Promise<SubscriptionView> {
  return eventually(
    () =>
      subscriptionState(handle).catch((error: unknown) => ({ notFound: String(error) }) as unknown as SubscriptionView),
    (state) => 'phase' in state && accept(state),
    attempts,
  );
}

/**
 * What ResolveCustomer would have stored for a customer the sandbox never
 * registered (the synthetic customers of the intake tests): the poller hands a
 * notification to a workflow only for a registered subscription.
 */
export async function registerSyntheticCustomer(db: Db, customer: SandboxCustomer): Promise<SubscriptionRef> {
  const saved = await saveResolvedCustomer(db, {
    awsAccountId: customer.customerAwsAccountId,
    productCode: customer.productCode,
    licenseArn: normalizeLicenseArn(customer.licenseArn),
    ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
    offerType: customer.freeTrial ? 'free-trial' : 'standard',
  });
  return refOfCustomer(saved);
}

/** The ids of the AWS events the workflow received, in its history (each once, whatever its verdict). */
export const eventIds = (state: SubscriptionView) => state.history.map((event) => event.id);
