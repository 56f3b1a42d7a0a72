/**
 * Every hour (a Temporal Schedule starts it), meter every linked customer for
 * each closed hour still inside AWS's 6-hour window: normally the hour that
 * just closed, after an outage every hour that was missed.
 *
 * An hour is frozen first: one pass over the store writes every record and cuts
 * them into BatchMeterUsage calls. The calls are then sent from a task queue of
 * their own, whose rate the Temporal server holds to the AWS quota for the
 * whole fleet, each at its turn, evenly spaced. The run continues as new every
 * thousand calls, so 100,000 customers cost neither memory nor history.
 */
import {
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { HourPlan } from '../../activities/metering/metering';
import { meteringCallsTaskQueue } from '../../domain/task-queues';
import { pagedHourlyMetering } from './paged-hourly-metering';
import {
  add,
  bookkeeping,
  emptyProgress,
  failIfMissed,
  meterOneHour,
  meteringProgressQuery,
  planHours,
  type MeteringProgress,
} from './progress';

export { meteringProgressQuery, type MeteringProgress } from './progress';

export interface HourlyMeteringInput {
  /** An operator's re-run of given hours (ISO); only what AWS has not answered yet is sent. Absent: every due hour. */
  hours?: string[];
  /** Calls per run before continuing as new (default 1000): bounds the history whatever the number of customers. */
  callsPerRun?: number;
  /**
   * Set only by continueAsNew: the progress, and the hour being sent; `afterKey` only by the paging code
   * (paged-hourly-metering.ts) that came before.
   */
  resume?: {
    progress: MeteringProgress;
    sending?: { plan: HourPlan & { id: string }; next: number };
    afterKey?: string;
  };
}

const CALLS_PER_RUN = 1_000;

const sendOptions = (): ActivityOptions => ({
  taskQueue: meteringCallsTaskQueue(workflowInfo().taskQueue),
  // One request and two store writes: a call held by a worker that died is sent again within seconds.
  startToCloseTimeout: '15 seconds',
  // Throttled and partly answered calls come back through the queue, so their retries keep to the quota too.
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 1.5,
    maximumInterval: '10 seconds',
    maximumAttempts: 30,
    nonRetryableErrorTypes: ['HourOutsideWindow'],
  },
});
/**
 * Calls waiting on their queue at once: enough that the quota, not the round trips, sets the pace, and no more than
 * AWS's quota allows in one second, since the server releases what waits in a burst after any pause (measured: 20
 * calls in one second with 20 waiting, and AWS throttled them).
 */
const CALLS_IN_FLIGHT = 10;
const FIRST_TURN_LEAD_MS = 1_000;

/**
 * Hands out the calls' turns, `spacingMs` apart: the server's rate on the calls' queue holds the fleet to the quota
 * over time, but releases a second's worth at once after a pause, and the first second of an hour then saw twice the
 * quota. A plan from before the spacing existed has none, and its calls go as the queue releases them.
 */
function turns(spacingMs: () => number | undefined, leadMs: number): () => number | undefined {
  let next = 0;
  return () => {
    const spacing = spacingMs();
    if (spacing === undefined) return undefined;
    // The first calls wait for a worker and for the store, busy planning the hour: turns they had missed would
    // send them together.
    if (next === 0) next = Date.now() + leadMs;
    const at = Math.max(Date.now(), next);
    next = at + spacing;
    return at;
  };
}

const { plannedCalls, completeHour } = bookkeeping;
const { freezeHour } = proxyActivities<Activities>({
  // One pass over the hour's customers: minutes at 100,000, with a heartbeat per thousand.
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['HourOutsideWindow'],
  },
});

export async function hourlyMetering(input: HourlyMeteringInput = {}): Promise<MeteringProgress> {
  // Runs that began paging customers before the calls had their own queue finish the way they began.
  if (input.resume ? 'afterKey' in input.resume : !patched('metering-calls-queue')) {
    const progress = input.resume?.progress ?? emptyProgress();
    setHandler(meteringProgressQuery, () => progress);
    return pagedHourlyMetering(input, progress);
  }
  const resume = input.resume;
  const progress = resume?.progress ?? emptyProgress();
  setHandler(meteringProgressQuery, () => progress);
  if (!resume) await planHours(progress, input.hours);

  let sending = resume?.sending;
  while (progress.hoursDue.length > 0) {
    await meterOneHour(progress, async (hour) => {
      sending = await meterHour(hour, progress, sending, input.callsPerRun ?? CALLS_PER_RUN);
      if (sending.next < sending.plan.calls) {
        await continueAsNew<typeof hourlyMetering>({ callsPerRun: input.callsPerRun, resume: { progress, sending } });
      }
      await completeHour({ hour, totals: progress.current });
    });
    sending = undefined;
  }
  progress.hour = undefined;
  failIfMissed(progress);
  return progress;
}

type Sending = NonNullable<NonNullable<HourlyMeteringInput['resume']>['sending']>;

/**
 * Plans the hour (unless a run before this one did) and sends its calls as
 * they are announced, CALLS_IN_FLIGHT at a time, up to `budget` calls or
 * until the history asks to continue as new. Returns the plan and the first
 * call not sent.
 */
async function meterHour(hour: string, progress: MeteringProgress, from: Sending | undefined, budget: number) {
  // One plan per chain of runs: a retry goes on with it, a later run plans afresh what is still unanswered.
  const planId = from?.plan.id ?? workflowInfo().firstExecutionRunId;
  const { sendMeteringCall } = proxyActivities<Activities>(sendOptions());
  let frozen: HourPlan | undefined = from?.plan;
  let failure: Error | undefined;
  let available = frozen?.calls ?? 0;
  let cursor = from?.next ?? 0;
  const last = cursor + budget;
  let planned = frozen !== undefined;
  let spacingMs = frozen?.callSpacingMs;
  // A run that continued as new finds the hour planned and the workers warm.
  const nextTurn = turns(() => spacingMs, frozen ? 0 : FIRST_TURN_LEAD_MS);
  if (!frozen) {
    freezeHour({ hour, plan: planId }).then(
      (plan) => {
        frozen = plan;
        spacingMs ??= plan.callSpacingMs;
        available = plan.calls;
        planned = true;
        add(progress, { customers: plan.customers, records: plan.records, rejected: plan.rejected });
      },
      (error: Error) => {
        failure ??= error;
        planned = true;
      },
    );
  }
  const end = () => Math.min(last, frozen?.calls ?? Infinity);
  const planning = () => frozen === undefined && failure === undefined;
  // Asks how far planning has gone only when the calls announced so far are nearly all sent.
  const watchPlanning = async () => {
    while (planning()) {
      await condition(() => !planning() || cursor + CALLS_IN_FLIGHT >= available);
      if (!planning()) return;
      const { calls: announced, callSpacingMs } = await plannedCalls({ hour, plan: planId });
      spacingMs ??= callSpacingMs;
      if (announced <= available) await sleep('250 milliseconds');
      available = Math.max(available, announced);
    }
  };
  const send = async () => {
    for (;;) {
      await condition(() => failure !== undefined || cursor >= end() || cursor < Math.min(available, last));
      if (failure !== undefined) throw failure;
      if (cursor >= end() || workflowInfo().continueAsNewSuggested) return;
      const seq = cursor++;
      try {
        add(progress, { ...(await sendMeteringCall({ hour, plan: planId, seq, notBefore: nextTurn() })), calls: 1 });
      } catch (error) {
        failure ??= error as Error;
        throw error;
      }
    }
  };
  await Promise.allSettled([watchPlanning(), ...Array.from({ length: CALLS_IN_FLIGHT }, send)]);
  // Whatever happened, the planning is let finish before the run moves on or continues as new.
  await condition(() => planned);
  if (failure !== undefined) throw failure;
  return { plan: { ...frozen!, id: planId }, next: cursor };
}
