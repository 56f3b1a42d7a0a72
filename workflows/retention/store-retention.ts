/**
 * Every hour (the worker's `store-retention` schedule), delete what outlived
 * its retention period (lib/store/retention.ts), a bounded batch per
 * collection per call. A run stops after `maxCalls` calls and reports `more`:
 * the next hour's run carries on, so a large backlog never makes one long run
 * or one long history. Deleting only what already expired, it is safe to
 * repeat, to overlap a TTL monitor, and to cancel at any point.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';

export interface StoreRetentionInput {
  /** Documents per collection per call (default 500). */
  batchSize?: number;
  /** Calls per run (default 100). */
  maxCalls?: number;
}

export interface StoreRetentionResult {
  /** Documents deleted, by collection. */
  deleted: Record<string, number>;
  calls: number;
  /** Expired documents remain for the next run. */
  more: boolean;
}

const { purgeExpired } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

export async function storeRetention(input: StoreRetentionInput = {}): Promise<StoreRetentionResult> {
  const batchSize = input.batchSize ?? 500;
  const maxCalls = input.maxCalls ?? 100;
  const result: StoreRetentionResult = { deleted: {}, calls: 0, more: true };
  while (result.more && result.calls < maxCalls) {
    const batch = await purgeExpired({ batchSize });
    result.calls += 1;
    for (const [collection, count] of Object.entries(batch.deleted))
      result.deleted[collection] = (result.deleted[collection] ?? 0) + count;
    result.more = batch.more;
  }
  return result;
}
