/**
 * Hourly metering's side effects: which hours are due, metering one page of
 * customers for one hour, closing an hour, and the final metering of one
 * customer. Every step is safe to repeat: the ledger freezes each record's
 * quantity before anything is sent.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import type { Db } from 'mongodb';
import type { MeteringConfig } from '../../lib/config';
import { bulkWriteInChunks, insertNew } from '../../lib/mongo';
import { RateLimiter } from '../../lib/rate-limiter';
import {
  customerKey,
  marketplaceCustomersOf,
  marketplaceLinksOf,
  METERED_LINK_STATES,
  type MarketplaceLinkDoc,
} from '../../lib/store/marketplace';
import {
  freezeEntries,
  ledgerKey,
  ledgerResultsOf,
  meteringCallKey,
  meteringCallsOf,
  meteringHoursOf,
  meteringPlanKey,
  meteringPlansOf,
  recordOutcomes,
  emptyHourRecord,
  type EntryWithStatus,
  type LedgerEntry,
  type MeteringCallDoc,
  type MeteringPlanDoc,
} from '../../lib/store/metering-ledger';
import { claimMeteringModels, METERING_MODEL_CONFLICT } from '../../lib/store/metering-models';
import { HOUR_MS, hourStart, hourUsageByAccount, usageByAccount } from '../../lib/store/usage';
import type { SubscriptionRef } from '../../domain/subscription-identity';
import { CallPlanner, sendEntries, sendOnce, type SendOutcome } from './usage-sender';

/** AWS accepts records up to 6 hours old; we stop 10 minutes short so a record never arrives late. */
export const METERING_WINDOW_MS = 6 * HOUR_MS;
const SAFETY_MS = 10 * 60_000;
/** How far back a run looks for hours that were never metered, to report them. */
const LOOKBACK_HOURS = 24;

export function withinWindow(hour: Date, now: number): boolean {
  return hour.getTime() >= now - METERING_WINDOW_MS + SAFETY_MS;
}

/**
 * AWS takes whole units; a started unit is billed (and no usage is a record of 0, as AWS asks).
 * Rounding to a millionth first keeps float noise in the sum (2.0000000001) from billing a unit.
 */
export function billableUnits(usage: number): number {
  return Math.max(0, Math.ceil(Math.round(usage * 1e6) / 1e6));
}

export interface PageTotals {
  customers: number;
  records: number;
  sent: number;
  conflicts: number;
  notSubscribed: number;
  /** Records AWS refused outright, or that name no customer: recorded for an operator, never retried. */
  rejected: number;
  calls: number;
}

/** An hour's records, frozen and cut into calls (freezeHour). */
export interface HourPlan {
  /** Where the calls are stored: `<hour>|<plan>`. */
  key: string;
  calls: number;
  customers: number;
  records: number;
  /** Never sent: no customer named, or the other identifier model holds the hour. */
  rejected: number;
  /** Answered by AWS in an earlier run. */
  answered: number;
  /** How far apart the workflow starts the calls: 1000 / METERING_RATE_PER_SECOND ms (see sendMeteringCall). */
  callSpacingMs?: number;
}

/** What AWS answered for one call's records. */
export interface CallTotals {
  sent: number;
  conflicts: number;
  notSubscribed: number;
  rejected: number;
}

/** Links read and frozen at a time while an hour is planned: bounds memory and the store's batches. */
const FREEZE_CHUNK = 1_000;
const FIRST_CHUNK = 100;

export interface MeteringDeps {
  db: Db;
  metering: MarketplaceMeteringClient;
  settings: MeteringConfig;
}

/** Checked by every step that could lead to a send, whatever the caller asked for. */
function assertWithinWindow(hour: Date): void {
  if (!withinWindow(hour, Date.now())) {
    throw ApplicationFailure.nonRetryable(
      `${hour.toISOString()} is outside AWS's 6-hour window; it is never sent`,
      'HourOutsideWindow',
    );
  }
}

/** Customers to meter for `hour`: linked and metered, active before the hour ended. */
function meteredLinks(hour: Date, afterKey?: string) {
  return {
    state: { $in: [...METERED_LINK_STATES] },
    activatedAt: { $lt: new Date(hour.getTime() + HOUR_MS) },
    ...(afterKey ? { _id: { $gt: afterKey } } : {}),
  };
}

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (a direct call in a script): nothing to report to.
  }
}

const EMPTY_PLAN = { calls: 0, customers: 0, records: 0, rejected: 0, answered: 0 };

const pick = ({ calls, customers, records, rejected, answered }: Omit<HourPlan, 'key'>) => ({
  calls,
  customers,
  records,
  rejected,
  answered,
});

function totalsOf(outcomes: Array<Pick<SendOutcome, 'status'>>): CallTotals {
  const count = (status: SendOutcome['status']) => outcomes.filter((o) => o.status === status).length;
  return {
    sent: count('sent'),
    conflicts: count('conflict'),
    notSubscribed: count('not-subscribed'),
    rejected: count('rejected'),
  };
}

/**
 * Waits for a call's turn. The workflow hands out turns at most a few seconds ahead; a turn further away than that
 * (a clock far off, a bad input) is not waited for, so a call never sits out its start-to-close timeout.
 */
async function waitUntil(at: number): Promise<void> {
  const wait = Math.min(at - Date.now(), MAX_TURN_WAIT_MS);
  if (wait > 0) await Context.current().sleep(wait);
}
const MAX_TURN_WAIT_MS = 5_000;

export function createMeteringActivities({ db, metering, settings }: MeteringDeps) {
  const callSpacingMs = 1000 / settings.ratePerSecond;
  // One limiter per worker process: every page and every final metering share the quota.
  const limiter = new RateLimiter(settings.ratePerSecond);

  function entriesFor(
    links: MarketplaceLinkDoc[],
    usage: Map<string, Record<string, number>>,
    hour: Date,
  ): LedgerEntry[] {
    const now = new Date();
    return links.flatMap((link) =>
      Object.entries(settings.dimensions).map(([metric, dimension]) => {
        const entry = {
          awsAccountId: link.awsAccountId,
          productCode: link.productCode,
          ...(link.licenseArn ? { licenseArn: link.licenseArn } : {}),
          ...(link.customerIdentifier ? { customerIdentifier: link.customerIdentifier } : {}),
          dimension,
          hour,
          quantity: billableUnits(usage.get(link.accountId)?.[metric] ?? 0),
          createdAt: now,
        };
        return { ...entry, _id: ledgerKey(link._id, entry) };
      }),
    );
  }

  /** Each entry's final answer, if it has one: looked up by key, the one lookup the embedded store does without a scan. */
  async function resultsOf(entries: LedgerEntry[]) {
    const found = await Promise.all(entries.map((entry) => ledgerResultsOf(db).findOne({ _id: entry._id })));
    return found.filter((result) => result !== null);
  }

  /**
   * Links activated before the identifiers were copied onto them take them from
   * the resolved customer, which is stored under the same key as its link
   * (`customerKey`: the license when AWS gave one, else account and product).
   */
  async function withIdentifiers(links: MarketplaceLinkDoc[]): Promise<MarketplaceLinkDoc[]> {
    const bare = links.filter((link) => !link.licenseArn && !link.customerIdentifier).map((link) => link._id);
    if (bare.length === 0) return links;
    const known = new Map(
      (
        await marketplaceCustomersOf(db)
          .find({ _id: { $in: bare } })
          .toArray()
      ).map((c) => [c._id, c]),
    );
    return links.map((link) => {
      const customer = known.get(link._id);
      return customer
        ? { ...link, licenseArn: customer.licenseArn, customerIdentifier: customer.customerIdentifier }
        : link;
    });
  }

  async function meter(links: MarketplaceLinkDoc[], hour: Date): Promise<PageTotals> {
    assertWithinWindow(hour);
    const complete = await withIdentifiers(links);
    const usage = await usageByAccount(
      db,
      complete.map((link) => link.accountId),
      hour,
    );
    heartbeat('usage read');
    const frozen = await freezeEntries(db, entriesFor(complete, usage, hour));
    heartbeat('records frozen');
    const pending = frozen.filter((entry) => entry.status === 'pending');
    const { sendable, refused } = await splitSendable(pending);
    heartbeat('models claimed');
    const report = await sendEntries(
      {
        metering,
        limiter,
        concurrency: settings.concurrency,
        notAfter: hour.getTime() + METERING_WINDOW_MS - SAFETY_MS,
        onProgress: (progress) => heartbeat(progress),
      },
      sendable,
    );
    report.outcomes.push(...refused);
    await recordOutcomes(db, report.outcomes);
    if (report.unsent > 0)
      throw new Error(`${report.unsent} records are still pending after retries; the page will be retried`);
    const count = (status: string) => report.outcomes.filter((o) => o.status === status).length;
    return {
      customers: links.length,
      records: frozen.length,
      sent: count('sent'),
      conflicts: count('conflict'),
      notSubscribed: count('not-subscribed'),
      rejected: count('rejected'),
      calls: report.calls,
    };
  }

  /** Freezes one chunk of an hour's links and returns the entries that may be sent; the others are settled now. */
  async function freezeChunk(links: MarketplaceLinkDoc[], usage: Map<string, Record<string, number>>, hour: Date) {
    const frozen = await freezeEntries(db, entriesFor(await withIdentifiers(links), usage, hour));
    const pending = frozen.filter((entry) => entry.status === 'pending');
    const { sendable, refused } = await splitSendable(pending);
    await recordOutcomes(db, refused);
    return { sendable, records: frozen.length, answered: frozen.length - pending.length, rejected: refused.length };
  }

  /**
   * A record that names no customer could only be refused by AWS, and an AWS
   * account + product is metered for an hour under one model only (both would
   * bill the buyer twice): those are settled as rejected, loudly, not sent.
   */
  async function splitSendable(pending: EntryWithStatus[]) {
    const unnamed = pending.filter((entry) => !entry.licenseArn && !entry.customerIdentifier);
    const { allowed, conflicting } = await claimMeteringModels(
      db,
      pending.filter((entry) => entry.licenseArn || entry.customerIdentifier),
    );
    const refused: SendOutcome[] = [
      ...unnamed.map((entry) => ({ _id: entry._id, status: 'rejected' as const, error: 'NoCustomerIdentifier' })),
      ...conflicting.map((entry) => ({ _id: entry._id, status: 'rejected' as const, error: METERING_MODEL_CONFLICT })),
    ];
    return { sendable: allowed, refused };
  }

  return {
    /**
     * Freezes every record of one hour and cuts them into BatchMeterUsage
     * calls stored under the plan's key, in one pass over the hour's links
     * and usage: the store is read once per hour, whatever the number of
     * customers. After each thousand links the calls so far are announced
     * (plannedCalls), so sending starts while planning goes on. A retry of
     * the same plan goes on where it stopped; another run (`plan`) plans
     * again, and only what AWS has not answered yet becomes calls.
     */
    async freezeHour(input: { hour: string; plan: string }): Promise<HourPlan> {
      const hour = new Date(input.hour);
      assertWithinWindow(hour);
      const key = meteringPlanKey(input.hour, input.plan);
      const made = await meteringPlansOf(db).findOne({ _id: key });
      if (made?.done) return { key, ...pick(made), callSpacingMs };
      // A planning that died goes on after the last link it recorded: the calls it announced may be in flight already.
      const plan: MeteringPlanDoc = made ?? { _id: key, ...EMPTY_PLAN, done: false, open: [], at: new Date() };
      const planner = new CallPlanner(plan.open.map((call) => call.entries));
      const store = async (calls: LedgerEntry[][]) => {
        const docs: MeteringCallDoc[] = calls.map((entries, i) => ({
          _id: meteringCallKey(key, plan.calls + i),
          hour,
          entries,
        }));
        // Calls stored by an attempt that died before announcing them were never sent: they are replaced.
        for (const stale of await insertNew(meteringCallsOf(db), docs))
          await meteringCallsOf(db).replaceOne(
            { _id: stale },
            docs.find((doc) => doc._id === stale)!,
          );
        plan.calls += calls.length;
      };
      /** Announces the calls stored so far, with where to go on from: only then may they be sent. */
      const record = async () => {
        plan.open = planner.partlyFilled().map((entries) => ({ entries }));
        plan.at = new Date();
        await meteringPlansOf(db).replaceOne({ _id: key }, plan, { upsert: true });
        heartbeat({ customers: plan.customers, calls: plan.calls });
      };
      let chunk: MarketplaceLinkDoc[] = [];
      const freeze = async () => {
        const frozen = await freezeChunk(chunk, usage, hour);
        plan.customers += chunk.length;
        plan.records += frozen.records;
        plan.answered += frozen.answered;
        plan.rejected += frozen.rejected;
        await store(planner.add(frozen.sendable));
        plan.lastKey = chunk.at(-1)?._id ?? plan.lastKey;
        await record();
        chunk = [];
      };
      const links = marketplaceLinksOf(db)
        .find(meteredLinks(hour, plan.lastKey))
        .sort({ _id: 1 })
        .batchSize(FREEZE_CHUNK);
      // The store reads the hour's usage while it sorts the links.
      const [usage] = await Promise.all([hourUsageByAccount(db, hour), links.hasNext()]);
      heartbeat('usage read');
      // A small first chunk announces the first calls within a second; bigger ones after it cost fewer round trips.
      for await (const link of links) {
        chunk.push(link);
        if (chunk.length === (plan.customers === 0 ? FIRST_CHUNK : FREEZE_CHUNK)) await freeze();
      }
      await freeze();
      await store(planner.flush());
      plan.done = true;
      await record();
      return { key, ...pick(plan), callSpacingMs };
    },

    /** How far an hour's planning has gone: calls below `calls` may be sent. */
    async plannedCalls(input: {
      hour: string;
      plan: string;
    }): Promise<{ calls: number; done: boolean; callSpacingMs: number }> {
      const plan = await meteringPlansOf(db).findOne({ _id: meteringPlanKey(input.hour, input.plan) });
      return { calls: plan?.calls ?? 0, done: plan?.done ?? false, callSpacingMs };
    },

    /**
     * Sends one call of an hour's plan: one BatchMeterUsage request, not
     * before `notBefore` (epoch ms). The workflow spaces its calls evenly at
     * the quota that way, since the Temporal server, which holds the calls'
     * task queue to METERING_RATE_PER_SECOND for every worker together,
     * releases a second's worth at once after any pause, and AWS counts
     * requests per second. A throttled or partly answered call fails so that
     * its retry goes through that queue too.
     */
    async sendMeteringCall(input: {
      hour: string;
      plan: string;
      seq: number;
      notBefore?: number;
    }): Promise<CallTotals> {
      const hour = new Date(input.hour);
      assertWithinWindow(hour);
      const call = await meteringCallsOf(db).findOne({
        _id: meteringCallKey(meteringPlanKey(input.hour, input.plan), input.seq),
      });
      // Announced calls are stored before they are announced, yet a read on the embedded store was seen to miss one
      // (2 runs in 8 at 10,000 customers): it is read again on the retry rather than failing the hour.
      if (!call) {
        throw ApplicationFailure.retryable(
          `call ${input.seq} of plan ${input.plan} is not in the store yet`,
          'MeteringCallNotFound',
        );
      }
      const { attempt } = Context.current().info;
      // Read first, wait after: the store's latency would otherwise bunch calls that were due apart.
      if (attempt === 1 && input.notBefore !== undefined) await waitUntil(input.notBefore);
      // Calls that reached this process late (a stalled store, a retry) still leave it one spacing apart.
      await limiter.acquire();
      // A retry sends only what no attempt before it settled.
      const settled = attempt > 1 ? await resultsOf(call.entries) : [];
      const answered = new Set(settled.map((result) => result._id));
      const unanswered = call.entries.filter((entry) => !answered.has(entry._id));
      // The attempt before settled everything and died before it could say so.
      if (unanswered.length === 0) return totalsOf(settled);
      const result = await sendOnce(metering, unanswered);
      await recordOutcomes(db, result.outcomes);
      if (result.leftover.length > 0) {
        throw ApplicationFailure.retryable(
          `${result.leftover.length} of ${call.entries.length} records not answered yet (${result.retryable ?? 'UnprocessedRecords'})`,
          result.retryable === 'ThrottlingException' ? 'Throttled' : 'NotAnswered',
        );
      }
      return totalsOf([...settled, ...result.outcomes]);
    },

    /** The closed hours still to meter inside the window, and the hours that fell out of it unmetered. */
    async planMetering(nowIso: string): Promise<{ due: string[]; missed: string[] }> {
      const now = new Date(nowIso).getTime();
      const lastClosed = hourStart(now - HOUR_MS).getTime();
      const candidates = Array.from({ length: LOOKBACK_HOURS }, (_, i) => new Date(lastClosed - i * HOUR_MS)).reverse();
      const known = new Set(
        (
          await meteringHoursOf(db)
            .find({ _id: { $in: candidates.map((h) => h.toISOString()) } })
            .toArray()
        ).map((h) => h._id),
      );
      const first = await meteringHoursOf(db).find({}).sort({ _id: 1 }).limit(1).next();
      const due = candidates
        .filter((h) => withinWindow(h, now) && !known.has(h.toISOString()))
        .map((h) => h.toISOString());
      // Only hours after the service first metered can have been missed: before that it did not exist.
      const missed = candidates
        .filter((h) => !withinWindow(h, now) && !known.has(h.toISOString()) && first && h.toISOString() > first._id)
        .map((h) => h.toISOString());
      if (missed.length > 0) {
        await bulkWriteInChunks(
          meteringHoursOf(db),
          missed.map((hour) => ({
            updateOne: {
              filter: { _id: hour },
              update: { $setOnInsert: emptyHourRecord('missed') },
              upsert: true,
            },
          })),
        );
      }
      return { due, missed };
    },

    /**
     * Cuts the next stretch of customers (by link id) into pages of
     * METERING_PAGE_SIZE, reading ids only, so the workflow can keep two pages
     * in flight: one prepares in the store while the other sends.
     */
    async planPages(input: {
      hour: string;
      afterKey?: string;
      pages: number;
    }): Promise<{ pages: Array<{ afterKey?: string; lastKey: string }>; done: boolean }> {
      assertWithinWindow(new Date(input.hour));
      const ids = await marketplaceLinksOf(db)
        .find(meteredLinks(new Date(input.hour), input.afterKey), { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .limit(settings.pageSize * input.pages)
        .toArray();
      const pages: Array<{ afterKey?: string; lastKey: string }> = [];
      for (let i = 0; i < ids.length; i += settings.pageSize) {
        pages.push({
          afterKey: i === 0 ? input.afterKey : ids[i - 1]!._id,
          lastKey: ids[Math.min(i + settings.pageSize, ids.length) - 1]!._id,
        });
      }
      return { pages, done: ids.length < settings.pageSize * input.pages };
    },

    /** Meters one page of customers, (afterKey, lastKey] by link id, for one hour. */
    async meterPage(input: { hour: string; afterKey?: string; lastKey: string }): Promise<PageTotals> {
      const hour = new Date(input.hour);
      const links = await marketplaceLinksOf(db)
        .find({
          ...meteredLinks(hour, input.afterKey),
          _id: { ...(input.afterKey ? { $gt: input.afterKey } : {}), $lte: input.lastKey },
        })
        .sort({ _id: 1 })
        .toArray();
      return meter(links, hour);
    },

    async completeHour(input: { hour: string; totals: Omit<PageTotals, 'sent' | 'calls'> }): Promise<void> {
      await meteringHoursOf(db).updateOne(
        { _id: input.hour },
        { $set: { state: 'complete', ...input.totals, at: new Date() } },
        { upsert: true },
      );
    },

    /**
     * Final metering of one customer (unsubscribe-pending gives about an
     * hour): every hour inside the window up to and including the current one.
     * Hours already metered are not sent again. The current hour's record is
     * frozen now, as "up to now" means: usage later in that hour is not billed,
     * and a later hourly run sends nothing for it, so nothing can conflict.
     */
    async meterCustomerNow(customer: SubscriptionRef): Promise<PageTotals> {
      const link = await marketplaceLinksOf(db).findOne({
        _id: customerKey(customer),
        state: { $in: [...METERED_LINK_STATES] },
      });
      const totals: PageTotals = {
        customers: link ? 1 : 0,
        records: 0,
        sent: 0,
        conflicts: 0,
        notSubscribed: 0,
        rejected: 0,
        calls: 0,
      };
      if (!link) return totals;
      const now = Date.now();
      for (let hour = hourStart(now); withinWindow(hour, now); hour = new Date(hour.getTime() - HOUR_MS)) {
        if (link.activatedAt && link.activatedAt.getTime() >= hour.getTime() + HOUR_MS) break;
        const page = await meter([link], hour);
        for (const key of ['records', 'sent', 'conflicts', 'notSubscribed', 'rejected', 'calls'] as const)
          totals[key] += page[key];
      }
      return totals;
    },
  };
}
