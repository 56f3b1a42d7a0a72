/** The sandbox through the unmodified AWS SDK: the documented fields, rules and every error kind. */
import { BatchMeterUsageCommand, ResolveCustomerCommand, type UsageRecord } from '@aws-sdk/client-marketplace-metering';
import { startSandbox, type RunningSandbox } from '../helpers/sandbox';

interface Created {
  customer: {
    _id: string;
    customerIdentifier?: string;
    customerAwsAccountId: string;
    licenseArn: string;
    productCode: string;
  };
  token: string;
}

const hoursAgo = (h: number) => new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - h * 3_600_000);

describe('AWS Marketplace sandbox: ResolveCustomer', () => {
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(() => sandbox.close());
  afterEach(() => sandbox.control('DELETE', '/control/faults'));

  it('resolves a new-model token to account id, product code and license, without CustomerIdentifier', async () => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', { model: 'account' });
    const resolved = await sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token }));
    expect(resolved).toMatchObject({
      CustomerAWSAccountId: body.customer.customerAwsAccountId,
      ProductCode: 'test-product',
      LicenseArn: body.customer.licenseArn,
    });
    expect(resolved.CustomerIdentifier).toBeUndefined();
  });

  it('resolves a legacy token with CustomerIdentifier too', async () => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', { model: 'legacy' });
    const resolved = await sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token }));
    expect(resolved.CustomerIdentifier).toBe(body.customer.customerIdentifier);
    expect(resolved.CustomerAWSAccountId).toMatch(/^\d{12}$/);
  });

  it('rejects an unknown token with InvalidTokenException', async () => {
    await expect(
      sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: 'garbage' })),
    ).rejects.toMatchObject({
      name: 'InvalidTokenException',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('rejects an expired token with ExpiredTokenException', async () => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', { tokenTtlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    await expect(
      sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token })),
    ).rejects.toMatchObject({
      name: 'ExpiredTokenException',
    });
  });

  it.each([
    ['throttle', 'ThrottlingException', 400],
    ['internal', 'InternalServiceErrorException', 500],
    ['disabled', 'DisabledApiException', 400],
  ])('injects %s as %s', async (fault, name, status) => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', {});
    await sandbox.control('POST', '/control/faults', { operation: 'ResolveCustomer', fault, count: 1 });
    await expect(
      sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token })),
    ).rejects.toMatchObject({
      name,
      $metadata: { httpStatusCode: status },
    });
    // The fault was for one call only: the same token now resolves.
    await expect(
      sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token })),
    ).resolves.toHaveProperty('ProductCode');
  });

  it('injects latency: a caller that gives up sooner is cut off, the next call is served', async () => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', {});
    await sandbox.control('POST', '/control/faults', {
      operation: 'ResolveCustomer',
      fault: 'latency',
      latencyMs: 3000,
      count: 1,
    });
    const resolve = (waitMs: number) =>
      sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token }), {
        abortSignal: AbortSignal.timeout(waitMs),
      });
    await expect(resolve(300)).rejects.toMatchObject({ name: expect.stringMatching(/Abort|Timeout/) });
    await expect(resolve(10_000)).resolves.toHaveProperty('LicenseArn');
  });

  it('enforces its request quota with ThrottlingException, which the SDK retries with backoff', async () => {
    const { body } = await sandbox.control<Created>('POST', '/control/customers', {});
    await sandbox.control('PUT', '/control/quota', { ResolveCustomer: 2 });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, () =>
          sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: body.token })),
        ),
      );
      const throttled = results.filter(
        (r) => r.status === 'rejected' && (r.reason as Error).name === 'ThrottlingException',
      );
      expect(throttled.length).toBeGreaterThanOrEqual(3);

      const { MarketplaceMeteringClient } = await import('@aws-sdk/client-marketplace-metering');
      const retrying = new MarketplaceMeteringClient({
        region: 'us-east-1',
        endpoint: sandbox.url,
        credentials: { accessKeyId: 't', secretAccessKey: 't' },
        maxAttempts: 6,
      });
      await sandbox.control('POST', '/control/faults', { operation: 'ResolveCustomer', fault: 'throttle', count: 2 });
      const resolved = await retrying.send(new ResolveCustomerCommand({ RegistrationToken: body.token }));
      expect(resolved.$metadata.attempts).toBeGreaterThanOrEqual(3);
      retrying.destroy();
    } finally {
      await sandbox.control('PUT', '/control/quota', { ResolveCustomer: 1000 });
    }
  });
});

describe('AWS Marketplace sandbox: BatchMeterUsage', () => {
  let sandbox: RunningSandbox;
  let account: Created['customer'];
  let legacy: Created['customer'];

  beforeAll(async () => {
    sandbox = await startSandbox();
    account = (await sandbox.control<Created>('POST', '/control/customers', { model: 'account', subscribed: true }))
      .body.customer;
    legacy = (await sandbox.control<Created>('POST', '/control/customers', { model: 'legacy', subscribed: true })).body
      .customer;
  });
  afterAll(() => sandbox.close());
  afterEach(() => sandbox.control('DELETE', '/control/faults'));

  const accountRecord = (dimension: string, quantity: number, at = hoursAgo(1)): UsageRecord => ({
    CustomerAWSAccountId: account.customerAwsAccountId,
    LicenseArn: account.licenseArn,
    Dimension: dimension,
    Quantity: quantity,
    Timestamp: at,
  });

  it('accepts the new model (CustomerAWSAccountId + LicenseArn), idempotently for identical records', async () => {
    const first = await sandbox.metering.send(
      new BatchMeterUsageCommand({ UsageRecords: [accountRecord('session_hours', 7)] }),
    );
    expect(first.Results).toHaveLength(1);
    expect(first.Results![0]).toMatchObject({ Status: 'Success', MeteringRecordId: expect.any(String) });
    const again = await sandbox.metering.send(
      new BatchMeterUsageCommand({ UsageRecords: [accountRecord('session_hours', 7)] }),
    );
    expect(again.Results![0]!.MeteringRecordId).toBe(first.Results![0]!.MeteringRecordId);
    expect(again.Results![0]!.UsageRecord?.Timestamp).toEqual(hoursAgo(1));
  });

  it('answers DuplicateRecord for the same customer, dimension and hour with another quantity; the first write wins', async () => {
    const at = hoursAgo(2);
    await sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: [accountRecord('traffic_gb', 3, at)] }));
    const later = new Date(at.getTime() + 10 * 60_000);
    const second = await sandbox.metering.send(
      new BatchMeterUsageCommand({ UsageRecords: [accountRecord('traffic_gb', 4, later)] }),
    );
    expect(second.Results![0]!.Status).toBe('DuplicateRecord');
    const { body } = await sandbox.control<Array<{ dimension: string; quantity: number }>>(
      'GET',
      `/control/usage?customerId=${account._id}`,
    );
    expect(body.filter((u) => u.dimension === 'traffic_gb')).toEqual([expect.objectContaining({ quantity: 3 })]);
  });

  it('accepts the legacy model with ProductCode, and zero quantities', async () => {
    const result = await sandbox.metering.send(
      new BatchMeterUsageCommand({
        ProductCode: legacy.productCode,
        UsageRecords: [
          {
            CustomerIdentifier: legacy.customerIdentifier,
            Dimension: 'session_hours',
            Quantity: 0,
            Timestamp: hoursAgo(1),
          },
        ],
      }),
    );
    expect(result.Results![0]!.Status).toBe('Success');
  });

  it('answers CustomerNotSubscribed for unknown and not-yet-subscribed customers', async () => {
    const pending = (await sandbox.control<Created>('POST', '/control/customers', { model: 'account' })).body.customer;
    const result = await sandbox.metering.send(
      new BatchMeterUsageCommand({
        UsageRecords: [
          {
            CustomerAWSAccountId: '000000000000',
            LicenseArn: 'arn:aws:license-manager::1:license:l-x',
            Dimension: 'session_hours',
            Quantity: 1,
            Timestamp: hoursAgo(1),
          },
          {
            CustomerAWSAccountId: pending.customerAwsAccountId,
            LicenseArn: pending.licenseArn,
            Dimension: 'session_hours',
            Quantity: 1,
            Timestamp: hoursAgo(1),
          },
        ],
      }),
    );
    expect(result.Results!.map((r) => r.Status)).toEqual(['CustomerNotSubscribed', 'CustomerNotSubscribed']);
  });

  it('refuses more than 25 records in one call', async () => {
    const records = Array.from({ length: 26 }, (_, i) => accountRecord('session_hours', 1, hoursAgo(1 + (i % 5))));
    await expect(sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: records }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it('refuses timestamps older than 6 hours with TimestampOutOfBoundsException and stores nothing', async () => {
    await expect(
      sandbox.metering.send(
        new BatchMeterUsageCommand({ UsageRecords: [accountRecord('session_hours', 1, hoursAgo(7))] }),
      ),
    ).rejects.toMatchObject({ name: 'TimestampOutOfBoundsException' });
    const { body } = await sandbox.control<Array<{ hour: string }>>('GET', `/control/usage?customerId=${account._id}`);
    expect(body.map((u) => u.hour)).not.toContain(hoursAgo(7).toISOString());
  });

  it.each([
    [
      'both identifiers',
      { CustomerIdentifier: 'X', CustomerAWSAccountId: '123456789012', LicenseArn: 'a' },
      'InvalidCustomerIdentifierException',
    ],
    ['account id without license', { CustomerAWSAccountId: '123456789012' }, 'InvalidLicenseException'],
    ['legacy without product code', { CustomerIdentifier: 'X' }, 'InvalidProductCodeException'],
  ])('refuses %s', async (_case, identity, name) => {
    await expect(
      sandbox.metering.send(
        new BatchMeterUsageCommand({
          UsageRecords: [{ ...identity, Dimension: 'session_hours', Quantity: 1, Timestamp: hoursAgo(1) }],
        }),
      ),
    ).rejects.toMatchObject({ name });
  });

  it('refuses an unknown dimension and allocations that do not add up', async () => {
    await expect(
      sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: [accountRecord('cpu_years', 1)] })),
    ).rejects.toMatchObject({ name: 'InvalidUsageDimensionException' });
    await expect(
      sandbox.metering.send(
        new BatchMeterUsageCommand({
          UsageRecords: [{ ...accountRecord('session_hours', 5), UsageAllocations: [{ AllocatedUsageQuantity: 4 }] }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidUsageAllocationsException' });
  });

  it('returns injected UnprocessedRecords without storing them, and accepts them on retry', async () => {
    await sandbox.control('POST', '/control/faults', { fault: 'unprocessed', count: 1 });
    const records = [accountRecord('session_hours', 2, hoursAgo(3)), accountRecord('traffic_gb', 9, hoursAgo(3))];
    const first = await sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: records }));
    expect(first.UnprocessedRecords).toHaveLength(1);
    expect(first.Results).toHaveLength(1);
    const retry = await sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: first.UnprocessedRecords }));
    expect(retry.Results![0]!.Status).toBe('Success');
  });

  it('keeps a ledger of every call, queryable for tests and benchmarks', async () => {
    await sandbox.control('POST', '/control/faults', { operation: 'BatchMeterUsage', fault: 'internal', count: 1 });
    await expect(
      sandbox.metering.send(new BatchMeterUsageCommand({ UsageRecords: [accountRecord('session_hours', 7)] })),
    ).rejects.toMatchObject({
      name: 'InternalServiceErrorException',
    });
    const { body } = await sandbox.control<
      Record<string, { calls: number; outcomes: Record<string, number>; statuses: Record<string, number> }>
    >('GET', '/control/calls/summary');
    expect(body.BatchMeterUsage!.outcomes.InternalServiceErrorException).toBe(1);
    expect(body.BatchMeterUsage!.statuses.DuplicateRecord).toBe(1);
    expect(body.BatchMeterUsage!.calls).toBeGreaterThanOrEqual(10);
  });

  it('answers a clear AWS error for an unknown operation and for a malformed body', async () => {
    const call = (operation: string, body: string) =>
      fetch(sandbox.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSMPMeteringService.${operation}` },
        body,
      });
    const unknown = await call('MeterUsage', '{}');
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ __type: 'UnknownOperationException' });
    const malformed = await call('BatchMeterUsage', '{not json');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ __type: 'SerializationException' });
  });
});
