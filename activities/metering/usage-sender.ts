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

/** Splits entries into calls of at most 25, one product and one model per call. */
export function planCalls(entries: LedgerEntry[]): LedgerEntry[][] {
  const groups = new Map<string, LedgerEntry[]>();
  for (const entry of entries) groups.set(groupKey(entry), [...(groups.get(groupKey(entry)) ?? []), entry]);
  const calls: LedgerEntry[][] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += MAX_RECORDS_PER_CALL) calls.push(group.slice(i, i + MAX_RECORDS_PER_CALL));
  }
  return calls;
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
    const legacy = !remaining[0]!.licenseArn;
    let result;
    try {
      result = await deps.metering.send(
        new BatchMeterUsageCommand({
          UsageRecords: remaining.map(toRecord),
          ...(legacy ? { ProductCode: remaining[0]!.productCode } : {}),
        }),
      );
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      // Throttling and AWS-side failures are worth another try; a rejected request is not.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 500;
      if (name === 'ThrottlingException' || status >= 500) continue;
      // AWS refused the request itself: retrying cannot help, and one bad call must not hold up the hour.
      for (const entry of remaining)
        report.outcomes.push({ _id: entry._id, status: 'rejected', error: name || 'Error' });
      return;
    }
    const byKey = new Map(remaining.map((entry) => [recordKey(toRecord(entry)), entry]));
    for (const r of result.Results ?? []) {
      const entry = r.UsageRecord ? byKey.get(recordKey(r.UsageRecord)) : undefined;
      if (!entry) continue;
      const status = statusOf[r.Status ?? ''];
      // An answer we do not know is no answer: the record goes round again.
      if (!status) continue;
      report.outcomes.push({
        _id: entry._id,
        status,
        ...(r.MeteringRecordId ? { meteringRecordId: r.MeteringRecordId } : {}),
      });
      byKey.delete(recordKey(r.UsageRecord!));
    }
    // Whatever AWS did not answer for (UnprocessedRecords, or missing from Results) goes round again.
    remaining = [...byKey.values()];
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
