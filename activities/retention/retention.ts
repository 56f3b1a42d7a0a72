/** The store-retention workflow's one side effect: deleting what outlived its period, a bounded batch at a time. */
import { Context } from '@temporalio/activity';
import type { Db } from 'mongodb';
import { deleteExpiredBatch, type RetentionRule } from '../../lib/store/retention';

export interface RetentionDeps {
  db: Db;
  rules: RetentionRule[];
}

export interface PurgeResult {
  /** Documents deleted, by collection. */
  deleted: Record<string, number>;
  /** Some collection filled its batch: more may have expired. */
  more: boolean;
}

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (a script): nothing to report to.
  }
}

export function createRetentionActivities({ db, rules }: RetentionDeps) {
  return {
    /** One batch per collection, so a backlog in one never starves the others; the workflow calls again while `more`. */
    async purgeExpired(input: { batchSize: number }): Promise<PurgeResult> {
      const now = Date.now();
      const deleted: Record<string, number> = {};
      let more = false;
      for (const rule of rules) {
        deleted[rule.collection] = await deleteExpiredBatch(db, rule, now, input.batchSize);
        more ||= deleted[rule.collection] === input.batchSize;
        heartbeat(deleted);
      }
      return { deleted, more };
    },
  };
}
