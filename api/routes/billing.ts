import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import { StringEnum, Type } from '../../lib/schema';
import { accountsOf, PAYMENT_METHODS } from '../../lib/store/accounts';
import { billingView, latestCancellation } from '../common/billing-view';
import { ErrorRef } from '../common/schemas';
import { requireAccount } from '../common/session';

export const BillingResponse = Type.Object(
  {
    accountId: Type.String(),
    name: Type.String(),
    paymentMethod: StringEnum(PAYMENT_METHODS),
    paymentMethodLabel: Type.String(),
    marketplace: Type.Optional(
      Type.Object({
        awsAccountId: Type.String(),
        productCode: Type.String(),
        linkedAt: Type.String({ format: 'date-time' }),
      }),
    ),
    cancellation: Type.Optional(
      Type.Object({
        phase: Type.String(),
        deletionDueAt: Type.Optional(Type.String({ format: 'date-time' })),
        stoppedDeployments: Type.Array(
          Type.Object({ id: Type.String(), name: Type.String(), deleted: Type.Boolean() }),
        ),
      }),
    ),
  },
  { $id: 'Billing' },
);

export function registerBillingRoutes(root: FastifyInstance, deps: { db: Db }): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  root.addSchema(BillingResponse);
  app.get(
    '/api/billing',
    {
      preHandler: requireAccount,
      schema: {
        summary: "The signed-in account's payment method",
        response: { 200: Type.Ref(BillingResponse), 401: ErrorRef, 404: ErrorRef },
      },
    },
    async (request, reply) => {
      const account = await accountsOf(deps.db).findOne({ _id: request.accountId! });
      if (!account) return reply.code(404).send({ error: 'NotFound', message: 'This account no longer exists.' });
      return billingView(account, await latestCancellation(deps.db, account._id));
    },
  );
}
