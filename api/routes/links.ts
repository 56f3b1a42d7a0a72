/** The JSON API of account linking: redeem a link code, then watch the status. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import { requestLink, type SubscriptionTarget } from '../../lib/subscription-client';
import { StringEnum, Type } from '../../lib/schema';
import { sha256 } from '../../lib/secrets';
import { latestLinkStatus } from '../../lib/store/link-status';
import { insertOnce, linkCodesOf, linkCodeUsesOf } from '../../lib/store/registrations';
import { LINK_PHASES, LINK_REFUSALS, type LinkStatus } from '../../workflows/link-model';
import { ErrorRef } from '../schemas';
import { BINDING_COOKIE, requireAccount, sameOriginOnly } from '../session';

export interface LinkRoutesDeps {
  db: Db;
  subscriptions: SubscriptionTarget;
  publicBaseUrl: string;
}

export const LinkStatusResponse = Type.Object(
  {
    awsAccountId: Type.String(),
    productCode: Type.String(),
    accountId: Type.String(),
    phase: StringEnum(LINK_PHASES),
    refusal: Type.Optional(StringEnum(LINK_REFUSALS)),
    paymentProblem: Type.Boolean(),
    message: Type.String(),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'LinkStatus', description: "One platform account's link to an AWS customer" },
);


const errors = {
  unknown: { error: 'UnknownLinkCode', message: 'This link code is not known. Go back to AWS Marketplace and click Set Up Your Account again.' },
  expired: { error: 'LinkCodeExpired', message: 'This link code has expired. Go back to AWS Marketplace and click Set Up Your Account again.' },
  notYours: { error: 'LinkCodeNotYours', message: 'This link code was issued to another browser or user and cannot be used here.' },
  used: { error: 'LinkCodeUsed', message: 'This link code was already used. Your link status is shown on the index page.' },
  unavailable: { error: 'LinkingUnavailable', message: 'Linking is briefly unavailable. Your request may still be in progress; retry in a few seconds to see the result.' },
};

export function registerLinkRoutes(root: FastifyInstance, deps: LinkRoutesDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  root.addSchema(LinkStatusResponse);

  app.post(
    '/api/links',
    {
      preHandler: [sameOriginOnly(deps.publicBaseUrl), requireAccount],
      schema: {
        summary: 'Link the signed-in account to the AWS customer behind a link code',
        body: Type.Object({ linkCode: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) }, { additionalProperties: false }),
        response: {
          200: Type.Ref(LinkStatusResponse, { description: 'Refused: the answer says why' }),
          202: Type.Ref(LinkStatusResponse, { description: 'Accepted: waiting for AWS, or linked' }),
          401: ErrorRef,
          403: ErrorRef,
          404: ErrorRef,
          409: ErrorRef,
          410: ErrorRef,
          503: ErrorRef,
        },
      },
    },
    async (request, reply) => {
      const accountId = request.accountId!;
      const codeHash = sha256(request.body.linkCode);
      const code = await linkCodesOf(deps.db).findOne({ _id: codeHash });
      if (!code) return reply.code(404).send(errors.unknown);
      const binding = request.cookies[BINDING_COOKIE];
      if (!binding || sha256(binding) !== code.bindingHash) return reply.code(403).send(errors.notYours);
      if (code.expiresAt.getTime() <= Date.now()) return reply.code(410).send(errors.expired);
      // Claim the code first: of two concurrent uses exactly one inserts.
      // The claim stays unanswered until the workflow answered: only then is a repeat a replay of a used code.
      const claim = await insertOnce(linkCodeUsesOf(deps.db), { _id: codeHash, accountId, usedAt: new Date(), unansweredAt: new Date() });
      if (!claim.inserted && claim.stored.accountId !== accountId) return reply.code(403).send(errors.notYours);
      if (!claim.inserted && !claim.stored.unansweredAt) return reply.code(409).send(errors.used);

      const ref = { awsAccountId: code.awsAccountId, productCode: code.productCode, ...(code.licenseArn ? { licenseArn: code.licenseArn } : {}) };
      let answer: LinkStatus;
      try {
        // The subscription's workflow decides and answers: a refusal, waiting for AWS, or linked. Repeating the
        // request (the same account) gets the current answer again, so a retry after a lost answer is safe.
        answer = await requestLink(deps.subscriptions, ref, accountId);
      } catch (error) {
        // The claim stays (nobody else may use the code) and unanswered: the same account's retry gets the answer.
        request.log.warn({ accountId, error: (error as Error).message }, 'link request not answered by Temporal');
        return reply.code(503).header('retry-after', '10').send(errors.unavailable);
      }
      request.log.info({ accountId, phase: answer.phase, refusal: answer.refusal }, 'link request answered');
      await linkCodeUsesOf(deps.db).updateOne({ _id: codeHash, accountId }, { $unset: { unansweredAt: '' } });
      // The response schema publishes only the documented fields.
      return reply.code(answer.phase === 'refused' ? 200 : 202).send(answer);
    },
  );

  app.get(
    '/api/links/current',
    {
      preHandler: requireAccount,
      schema: {
        summary: "The signed-in account's latest link status (read from the store, not from Temporal)",
        response: { 200: Type.Ref(LinkStatusResponse), 401: ErrorRef, 404: ErrorRef },
      },
    },
    async (request, reply) => {
      const status = await latestLinkStatus(deps.db, request.accountId!);
      if (!status) return reply.code(404).send({ error: 'NotFound', message: 'This account has no AWS Marketplace link.' });
      return status;
    },
  );
}
