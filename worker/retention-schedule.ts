/**
 * The hourly `store-retention` Schedule, created at worker start-up and
 * brought up to date when it exists, like the metering one. It fires at :35,
 * away from metering's :05, so the two never compete for the store.
 */
import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { upsertSchedule } from './schedules';
import { storeRetention } from '../workflows/retention/store-retention';

export const RETENTION_SCHEDULE_ID = 'store-retention';

export function retentionScheduleOptions(taskQueue: string, scheduleId = RETENTION_SCHEDULE_ID): ScheduleOptions {
  return {
    scheduleId,
    spec: { intervals: [{ every: '1 hour', offset: '35 minutes' }] },
    action: { type: 'startWorkflow', workflowType: storeRetention, taskQueue, args: [{}], workflowId: scheduleId },
    // A run still busy with a backlog is not doubled; a missed hour is simply the next run's work.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  };
}

export async function ensureRetentionSchedule(
  client: Client,
  taskQueue: string,
  scheduleId = RETENTION_SCHEDULE_ID,
): Promise<'created' | 'updated'> {
  return upsertSchedule(client, retentionScheduleOptions(taskQueue, scheduleId));
}
