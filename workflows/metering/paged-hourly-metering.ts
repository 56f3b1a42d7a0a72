/**
 * Hourly metering as it ran before the BatchMeterUsage calls had a task queue
 * of their own: each page of customers was prepared and sent by one activity,
 * paced per worker process. Kept so that runs started by that code (and their
 * continued-as-new runs) replay and finish the way they began; new runs take
 * workflows/metering/hourly-metering.ts.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { PageTotals } from '../../activities/metering/metering';
import {
  add,
  bookkeeping,
  emptyProgress,
  failIfMissed,
  inParallel,
  meterOneHour,
  planHours,
  type MeteringProgress,
} from './progress';

export interface PagedMeteringInput {
  hours?: string[];
  pagesPerRun?: number;
  resume?: { progress: MeteringProgress; afterKey?: string };
}

const MAX_PAGES_PER_RUN = 100;
const PAGES_PER_PLAN = 10;
const PAGES_IN_FLIGHT = 2;

const { planPages, completeHour } = bookkeeping;
const { meterPage } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 8,
    nonRetryableErrorTypes: ['HourOutsideWindow'],
  },
});

export async function pagedHourlyMetering(
  input: PagedMeteringInput,
  progress: MeteringProgress = input.resume?.progress ?? emptyProgress(),
): Promise<MeteringProgress> {
  if (!input.resume) await planHours(progress, input.hours);
  let afterKey = input.resume?.afterKey;
  let pages = 0;
  while (progress.hoursDue.length > 0) {
    await meterOneHour(progress, async (hour) => {
      for (let done = false; !done;) {
        const plan = await planPages({
          hour,
          afterKey,
          pages: Math.min(PAGES_PER_PLAN, input.pagesPerRun ?? PAGES_PER_PLAN),
        });
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
          await continueAsNew<typeof pagedHourlyMetering>({
            pagesPerRun: input.pagesPerRun,
            resume: { progress, afterKey },
          });
        }
      }
      await completeHour({ hour, totals: progress.current });
    });
    afterKey = undefined;
  }
  progress.hour = undefined;
  failIfMissed(progress);
  return progress;
}
