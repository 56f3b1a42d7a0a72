/**
 * Sends frozen ledger entries with BatchMeterUsage: grouped by product and
 * identifier model, 25 records per call, paced by the shared rate limiter,
 * several calls in flight. UnprocessedRecords and throttling are retried with
 * jittered backoff; what still fails stays `pending` for the next attempt.
 */
import {
  BatchMeterUsageCommand,
  type MarketplaceMeteringClient,
  type UsageRecord,
} from '@aws-sdk/client-marketplace-metering';
import type { FinalStatus, LedgerEntry } from '../../lib/store/metering-ledger';
import type { RateLimiter } from '../../lib/rate-limiter';
import { licenseIdOf, normalizeLicenseArn } from '../../domain/subscription-identity';

export const MAX_RECORDS_PER_CALL = 25;

export interface SendOutcome {
  _id: string;
  status: FinalStatus;
  meteringRecordId?: string;
  /** The AWS error of a rejected call. */
  error?: string;
}

const statusOf: Record<string, FinalStatus | undefined> = {
  Success: 'sent',
  DuplicateRecord: 'conflict',
  CustomerNotSubscribed: 'not-subscribed',
};

export interface SendReport {
  outcomes: SendOutcome[];
  calls: number;
  /** Entries that could not be sent after every retry; they stay pending. */
  unsent: number;
}

export interface SenderDeps {
  metering: MarketplaceMeteringClient;
  /** No call starts after this instant: the records' hour would leave AWS's window. */
  notAfter: number;
  limiter: RateLimiter;
  /** Calls in flight at once. */
  concurrency: number;
  /** Retries of one call's leftovers (throttling, UnprocessedRecords) before giving up on them for now. */
  maxRetries?: number;
  onProgress?: (report: { calls: number; sent: number }) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Exponential backoff with "equal jitter", capped at 5 s so the activity keeps heartbeating well inside its timeout. */
const jittered = (attempt: number) => Math.min(5_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);

/**
 * Legacy customers are billed by CustomerIdentifier with the call's ProductCode;
 * the others by CustomerAWSAccountId and LicenseArn, in calls without a
 * ProductCode (AWS reads the product from the license; both would bill twice).
 */
function groupKey(entry: LedgerEntry): string {
  return entry.licenseArn ? `account|${entry.productCode}` : `legacy|${entry.productCode}`;
}

function toRecord(entry: LedgerEntry): UsageRecord {
  return {
    Timestamp: entry.hour,
    Dimension: entry.dimension,
    Quantity: entry.quantity,
    ...(entry.licenseArn
      ? { CustomerAWSAccountId: entry.awsAccountId, LicenseArn: normalizeLicenseArn(entry.licenseArn) }
      : { CustomerIdentifier: entry.customerIdentifier }),
  };
}

/** Matches an answer to its record. The license is part of it: one AWS account may hold several licenses of one product. */
const recordKey = (r: UsageRecord) =>
  `${r.CustomerAWSAccountId ?? r.CustomerIdentifier}|${r.LicenseArn ? licenseIdOf(r.LicenseArn) : ''}|${r.Dimension}|${r.Timestamp instanceof Date ? r.Timestamp.getTime() : r.Timestamp}`;

/**
 * Cuts a stream of entries into calls of at most 25, one product and model per
 * call: each call as soon as it is full, the partly filled ones at the end, so
 * an hour streamed in chunks needs no more calls than if it came at once.
 */
export class CallPlanner {
  private readonly open = new Map<string, LedgerEntry[]>();

  /** `open`: the partly filled calls of a planner that stopped (partlyFilled()), to go on where it left off. */
  constructor(open: LedgerEntry[][] = []) {
    for (const call of open) if (call.length > 0) this.open.set(groupKey(call[0]!), [...call]);
  }

  partlyFilled(): LedgerEntry[][] {
    return [...this.open.values()];
  }

  add(entries: LedgerEntry[]): LedgerEntry[][] {
    const full: LedgerEntry[][] = [];
    for (const entry of entries) {
      const key = groupKey(entry);
      const call = this.open.get(key) ?? [];
      call.push(entry);
      if (call.length === MAX_RECORDS_PER_CALL) {
        full.push(call);
        this.open.delete(key);
      } else this.open.set(key, call);
    }
    return full;
  }

  flush(): LedgerEntry[][] {
    const rest = [...this.open.values()];
    this.open.clear();
    return rest;
  }
}

/** Splits entries into calls of at most 25, one product and one model per call. */
export function planCalls(entries: LedgerEntry[]): LedgerEntry[][] {
  const planner = new CallPlanner();
  return [...planner.add(entries), ...planner.flush()];
}

/** What one BatchMeterUsage call did: the final answers, and the entries AWS did not answer for. */
export interface CallResult {
  outcomes: SendOutcome[];
  /** Entries to send again (throttling, an AWS-side failure, UnprocessedRecords, or no answer). */
  leftover: LedgerEntry[];
  /** The whole call was throttled or failed on AWS's side. */
  retryable?: string;
}

/** One BatchMeterUsage call for up to 25 entries of one product and model. */
export async function sendOnce(metering: MarketplaceMeteringClient, entries: LedgerEntry[]): Promise<CallResult> {
  const legacy = !entries[0]!.licenseArn;
  let result;
  try {
    result = await metering.send(
      new BatchMeterUsageCommand({
        UsageRecords: entries.map(toRecord),
        ...(legacy ? { ProductCode: entries[0]!.productCode } : {}),
      }),
    );
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    // Throttling and AWS-side failures are worth another try; a rejected request is not.
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 500;
    if (name === 'ThrottlingException' || status >= 500)
      return { outcomes: [], leftover: entries, retryable: name || 'Error' };
    // AWS refused the request itself: retrying cannot help, and one bad call must not hold up the hour.
    return {
      outcomes: entries.map((entry) => ({ _id: entry._id, status: 'rejected', error: name || 'Error' })),
      leftover: [],
    };
  }
  const byKey = new Map(entries.map((entry) => [recordKey(toRecord(entry)), entry]));
  const outcomes: SendOutcome[] = [];
  for (const r of result.Results ?? []) {
    const entry = r.UsageRecord ? byKey.get(recordKey(r.UsageRecord)) : undefined;
    if (!entry) continue;
    const status = statusOf[r.Status ?? ''];
    // An answer we do not know is no answer: the record goes round again.
    if (!status) continue;
    outcomes.push({ _id: entry._id, status, ...(r.MeteringRecordId ? { meteringRecordId: r.MeteringRecordId } : {}) });
    byKey.delete(recordKey(r.UsageRecord!));
  }
  // Whatever AWS did not answer for (UnprocessedRecords, or missing from Results) goes round again.
  return { outcomes, leftover: [...byKey.values()] };
}

async function sendCall(deps: SenderDeps, batch: LedgerEntry[], report: SendReport): Promise<void> {
  let remaining = batch;
  for (let attempt = 0; remaining.length > 0; attempt += 1) {
    if (attempt > (deps.maxRetries ?? 8) || Date.now() >= deps.notAfter) {
      report.unsent += remaining.length;
      return;
    }
    if (attempt > 0) {
      deps.onProgress?.({ calls: report.calls, sent: report.outcomes.length });
      await sleep(jittered(attempt));
    }
    await deps.limiter.acquire();
    report.calls += 1;
    const call = await sendOnce(deps.metering, remaining);
    report.outcomes.push(...call.outcomes);
    remaining = call.leftover;
    deps.onProgress?.({ calls: report.calls, sent: report.outcomes.length });
  }
}

export async function sendEntries(deps: SenderDeps, entries: LedgerEntry[]): Promise<SendReport> {
  const report: SendReport = { outcomes: [], calls: 0, unsent: 0 };
  const queue = planCalls(entries);
  const worker = async () => {
    for (let batch = queue.shift(); batch; batch = queue.shift()) await sendCall(deps, batch, report);
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.concurrency) }, worker));
  return report;
}
