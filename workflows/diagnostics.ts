import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { checkStore } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * An operator's end-to-end probe: start it from the Temporal UI or CLI to prove
 * that a worker polls the task queue and reaches the store.
 */
export async function checkDependencies(): Promise<{ store: 'ok' | 'failed'; pingMs: number }> {
  const result = await checkStore(workflowInfo().workflowId);
  return { store: result.wrote ? 'ok' : 'failed', pingMs: result.pingMs };
}
