/**
 * Every hour (a Temporal Schedule starts it), meter every linked customer for
 * each closed hour still inside AWS's 6-hour window: normally the hour that
 * just closed, after an outage every hour that was missed. Customers are
 * metered a page at a time, and the run continues as new before its history
 * grows large, so 100,000 customers cost neither memory nor history.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { PageTotals } from '../../activities/metering/metering';
import { MeteringHour } from '../../domain/search-attributes';
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
  current: Omit<PageTotals, 'sent' | 'calls'>;
}

export interface HourlyMeteringInput {
  /** An operator's re-run of given hours (ISO); only what is still pending is sent. Absent: every due hour. */
  hours?: string[];
  /** Pages per run before continuing as new (default 100): bounds the history whatever the number of customers. */
  pagesPerRun?: number;
  /** Set only by continueAsNew. */
  resume?: { progress: MeteringProgress; afterKey?: string };
}

export const meteringProgressQuery = defineQuery<MeteringProgress>('meteringProgress');

const MAX_PAGES_PER_RUN = 100;
const PAGES_PER_PLAN = 10;
const PAGES_IN_FLIGHT = 2;
const emptyHour = () => ({ customers: 0, records: 0, conflicts: 0, notSubscribed: 0, rejected: 0 });

const { planMetering, planPages, completeHour } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});
const { meterPage } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  // The sender heartbeats on every call and before every backoff (at most 10 s), so a dead worker is noticed fast.
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 8,
    nonRetryableErrorTypes: ['HourOutsideWindow'],
  },
});

export async function hourlyMetering(input: HourlyMeteringInput = {}): Promise<MeteringProgress> {
  const progress: MeteringProgress = input.resume?.progress ?? {
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
  setHandler(meteringProgressQuery, () => progress);

  if (input.hours && !input.resume) {
    progress.hoursDue = [...input.hours];
  } else if (!input.resume) {
    const plan = await planMetering(new Date(Date.now()).toISOString());
    progress.hoursDue = plan.due;
    progress.missed = plan.missed;
    if (plan.missed.length > 0) count(WORKFLOW_COUNTERS.meteringHoursMissed, plan.missed.length);
    if (plan.missed.length > 0)
      log.error('Hours fell out of the 6-hour window without being metered; they can no longer be billed', {
        missed: plan.missed,
      });
  }

  let afterKey = input.resume?.afterKey;
  let pages = 0;
  while (progress.hoursDue.length > 0) {
    const hour = progress.hoursDue[0]!;
    progress.hour = hour;
    upsertSearchAttributes([{ key: MeteringHour, value: new Date(hour) }]);
    try {
      for (let done = false; !done;) {
        const plan = await planPages({
          hour,
          afterKey,
          pages: Math.min(PAGES_PER_PLAN, input.pagesPerRun ?? PAGES_PER_PLAN),
        });
        // Two pages in flight: one prepares its records in the store while the other sends; the worker's rate limiter caps the calls.
        const pageTotals: PageTotals[] = [];
        await inParallel(
          PAGES_IN_FLIGHT,
          plan.pages,
          async (page) => void pageTotals.push(await meterPage({ hour, ...page })),
        );
        pageTotals.forEach((page) => add(progress, page));
        afterKey = plan.pages.at(-1)?.lastKey ?? afterKey;
        done = plan.done;
        pages += plan.pages.length;
        if (!done && (pages >= (input.pagesPerRun ?? MAX_PAGES_PER_RUN) || workflowInfo().continueAsNewSuggested)) {
          await continueAsNew<typeof hourlyMetering>({
            pagesPerRun: input.pagesPerRun,
            resume: { progress, afterKey },
          });
        }
      }
      await completeHour({ hour, totals: progress.current });
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
    afterKey = undefined;
  }
  progress.hour = undefined;
  // Loud on purpose: the run shows as failed in the Temporal UI, naming every hour that can no longer be billed.
  if (progress.missed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `${progress.missed.length} hour(s) fell out of AWS's 6-hour window unmetered and can no longer be billed: ${progress.missed.join(', ')}`,
      'HoursMissed',
      progress,
    );
  }
  return progress;
}

/**
 * Runs `work` on every item, at most `width` at a time (deterministic, as
 * workflow code must be). After a failure no new item starts, the lanes in
 * flight finish, and the first failure is rethrown.
 */
async function inParallel<T>(width: number, items: T[], work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const lane = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      try {
        await work(item);
      } catch (error) {
        queue.length = 0;
        throw error;
      }
    }
  };
  const lanes = await Promise.allSettled(Array.from({ length: width }, lane));
  const failed = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
  if (failed) throw failed.reason;
}

function add(progress: MeteringProgress, page: PageTotals): void {
  progress.customersDone += page.customers;
  progress.recordsSent += page.sent;
  progress.conflicts += page.conflicts;
  progress.notSubscribed += page.notSubscribed;
  progress.rejected += page.rejected;
  progress.calls += page.calls;
  progress.current.customers += page.customers;
  progress.current.records += page.records;
  progress.current.conflicts += page.conflicts;
  progress.current.notSubscribed += page.notSubscribed;
  progress.current.rejected += page.rejected;
}
