/**
 * Metering's planning and sending without AWS or a store: whole units, the
 * window, the ledger's keys, how frozen records become BatchMeterUsage calls,
 * and how AWS's answers settle each record. The client is a stand-in that
 * answers like BatchMeterUsage; test/metering.test.ts runs the real worker
 * against the sandbox's implementation of the protocol.
 */
import type {
  BatchMeterUsageCommand,
  BatchMeterUsageCommandOutput,
  MarketplaceMeteringClient,
  UsageRecord,
} from '@aws-sdk/client-marketplace-metering';
import { billableUnits, METERING_WINDOW_MS, withinWindow } from '../../activities/metering/metering';
import { MAX_RECORDS_PER_CALL, planCalls, sendEntries, type SenderDeps } from '../../activities/metering/usage-sender';
import { RateLimiter } from '../../lib/rate-limiter';
import { ledgerKey, type LedgerEntry } from '../../lib/store/metering-ledger';
import { meteringModelKey, meteringModelOf } from '../../lib/store/metering-models';
import { HOUR_MS, hourStart } from '../../lib/store/usage';

const HOUR = new Date('2026-11-26T10:00:00.000Z');

function entry(n: number, options: { product?: string; license?: boolean; dimension?: string } = {}): LedgerEntry {
  const awsAccountId = String(200_000_000_000 + n);
  const base = {
    awsAccountId,
    productCode: options.product ?? 'prod-a',
    dimension: options.dimension ?? 'session_hours',
    hour: HOUR,
    quantity: n + 1,
    createdAt: HOUR,
    ...(options.license === false
      ? { customerIdentifier: `cust-${n}` }
      : { licenseArn: `aws:license-manager::111122223333:license/l-${n}` }),
  };
  const key = options.license === false ? `${awsAccountId}:${base.productCode}` : `license:l-${n}`;
  return { ...base, _id: ledgerKey(key, base) };
}

type Answer = (
  record: UsageRecord,
  call: number,
) => 'Success' | 'DuplicateRecord' | 'CustomerNotSubscribed' | 'unprocessed' | 'missing' | 'Unknown';

/** Answers like BatchMeterUsage, record by record, or fails the whole call with `fail`. */
function meteringStandIn(answer: Answer = () => 'Success', fail?: (call: number) => Error | undefined) {
  const calls: Array<{ productCode?: string; records: UsageRecord[] }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const client = {
    async send(command: BatchMeterUsageCommand): Promise<Partial<BatchMeterUsageCommandOutput>> {
      const records = command.input.UsageRecords ?? [];
      calls.push({ productCode: command.input.ProductCode, records });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      const error = fail?.(calls.length);
      if (error) throw error;
      const answers = records.map((record) => ({ record, status: answer(record, calls.length) }));
      return {
        Results: answers
          .filter((a) => !['unprocessed', 'missing'].includes(a.status))
          .map((a, i) => ({
            UsageRecord: a.record,
            Status: a.status as 'Success',
            MeteringRecordId: a.status === 'Success' ? `mr-${calls.length}-${i}` : undefined,
          })),
        UnprocessedRecords: answers.filter((a) => a.status === 'unprocessed').map((a) => a.record),
      };
    },
  };
  return { calls, client: client as unknown as MarketplaceMeteringClient, maxInFlight: () => maxInFlight };
}

const deps = (metering: MarketplaceMeteringClient, overrides: Partial<SenderDeps> = {}): SenderDeps => ({
  metering,
  limiter: new RateLimiter(10_000),
  concurrency: 2,
  notAfter: Date.now() + 60_000,
  maxRetries: 3,
  ...overrides,
});

const awsError = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('what is billed', () => {
  it.each([
    [0, 0],
    [0.1, 1],
    [1, 1],
    [1.000001, 2],
    [0.1 + 0.2 + 0.7, 1],
    [2.0000000001, 2],
    [24.5, 25],
    [-3, 0],
  ])('usage %p is %p whole units', (usage, units) => {
    expect(billableUnits(usage)).toBe(units);
  });

  it("meters an hour only while AWS still takes it, with 10 minutes' margin", () => {
    const now = HOUR.getTime() + 2 * HOUR_MS;
    expect(withinWindow(HOUR, now)).toBe(true);
    const edge = HOUR.getTime() + METERING_WINDOW_MS - 10 * 60_000;
    expect(withinWindow(HOUR, edge)).toBe(true);
    expect(withinWindow(HOUR, edge + 1)).toBe(false);
  });

  it('cuts time to the start of its hour', () => {
    expect(hourStart(new Date('2026-11-26T10:59:59.999Z'))).toEqual(HOUR);
    expect(hourStart(HOUR.getTime())).toEqual(HOUR);
  });
});

describe('ledger and model keys', () => {
  it('keys a ledger row by subscription, dimension and hour, in the format existing ledgers use', () => {
    expect(ledgerKey('123456789012:prod-a', { dimension: 'session_hours', hour: HOUR })).toBe(
      '123456789012:prod-a|session_hours|2026-11-26T10:00:00.000Z',
    );
    expect(ledgerKey('license:l-1', { dimension: 'traffic_gb', hour: HOUR })).toBe(
      'license:l-1|traffic_gb|2026-11-26T10:00:00.000Z',
    );
  });

  it('claims an hour per AWS account and product, whichever model names it, so the two models collide', () => {
    const licensed = entry(1);
    const legacy = { ...entry(1, { license: false }) };
    expect([meteringModelOf(licensed), meteringModelOf(legacy)]).toEqual(['license', 'customer-identifier']);
    expect(meteringModelKey(licensed)).toBe(meteringModelKey(legacy));
    expect(meteringModelKey(licensed)).toBe('200000000001:prod-a|2026-11-26T10:00:00.000Z');
  });
});

describe('planCalls', () => {
  it.each([
    [0, []],
    [1, [1]],
    [25, [25]],
    [26, [25, 1]],
    [50, [25, 25]],
    [51, [25, 25, 1]],
  ])('%p records of one product and model make calls of %p', (n, sizes) => {
    const calls = planCalls(Array.from({ length: n }, (_, i) => entry(i)));
    expect(calls.map((call) => call.length)).toEqual(sizes);
    expect(calls.flat().map((e) => e._id)).toEqual(Array.from({ length: n }, (_, i) => entry(i)._id));
  });

  it('never mixes products or identifier models in one call', () => {
    const entries = [
      entry(1),
      entry(2, { license: false }),
      entry(3, { product: 'prod-b' }),
      entry(4),
      entry(5, { license: false }),
      entry(6, { product: 'prod-b', license: false }),
    ];
    const calls = planCalls(entries);
    expect(calls.map((call) => call.map((e) => e.awsAccountId.slice(-1)))).toEqual([
      ['1', '4'],
      ['2', '5'],
      ['3'],
      ['6'],
    ]);
    for (const call of calls) {
      expect(new Set(call.map((e) => `${e.productCode}|${meteringModelOf(e)}`)).size).toBe(1);
      expect(call.length).toBeLessThanOrEqual(MAX_RECORDS_PER_CALL);
    }
  });
});

describe('sendEntries', () => {
  it("sends licensed records by account and license without a ProductCode, legacy ones by identifier with the call's ProductCode", async () => {
    const aws = meteringStandIn();
    const report = await sendEntries(deps(aws.client), [entry(1), entry(2, { license: false })]);
    expect(aws.calls).toEqual([
      {
        productCode: undefined,
        records: [
          {
            Timestamp: HOUR,
            Dimension: 'session_hours',
            Quantity: 2,
            CustomerAWSAccountId: '200000000001',
            LicenseArn: 'arn:aws:license-manager::111122223333:license/l-1',
          },
        ],
      },
      {
        productCode: 'prod-a',
        records: [{ Timestamp: HOUR, Dimension: 'session_hours', Quantity: 3, CustomerIdentifier: 'cust-2' }],
      },
    ]);
    expect(report).toEqual({
      calls: 2,
      unsent: 0,
      outcomes: [
        expect.objectContaining({ _id: entry(1)._id, status: 'sent' }),
        expect.objectContaining({ _id: entry(2, { license: false })._id, status: 'sent' }),
      ],
    });
    expect(report.outcomes.every((o) => o.meteringRecordId)).toBe(true);
  });

  it("settles each record by AWS's answer: sent, conflict for DuplicateRecord, not-subscribed", async () => {
    const answers: Record<string, ReturnType<Answer>> = {
      '200000000001': 'Success',
      '200000000002': 'DuplicateRecord',
      '200000000003': 'CustomerNotSubscribed',
    };
    const aws = meteringStandIn((record) => answers[record.CustomerAWSAccountId!]!);
    const report = await sendEntries(deps(aws.client), [entry(1), entry(2), entry(3)]);
    expect(report.outcomes.map((o) => [o._id, o.status])).toEqual([
      [entry(1)._id, 'sent'],
      [entry(2)._id, 'conflict'],
      [entry(3)._id, 'not-subscribed'],
    ]);
    expect(aws.calls).toHaveLength(1);
  });

  it('sends again only what AWS left unprocessed, left out of its answer, or answered with a status we do not know', async () => {
    const firstAnswer: Record<string, ReturnType<Answer>> = {
      '200000000002': 'unprocessed',
      '200000000003': 'missing',
      '200000000004': 'Unknown',
    };
    const aws = meteringStandIn((record, call) =>
      call === 1 ? (firstAnswer[record.CustomerAWSAccountId!] ?? 'Success') : 'Success',
    );
    const report = await sendEntries(deps(aws.client), [entry(1), entry(2), entry(3), entry(4)]);
    expect(aws.calls.map((call) => call.records.map((r) => r.CustomerAWSAccountId!.slice(-1)))).toEqual([
      ['1', '2', '3', '4'],
      ['2', '3', '4'],
    ]);
    expect(report.outcomes.map((o) => o.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    expect(report.unsent).toBe(0);
  });

  it('retries throttling and 5xx, and leaves records pending (unsent) after the last retry', async () => {
    const aws = meteringStandIn(undefined, () => awsError('ThrottlingException', 400));
    const report = await sendEntries(deps(aws.client, { maxRetries: 2 }), [entry(1), entry(2)]);
    expect([aws.calls.length, report.calls, report.unsent, report.outcomes]).toEqual([3, 3, 2, []]);

    const flaky = meteringStandIn(undefined, (call) =>
      call === 1 ? awsError('InternalServiceErrorException', 500) : undefined,
    );
    const recovered = await sendEntries(deps(flaky.client), [entry(1)]);
    expect([flaky.calls.length, recovered.outcomes.map((o) => o.status)]).toEqual([2, ['sent']]);
  });

  it('rejects a call AWS refused outright, once, without holding up the other calls', async () => {
    const aws = meteringStandIn(undefined, (call) =>
      call === 1 ? awsError('InvalidProductCodeException', 400) : undefined,
    );
    const report = await sendEntries(deps(aws.client, { concurrency: 1 }), [
      entry(1, { license: false }),
      entry(2, { product: 'prod-b', license: false }),
    ]);
    expect(report.outcomes.map((o) => [o._id, o.status, o.error])).toEqual([
      [entry(1, { license: false })._id, 'rejected', 'InvalidProductCodeException'],
      [entry(2, { product: 'prod-b', license: false })._id, 'sent', undefined],
    ]);
    expect(aws.calls).toHaveLength(2);
  });

  it('starts no call once the hour would leave the window', async () => {
    const aws = meteringStandIn();
    const report = await sendEntries(deps(aws.client, { notAfter: Date.now() - 1 }), [
      entry(1),
      entry(2, { license: false }),
    ]);
    expect([aws.calls.length, report.unsent, report.outcomes]).toEqual([0, 2, []]);
  });

  it('keeps at most `concurrency` calls in flight, and every record goes out exactly once', async () => {
    const aws = meteringStandIn();
    const entries = Array.from({ length: 260 }, (_, i) => entry(i));
    const report = await sendEntries(deps(aws.client, { concurrency: 3 }), entries);
    expect(aws.maxInFlight()).toBe(3);
    expect(aws.calls).toHaveLength(11);
    const sent = aws.calls.flatMap((call) => call.records.map((r) => r.CustomerAWSAccountId));
    expect(new Set(sent).size).toBe(260);
    expect(sent).toHaveLength(260);
    expect(report.outcomes).toHaveLength(260);
  });
});
