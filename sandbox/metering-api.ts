/**
 * AWS Marketplace Metering over the real AWS JSON 1.1 protocol: one POST route,
 * the operation in the `X-Amz-Target` header, errors as `{"__type", "message"}`
 * plus `x-amzn-ErrorType`, so the unmodified AWS SDK client works against it.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseWith, Type } from '../lib/schema';
import type { FaultInjector, RequestQuota } from './faults';
import { hourOf, type SandboxCustomer, type SandboxStore } from './store';

export const AMZ_JSON = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'AWSMPMeteringService.';

export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

const ResolveCustomerInput = Type.Object({ RegistrationToken: Type.String({ minLength: 1 }) });

const UsageRecordInput = Type.Object({
  Timestamp: Type.Number(),
  CustomerIdentifier: Type.Optional(Type.String({ minLength: 1 })),
  CustomerAWSAccountId: Type.Optional(Type.String({ pattern: '^[0-9]{12}$' })),
  LicenseArn: Type.Optional(Type.String({ minLength: 1 })),
  Dimension: Type.String({ minLength: 1, maxLength: 255 }),
  Quantity: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647 })),
  UsageAllocations: Type.Optional(
    Type.Array(
      Type.Object({
        AllocatedUsageQuantity: Type.Integer({ minimum: 0 }),
        Tags: Type.Optional(Type.Array(Type.Object({ Key: Type.String(), Value: Type.String() }))),
      }),
      { minItems: 1, maxItems: 2500 },
    ),
  ),
});
type UsageRecordInput = (typeof UsageRecordInput)['static'];

const BatchMeterUsageInput = Type.Object({
  UsageRecords: Type.Array(UsageRecordInput, { maxItems: 25 }),
  ProductCode: Type.Optional(Type.String({ minLength: 1 })),
});

export interface MeteringRules {
  dimensions: readonly string[];
  /** How far back a usage timestamp may be (the project's rule is 6 hours). */
  maxAgeMs: number;
  /** Small allowance for clocks that run slightly ahead. */
  maxFutureMs: number;
}

export interface MeteringApiDeps {
  store: SandboxStore;
  faults: FaultInjector;
  quota: Record<'ResolveCustomer' | 'BatchMeterUsage', RequestQuota>;
  rules: MeteringRules;
}

function validate<T extends Parameters<typeof parseWith>[0]>(schema: T, body: unknown) {
  const result = parseWith(schema, body ?? {});
  if (!result.ok) {
    const first = result.issues[0];
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: ${first?.path || 'request'} ${first?.message}`,
    );
  }
  return result.value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function resolveCustomer(deps: MeteringApiDeps, body: unknown) {
  const { RegistrationToken } = validate(ResolveCustomerInput, body);
  const { customer, expired } = await deps.store.redeemToken(RegistrationToken);
  if (expired) throw new AwsError('ExpiredTokenException', 'Registration token is expired');
  if (!customer) throw new AwsError('InvalidTokenException', 'Registration token is invalid');
  return {
    ...(customer.customerIdentifier ? { CustomerIdentifier: customer.customerIdentifier } : {}),
    CustomerAWSAccountId: customer.customerAwsAccountId,
    ProductCode: customer.productCode,
    LicenseArn: customer.licenseArn,
  };
}

function checkRecord(record: UsageRecordInput, rules: MeteringRules, productCode: string | undefined, now: number) {
  const byIdentifier = record.CustomerIdentifier !== undefined;
  const byAccount = record.CustomerAWSAccountId !== undefined;
  if (byIdentifier === byAccount) {
    throw new AwsError(
      'InvalidCustomerIdentifierException',
      'Exactly one of CustomerIdentifier or CustomerAWSAccountId is required',
    );
  }
  if (byAccount && !record.LicenseArn)
    throw new AwsError('InvalidLicenseException', 'CustomerAWSAccountId requires LicenseArn');
  if (byIdentifier && !productCode)
    throw new AwsError('InvalidProductCodeException', 'ProductCode is required with CustomerIdentifier');
  if (record.LicenseArn && productCode) {
    throw new AwsError(
      'InvalidProductCodeException',
      'Send LicenseArn or ProductCode, not both: both would bill twice',
    );
  }
  if (!rules.dimensions.includes(record.Dimension)) {
    throw new AwsError('InvalidUsageDimensionException', `Unknown dimension "${record.Dimension}"`);
  }
  const at = record.Timestamp * 1000;
  if (!Number.isFinite(at) || at < now - rules.maxAgeMs || at > now + rules.maxFutureMs) {
    throw new AwsError(
      'TimestampOutOfBoundsException',
      `Timestamp ${new Date(at).toISOString()} is outside the accepted window`,
    );
  }
  if (record.UsageAllocations) {
    const sum = record.UsageAllocations.reduce((total, a) => total + a.AllocatedUsageQuantity, 0);
    if (sum !== (record.Quantity ?? 0)) {
      throw new AwsError('InvalidUsageAllocationsException', 'UsageAllocations quantities must add up to Quantity');
    }
  }
}

async function findCustomers(store: SandboxStore, records: UsageRecordInput[], productCode: string | undefined) {
  const found = new Map<UsageRecordInput, SandboxCustomer | undefined>();
  for (const record of records) found.set(record, await store.customerFor(record, productCode));
  return (record: UsageRecordInput): SandboxCustomer | undefined => found.get(record);
}

const meterable = (customer: SandboxCustomer | undefined): customer is SandboxCustomer =>
  customer !== undefined && (customer.status === 'subscribed' || customer.status === 'unsubscribe-pending');

async function batchMeterUsage(deps: MeteringApiDeps, body: unknown) {
  const input = validate(BatchMeterUsageInput, body);
  const now = Date.now();
  for (const record of input.UsageRecords) checkRecord(record, deps.rules, input.ProductCode, now);

  const customerOf = await findCustomers(deps.store, input.UsageRecords, input.ProductCode);
  const products = new Set(input.UsageRecords.map((r) => customerOf(r)?.productCode).filter(Boolean));
  if (products.size > 1)
    throw new AwsError('InvalidProductCodeException', 'All records of one call must be for one product');

  const unprocessed: UsageRecordInput[] = [];
  const accepted: Array<{ record: UsageRecordInput; customer: SandboxCustomer }> = [];
  const results: Array<{ UsageRecord: UsageRecordInput; Status: string; MeteringRecordId?: string }> = [];
  for (const record of input.UsageRecords) {
    const customer = customerOf(record);
    if (deps.faults.leaveUnprocessed()) unprocessed.push(record);
    else if (!meterable(customer)) results.push({ UsageRecord: record, Status: 'CustomerNotSubscribed' });
    else accepted.push({ record, customer });
  }
  const outcomes = await deps.store.recordUsage(
    accepted.map(({ record, customer }) => ({
      customerId: customer._id,
      meteredBy: record.CustomerIdentifier !== undefined ? ('customer-identifier' as const) : ('license' as const),
      dimension: record.Dimension,
      timestamp: new Date(record.Timestamp * 1000),
      hour: hourOf(new Date(record.Timestamp * 1000)),
      quantity: record.Quantity ?? 0,
      ...(record.UsageAllocations ? { allocations: record.UsageAllocations } : {}),
    })),
  );
  accepted.forEach(({ record }, i) => {
    const outcome = outcomes[i]!;
    results.push({
      UsageRecord: record,
      Status: outcome.status,
      ...(outcome.meteringRecordId ? { MeteringRecordId: outcome.meteringRecordId } : {}),
    });
  });
  return { Results: results, UnprocessedRecords: unprocessed };
}

const operations = {
  ResolveCustomer: resolveCustomer,
  BatchMeterUsage: batchMeterUsage,
} as const;
type OperationName = keyof typeof operations;

function sendAwsError(reply: FastifyReply, error: AwsError) {
  return reply
    .code(error.statusCode)
    .header('content-type', AMZ_JSON)
    .header('x-amzn-ErrorType', error.type)
    .send(JSON.stringify({ __type: error.type, message: error.message }));
}

function summarise(result: unknown): { records?: number; statuses?: Record<string, number>; unprocessed?: number } {
  const batch = result as { Results?: Array<{ Status: string }>; UnprocessedRecords?: unknown[] };
  if (!batch.Results) return {};
  const statuses: Record<string, number> = {};
  for (const r of batch.Results) statuses[r.Status] = (statuses[r.Status] ?? 0) + 1;
  return {
    records: batch.Results.length + (batch.UnprocessedRecords?.length ?? 0),
    statuses,
    unprocessed: batch.UnprocessedRecords?.length ?? 0,
  };
}

/**
 * A Fastify plugin in its own scope, so that errors raised before the handler
 * (unparsable JSON, a body over 1 MB) also come back in the AWS error format,
 * while the rest of the sandbox keeps the project's JSON errors.
 */
export async function meteringApi(app: FastifyInstance, deps: MeteringApiDeps): Promise<void> {
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const aws =
      error instanceof AwsError
        ? error
        : new AwsError(
            error.statusCode === 413 ? 'ValidationException' : 'SerializationException',
            error.message,
            error.statusCode ?? 400,
          );
    return sendAwsError(reply, aws);
  });

  app.addContentTypeParser(AMZ_JSON, { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_req, body, done) => {
    try {
      done(null, body === '' ? {} : JSON.parse(body as string));
    } catch {
      done(new AwsError('SerializationException', 'Request body is not valid JSON'), undefined);
    }
  });

  app.post('/', async (request, reply) => {
    const at = new Date();
    reply.header('x-amzn-RequestId', randomUUID());
    const target = String(request.headers['x-amz-target'] ?? '');
    const name = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    if (!(name in operations)) {
      return sendAwsError(reply, new AwsError('UnknownOperationException', `Unknown operation "${target}"`));
    }
    const operation = name as OperationName;
    try {
      const latency = deps.faults.latencyFor(operation);
      if (latency > 0) await sleep(latency);
      const fault = deps.faults.callFault(operation);
      if (fault === 'throttle' || !deps.quota[operation].tryTake())
        throw new AwsError('ThrottlingException', 'Rate exceeded');
      if (fault === 'internal') throw new AwsError('InternalServiceErrorException', 'Injected internal error', 500);
      if (fault === 'disabled') throw new AwsError('DisabledApiException', 'The API is disabled in the Region');
      const result = await operations[operation](deps, request.body);
      await deps.store.logCall({ operation, at, outcome: 'ok', ...summarise(result) });
      return reply.code(200).header('content-type', AMZ_JSON).send(JSON.stringify(result));
    } catch (error) {
      const awsError =
        error instanceof AwsError ? error : new AwsError('InternalServiceErrorException', 'Internal error', 500);
      if (!(error instanceof AwsError)) request.log.error({ err: error }, 'sandbox operation failed');
      await deps.store.logCall({ operation, at, outcome: awsError.type });
      return sendAwsError(reply, awsError);
    }
  });
}
