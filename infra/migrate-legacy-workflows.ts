/**
 * Moves subscriptions off the workflows the subscription workflow replaced
 * (`linkAccount` on `link:<account>:<product>`, `cancelSubscription` on
 * `cancel:<account>:<product>`). Left running, they would still act on what
 * they believe (a legacy cancellation would delete deployments after a
 * resubscription it never hears of), so each running one is moved:
 *   1. the old run is terminated, with the new workflow id as the reason;
 *   2. the subscription workflow is started (or found running); it starts
 *      from what the old one left in the store: the reservation or active link,
 *      the cancellation's grace deadline and the mark on the stopped deployments.
 * Terminating first means a crash between the steps leaves neither running,
 * never two owners: the store keeps the state, and the next event about the
 * subscription starts its workflow from it. The worker runs this at
 * start-up and then every minute, so runs that an old poller still starts
 * during a rolling deploy are moved too.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { findSubscriptionOf } from '../lib/store/subscription-lookup';
import { subscriptionStartOptions } from '../clients/subscription-client';
import { subscription } from '../workflows/subscription/subscription';
import { subscriptionWorkflowId } from '../domain/subscription-identity';
import type { SubscriptionSettings } from '../domain/subscription-model';

const LEGACY = /^(?:link|cancel):(\d{12}):(.+)$/;

export async function migrateLegacyWorkflows(deps: {
  temporal: Client;
  db: Db;
  taskQueue: string;
  settings: SubscriptionSettings;
}): Promise<string[]> {
  const moved: string[] = [];
  const running = deps.temporal.workflow.list({
    query: `ExecutionStatus = 'Running' AND (WorkflowType = 'linkAccount' OR WorkflowType = 'cancelSubscription')`,
  });
  for await (const legacy of running) {
    const match = LEGACY.exec(legacy.workflowId);
    if (!match) continue;
    const [, awsAccountId, productCode] = match as unknown as [string, string, string];
    const ref = (await findSubscriptionOf(deps.db, { awsAccountId, productCode })) ?? { awsAccountId, productCode };
    const workflowId = subscriptionWorkflowId(ref);
    try {
      await deps.temporal.workflow.getHandle(legacy.workflowId, legacy.runId).terminate(`moved to ${workflowId}`);
    } catch (error) {
      // It finished meanwhile, or another worker moved it.
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
    const options = subscriptionStartOptions(deps, ref);
    const legacyStoppedBy = legacy.type === 'cancelSubscription' ? `${legacy.workflowId}@${legacy.runId}` : undefined;
    await deps.temporal.workflow.start(subscription, {
      ...options,
      args: [{ ...options.args[0], ...(legacyStoppedBy ? { legacyStoppedBy } : {}) }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    moved.push(`${legacy.workflowId} → ${workflowId}`);
  }
  return moved;
}
