import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import { StringEnum, Type } from '../../lib/schema';
import { accountsOf, paymentMethodLabel, PAYMENT_METHODS, type AccountDoc } from '../../lib/store/accounts';
import { cancellationsOf, type CancellationDoc } from '../../lib/store/marketplace';
import { ErrorRef } from '../schemas';
import { requireAccount } from '../session';

export const BillingResponse = Type.Object(
  {
    accountId: Type.String(),
    name: Type.String(),
    paymentMethod: StringEnum(PAYMENT_METHODS),
    paymentMethodLabel: Type.String(),
    marketplace: Type.Optional(
      Type.Object({ awsAccountId: Type.String(), productCode: Type.String(), linkedAt: Type.String({ format: 'date-time' }) }),
    ),
    cancellation: Type.Optional(
      Type.Object({
        phase: Type.String(),
        deletionDueAt: Type.Optional(Type.String({ format: 'date-time' })),
        stoppedDeployments: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), deleted: Type.Boolean() })),
      }),
    ),
  },
  { $id: 'Billing' },
);

/** The account's most recent cancellation, as its workflow last recorded it. */
export function latestCancellation(db: Db, accountId: string): Promise<CancellationDoc | null> {
  return cancellationsOf(db).find({ accountId }).sort({ updatedAt: -1 }).limit(1).next();
}

export function billingView(account: AccountDoc, cancellation?: CancellationDoc | null) {
  // Once billing runs through AWS again (a resubscription), an earlier cancellation is history, not news.
  const current = account.paymentMethod !== 'aws-marketplace' || cancellation?.phase === 'final-metering' || cancellation?.phase === 'awaiting-unsubscribe-success';
  return {
    ...(cancellation && current
      ? {
          cancellation: {
            phase: cancellation.phase,
            ...(cancellation.deletionDueAt ? { deletionDueAt: cancellation.deletionDueAt.toISOString() } : {}),
            stoppedDeployments: cancellation.stopped.map((d) => ({ ...d, deleted: cancellation.deleted.includes(d.id) })),
          },
        }
      : {}),
    accountId: account._id,
    name: account.name,
    paymentMethod: account.paymentMethod,
    paymentMethodLabel: paymentMethodLabel(account),
    ...(account.marketplace
      ? {
          marketplace: {
            awsAccountId: account.marketplace.awsAccountId,
            productCode: account.marketplace.productCode,
            linkedAt: account.marketplace.linkedAt.toISOString(),
          },
        }
      : {}),
  };
}

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
