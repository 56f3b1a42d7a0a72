/** What an hourly metering run reports while it runs (the `meteringProgress` query) and returns. */
import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  log,
  proxyActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { MeteringHour } from '../../domain/search-attributes';
import type { Activities } from '../../activities';
import type { PageTotals } from '../../activities/metering/metering';
import { count, WORKFLOW_COUNTERS } from '../common/metrics';

export interface MeteringProgress {
  /** The hour being metered now. */
  hour?: string;
  hoursDue: string[];
  hoursDone: string[];
  /** Hours that fell out of the window unmetered: reported, never sent. */
  missed: string[];
  /** Hours that could not be finished in this run; the next run tries again while they are inside the window. */
  failed: Array<{ hour: string; reason: string }>;
  customersDone: number;
  recordsSent: number;
  conflicts: number;
  notSubscribed: number;
  rejected: number;
  calls: number;
  /** Totals of the hour in progress, for its closing record. */
  current: HourTotals;
}

export type HourTotals = Omit<PageTotals, 'sent' | 'calls'>;

export const meteringProgressQuery = defineQuery<MeteringProgress>('meteringProgress');

export const emptyHour = (): HourTotals => ({ customers: 0, records: 0, conflicts: 0, notSubscribed: 0, rejected: 0 });

export function emptyProgress(): MeteringProgress {
  return {
    hoursDue: [],
    hoursDone: [],
    missed: [],
    failed: [],
    customersDone: 0,
    recordsSent: 0,
    conflicts: 0,
    notSubscribed: 0,
    rejected: 0,
    calls: 0,
    current: emptyHour(),
  };
}

/** Adds what a step of the hour in progress metered to the run's and the hour's totals. */
export function add(progress: MeteringProgress, step: Partial<PageTotals>): void {
  progress.customersDone += step.customers ?? 0;
  progress.recordsSent += step.sent ?? 0;
  progress.conflicts += step.conflicts ?? 0;
  progress.notSubscribed += step.notSubscribed ?? 0;
  progress.rejected += step.rejected ?? 0;
  progress.calls += step.calls ?? 0;
  progress.current.customers += step.customers ?? 0;
  progress.current.records += step.records ?? 0;
  progress.current.conflicts += step.conflicts ?? 0;
  progress.current.notSubscribed += step.notSubscribed ?? 0;
  progress.current.rejected += step.rejected ?? 0;
}

/**
 * Runs `work` on every item, at most `width` at a time (deterministic, as
 * workflow code must be). After a failure no new item starts, the lanes in
 * flight finish, and the first failure is rethrown.
 */
export async function inParallel<T>(
  width: number,
  items: Iterable<T>,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const queue = items[Symbol.iterator]();
  let failed = false;
  const lane = async () => {
    for (let next = queue.next(); !failed && !next.done; next = queue.next()) {
      try {
        await work(next.value);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const lanes = await Promise.allSettled(Array.from({ length: width }, lane));
  const rejected = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/** The store's small reads and writes around an hour (which hours, how far planned, the hour's closing record). */
export const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});
const { planMetering } = bookkeeping;

/** Records in `progress` the hours to meter: an operator's, else every closed hour due now (missed ones are counted and logged loudly). */
export async function planHours(progress: MeteringProgress, hours?: string[]): Promise<void> {
  if (hours) {
    progress.hoursDue = [...hours];
    return;
  }
  const plan = await planMetering(new Date(Date.now()).toISOString());
  progress.hoursDue = plan.due;
  progress.missed = plan.missed;
  if (plan.missed.length === 0) return;
  count(WORKFLOW_COUNTERS.meteringHoursMissed, plan.missed.length);
  log.error('Hours fell out of the 6-hour window without being metered; they can no longer be billed', {
    missed: plan.missed,
  });
}

/** Loud on purpose: the run shows as failed in the Temporal UI, naming every hour that can no longer be billed. */
export function failIfMissed(progress: MeteringProgress): void {
  if (progress.missed.length === 0) return;
  throw ApplicationFailure.nonRetryable(
    `${progress.missed.length} hour(s) fell out of AWS's 6-hour window unmetered and can no longer be billed: ${progress.missed.join(', ')}`,
    'HoursMissed',
    progress,
  );
}

/** Runs one hour's metering and records how it ended; an hour that could not be finished is retried by the next run. */
export async function meterOneHour(progress: MeteringProgress, work: (hour: string) => Promise<void>): Promise<void> {
  const hour = progress.hoursDue[0]!;
  progress.hour = hour;
  upsertSearchAttributes([{ key: MeteringHour, value: new Date(hour) }]);
  try {
    await work(hour);
    progress.hoursDone.push(hour);
    count(WORKFLOW_COUNTERS.meteringHoursCompleted);
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const reason = error.cause?.message ?? error.message;
    progress.failed.push({ hour, reason });
    count(WORKFLOW_COUNTERS.meteringHoursFailed);
    log.error('An hour could not be metered completely; the next run retries it while it is inside the window', {
      hour,
      reason,
    });
  }
  progress.hoursDue.shift();
  progress.current = emptyHour();
}
