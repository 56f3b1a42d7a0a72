import { Client, Connection, WorkflowExecutionAlreadyStartedError, type ClientInterceptors } from '@temporalio/client';
import type { AwsCustomer } from '../domain/link-model';
import type { TemporalConfig } from './temporal-config';
import { AwsAccountId, AwsProductCode } from '../domain/search-attributes';

/** Connection options shared by the client and the worker (plaintext, TLS, mTLS, or an API key), as lib/temporal-config.ts read them. */
export function connectionOptions(config: TemporalConfig) {
  return { address: config.address, tls: config.tls, apiKey: config.apiKey, metadata: config.metadata };
}

/** `interceptors`: the tracing's, when it is on (lib/telemetry/tracing.ts). */
export async function connectClient(config: TemporalConfig, interceptors?: ClientInterceptors): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config));
  return new Client({ connection, namespace: config.namespace, interceptors });
}

/** The search attributes every per-customer workflow starts with, so operators find it by AWS account and product. */
export function customerSearchAttributes(customer: AwsCustomer) {
  return [
    { key: AwsAccountId, value: customer.awsAccountId },
    { key: AwsProductCode, value: customer.productCode },
  ];
}

/** How long a hand-off to Temporal may take before the caller gives up: a buyer may be waiting on it. */
const HAND_OFF_DEADLINE_MS = 5000;

/**
 * signalWithStart for the per-customer workflows: bounded by a deadline (a
 * caller is waiting), and retried once on "already started", which two
 * starters racing on a brand-new id can see (the time-skipping test server does
 * this under concurrent signalWithStart). By then the workflow exists, so the
 * retry simply signals it.
 */
export async function signalWithStartBounded(
  client: Client,
  start: () => Promise<{ workflowId: string }>,
): Promise<string> {
  const attempt = () => client.withDeadline(Date.now() + HAND_OFF_DEADLINE_MS, start);
  try {
    return (await attempt()).workflowId;
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    return (await attempt()).workflowId;
  }
}
