/** JSON control API: what tests, benchmarks and the buyer page use to drive the sandbox. */
import type { SignatureVersion } from './sns-signing';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { StringEnum, Type } from '../lib/schema';
import { FaultRule, type FaultInjector, type RequestQuota } from './faults';
import {
  EVENT_DETAIL_TYPES,
  SNS_ACTIONS,
  statusAfterAction,
  statusAfterEvent,
  type EventDetailType,
  type NotificationPublisher,
  type SnsAction,
} from './notifications';
import type { SandboxCustomer, SandboxStore, SubscriptionStatus } from './store';

export interface ControlApiDeps {
  store: SandboxStore;
  faults: FaultInjector;
  quota: Record<'ResolveCustomer' | 'BatchMeterUsage', RequestQuota>;
  publisher: NotificationPublisher;
  productCode: string;
  tokenTtlSeconds: number;
  registrationUrl: string;
}

const CustomerId = Type.Object({ id: Type.String({ minLength: 1 }) });

export async function createSubscription(
  deps: ControlApiDeps,
  input: {
    model?: 'legacy' | 'account';
    freeTrial?: boolean;
    productCode?: string;
    tokenTtlSeconds?: number;
    customerAwsAccountId?: string;
  },
) {
  const customer = await deps.store.createCustomer({
    productCode: input.productCode ?? deps.productCode,
    model: input.model ?? 'account',
    freeTrial: input.freeTrial ?? false,
    ...(input.customerAwsAccountId ? { customerAwsAccountId: input.customerAwsAccountId } : {}),
  });
  const { token, expiresAt } = await deps.store.issueToken(customer._id, input.tokenTtlSeconds ?? deps.tokenTtlSeconds);
  return { customer, token, expiresAt };
}

/** Moves the customer's status as AWS would, then publishes; undefined if there is no such customer. */
async function moveAndPublish<R>(
  deps: ControlApiDeps,
  customerId: string,
  next: SubscriptionStatus | undefined,
  publish: (customer: SandboxCustomer) => Promise<R>,
): Promise<R | undefined> {
  const customer = next ? await deps.store.setStatus(customerId, next) : await deps.store.getCustomer(customerId);
  return customer ? publish(customer) : undefined;
}

/** Publishes an SNS subscription notification. */
export function notify(
  deps: ControlApiDeps,
  customerId: string,
  action: SnsAction,
  signatureVersion?: SignatureVersion,
) {
  return moveAndPublish(deps, customerId, statusAfterAction[action], (c) =>
    deps.publisher.publishSns(c, action, signatureVersion),
  );
}

/** The EventBridge counterpart of `notify`. */
export function sendEvent(deps: ControlApiDeps, customerId: string, detailType: EventDetailType) {
  return moveAndPublish(deps, customerId, statusAfterEvent[detailType], (c) =>
    deps.publisher.publishEvent(c, detailType),
  );
}

export function registerControlApi(root: FastifyInstance, deps: ControlApiDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const notFound = { error: 'NotFound', message: 'No such customer' };

  app.post(
    '/control/customers',
    {
      schema: {
        body: Type.Object(
          {
            model: Type.Optional(StringEnum(['legacy', 'account'] as const)),
            freeTrial: Type.Optional(Type.Boolean()),
            productCode: Type.Optional(Type.String({ minLength: 1 })),
            tokenTtlSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
            customerAwsAccountId: Type.Optional(
              Type.String({
                pattern: '^[0-9]{12}$',
                description: 'Another purchase by an existing buyer account (concurrent agreements)',
              }),
            ),
            subscribed: Type.Optional(
              Type.Boolean({ description: 'Skip the subscribe-success step (for metering tests)' }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const created = await createSubscription(deps, request.body);
      const customer = request.body.subscribed
        ? ((await deps.store.setStatus(created.customer._id, 'subscribed')) ?? created.customer)
        : created.customer;
      return reply.code(201).send({ ...created, customer, registrationUrl: deps.registrationUrl });
    },
  );

  app.get('/control/customers/:id', { schema: { params: CustomerId } }, async (request, reply) => {
    const customer = await deps.store.getCustomer(request.params.id);
    return customer ? customer : reply.code(404).send(notFound);
  });

  app.post(
    '/control/customers/:id/tokens',
    {
      schema: {
        params: CustomerId,
        body: Type.Object({ ttlSeconds: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const customer = await deps.store.getCustomer(request.params.id);
      if (!customer) return reply.code(404).send(notFound);
      return reply
        .code(201)
        .send(await deps.store.issueToken(customer._id, request.body.ttlSeconds ?? deps.tokenTtlSeconds));
    },
  );

  app.post(
    '/control/customers/:id/notifications',
    {
      schema: {
        params: CustomerId,
        body: Type.Object(
          { action: StringEnum(SNS_ACTIONS), signatureVersion: Type.Optional(StringEnum(['1', '2'] as const)) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const published = await notify(deps, request.params.id, request.body.action, request.body.signatureVersion);
      return published ? reply.code(202).send(published) : reply.code(404).send(notFound);
    },
  );

  app.post(
    '/control/customers/:id/events',
    {
      schema: {
        params: CustomerId,
        body: Type.Object({ detailType: StringEnum(EVENT_DETAIL_TYPES) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const sent = await sendEvent(deps, request.params.id, request.body.detailType);
      return sent ? reply.code(202).send(sent) : reply.code(404).send(notFound);
    },
  );

  app.get(
    '/control/usage',
    {
      schema: {
        querystring: Type.Object({
          customerId: Type.Optional(Type.String()),
          limit: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
        }),
      },
    },
    async (request) => {
      const filter = request.query.customerId ? { customerId: request.query.customerId } : {};
      return deps.store.usage.find(filter).sort({ hour: 1, _id: 1 }).limit(request.query.limit).toArray();
    },
  );

  app.get('/control/calls/summary', async () => {
    const calls = await deps.store.calls.find({}).toArray();
    const byOperation: Record<
      string,
      { calls: number; outcomes: Record<string, number>; statuses: Record<string, number> }
    > = {};
    for (const call of calls) {
      const entry = (byOperation[call.operation] ??= { calls: 0, outcomes: {}, statuses: {} });
      entry.calls += 1;
      entry.outcomes[call.outcome] = (entry.outcomes[call.outcome] ?? 0) + 1;
      for (const [status, count] of Object.entries(call.statuses ?? {}))
        entry.statuses[status] = (entry.statuses[status] ?? 0) + count;
    }
    return byOperation;
  });

  app.get('/control/faults', async () => deps.faults.list());
  app.put('/control/faults', { schema: { body: Type.Array(FaultRule) } }, async (request) => {
    deps.faults.set(request.body);
    return deps.faults.list();
  });
  app.post('/control/faults', { schema: { body: FaultRule } }, async (request, reply) => {
    deps.faults.add(request.body);
    return reply.code(201).send(deps.faults.list());
  });
  app.delete('/control/faults', async (_request, reply) => {
    deps.faults.clear();
    return reply.code(204).send();
  });

  app.put(
    '/control/quota',
    {
      schema: {
        body: Type.Object(
          {
            ResolveCustomer: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
            BatchMeterUsage: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      for (const [operation, rps] of Object.entries(request.body)) {
        if (rps !== undefined) deps.quota[operation as keyof typeof deps.quota].setRate(rps);
      }
      return {
        ResolveCustomer: deps.quota.ResolveCustomer.ratePerSecond,
        BatchMeterUsage: deps.quota.BatchMeterUsage.ratePerSecond,
      };
    },
  );

  app.post('/control/reset', async (_request, reply) => {
    await deps.store.reset();
    deps.faults.clear();
    return reply.code(204).send();
  });
}
