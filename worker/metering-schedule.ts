/**
 * The hourly metering Schedule, created at worker start-up and brought up to
 * date when it exists, so deploying twice, or two workers starting at once,
 * leaves exactly one. Operators see it under Schedules in the Temporal UI.
 */
import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { upsertSchedule } from './schedules';
import { hourlyMetering } from '../workflows/metering/hourly-metering';

export const METERING_SCHEDULE_ID = 'hourly-metering';

export function meteringScheduleOptions(taskQueue: string, offsetMinutes: number): ScheduleOptions {
  return {
    scheduleId: METERING_SCHEDULE_ID,
    spec: { intervals: [{ every: '1 hour', offset: `${offsetMinutes} minutes` }] },
    action: {
      type: 'startWorkflow',
      workflowType: hourlyMetering,
      taskQueue,
      args: [{}],
      workflowId: 'hourly-metering',
    },
    policies: {
      // A slow run is never doubled: the next one starts after it and catches up on every hour still in the window.
      overlap: ScheduleOverlapPolicy.BUFFER_ONE,
      catchupWindow: '1 hour',
    },
  };
}

export async function ensureMeteringSchedule(
  client: Client,
  taskQueue: string,
  offsetMinutes: number,
): Promise<'created' | 'updated'> {
  return upsertSchedule(client, meteringScheduleOptions(taskQueue, offsetMinutes));
}
