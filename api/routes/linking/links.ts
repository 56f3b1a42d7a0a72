/** The JSON API of account linking: redeem a link code the buyer confirmed (or decline it), then watch the status. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import { requestLink, type SubscriptionTarget } from '../../../clients/subscription-client';
import { StringEnum, Type } from '../../../lib/schema';
import { latestLinkStatus } from '../../../lib/store/link-status';
import { insertOnce, linkCodeUsesOf } from '../../../lib/store/registrations';
import { LINK_PHASES, LINK_REFUSALS, type LinkStatus } from '../../../domain/link-model';
import { findBoundLinkCode, LINK_CODE_PATTERN, linkCodeErrors } from '../../common/link-codes';
import { ErrorRef, ErrorResponse } from '../../common/schemas';
import { BINDING_COOKIE, requireAccount, sameOriginOnly } from '../../common/session';

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

export const LinkDeclinedResponse = Type.Object(
  {
    state: StringEnum(['declined'] as const),
    awsAccountId: Type.String(),
    productCode: Type.String(),
    message: Type.String(),
  },
  { $id: 'LinkDeclined', description: 'The link code is spent without linking; nothing changed on the account' },
);

const errors = linkCodeErrors;
const problemStatus = { unknown: 404, notYours: 403, expired: 410 } as const;
const LinkCodeBody = Type.Object(
  { linkCode: Type.String({ pattern: LINK_CODE_PATTERN }) },
  { additionalProperties: false },
);

export function registerLinkRoutes(root: FastifyInstance, deps: LinkRoutesDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  root.addSchema(LinkStatusResponse);
  root.addSchema(LinkDeclinedResponse);

  app.post(
    '/api/links',
    {
      preHandler: [sameOriginOnly(deps.publicBaseUrl), requireAccount],
      schema: {
        summary: 'Link the signed-in account to the AWS customer behind a link code',
        body: LinkCodeBody,
        response: {
          200: Type.Ref(LinkStatusResponse, { description: 'Refused: the answer says why' }),
          202: Type.Ref(LinkStatusResponse, { description: 'Accepted: waiting for AWS, or linked' }),
          401: ErrorRef,
          403: ErrorRef,
          404: ErrorRef,
          409: ErrorRef,
          410: Type.Ref(ErrorResponse, {
            description: 'The code expired (LinkCodeExpired), or the buyer declined it (LinkCodeDeclined)',
          }),
          503: ErrorRef,
        },
      },
    },
    async (request, reply) => {
      const accountId = request.accountId!;
      const found = await findBoundLinkCode(deps.db, request.body.linkCode, request.cookies[BINDING_COOKIE]);
      if ('problem' in found) return reply.code(problemStatus[found.problem]).send(errors[found.problem]);
      const { code } = found;
      const codeHash = code._id;
      // Claim the code first: of two concurrent uses exactly one inserts.
      // The claim stays unanswered until the workflow answered: only then is a repeat a replay of a used code.
      const claim = await insertOnce(linkCodeUsesOf(deps.db), {
        _id: codeHash,
        accountId,
        usedAt: new Date(),
        unansweredAt: new Date(),
      });
      if (!claim.inserted && claim.stored.accountId !== accountId) return reply.code(403).send(errors.notYours);
      if (!claim.inserted && claim.stored.declinedAt) return reply.code(410).send(errors.declined);
      if (!claim.inserted && !claim.stored.unansweredAt) return reply.code(409).send(errors.used);

      const ref = {
        awsAccountId: code.awsAccountId,
        productCode: code.productCode,
        ...(code.licenseArn ? { licenseArn: code.licenseArn } : {}),
      };
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

  app.post(
    '/api/links/decline',
    {
      preHandler: [sameOriginOnly(deps.publicBaseUrl), requireAccount],
      schema: {
        summary: 'Decline a link code ("Not me"): it can never link; repeating the request answers the same',
        description:
          'The index page offers this next to the Link button. Anyone can make a browser post a registration token to the webhook, ' +
          'so a code the buyer did not expect is spent here rather than left usable until it expires.',
        body: LinkCodeBody,
        response: {
          200: Type.Ref(LinkDeclinedResponse),
          400: Type.Ref(ErrorResponse, { description: 'A malformed code or body' }),
          401: Type.Ref(ErrorResponse, { description: 'No valid session' }),
          403: Type.Ref(ErrorResponse, {
            description: 'A code issued to another browser or used by another account, or a cross-site request',
          }),
          404: Type.Ref(ErrorResponse, { description: 'An unknown code' }),
          409: Type.Ref(ErrorResponse, {
            description: 'The code was already used to link: declining cannot undo that',
          }),
          410: Type.Ref(ErrorResponse, { description: 'The code expired: it can no longer link anyway' }),
        },
      },
    },
    async (request, reply) => {
      const accountId = request.accountId!;
      const found = await findBoundLinkCode(deps.db, request.body.linkCode, request.cookies[BINDING_COOKIE]);
      if ('problem' in found) return reply.code(problemStatus[found.problem]).send(errors[found.problem]);
      const { code } = found;
      // The same unique claim as a link: of a click on Link and one on "Not me", exactly one wins.
      const now = new Date();
      const claim = await insertOnce(linkCodeUsesOf(deps.db), {
        _id: code._id,
        accountId,
        usedAt: now,
        declinedAt: now,
      });
      if (claim.stored.accountId !== accountId) return reply.code(403).send(errors.notYours);
      if (!claim.stored.declinedAt) return reply.code(409).send(errors.used);
      // Operators can tell attempts to force a link from this line: the AWS account is named, the code is not.
      if (claim.inserted)
        request.log.warn(
          { accountId, awsAccountId: code.awsAccountId, productCode: code.productCode },
          'link code declined by the buyer',
        );
      return reply.code(200).send({
        state: 'declined' as const,
        awsAccountId: code.awsAccountId,
        productCode: code.productCode,
        message:
          'Nothing was linked. If you did subscribe on AWS Marketplace, go back there and click Set Up Your Account again.',
      });
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
      if (!status)
        return reply.code(404).send({ error: 'NotFound', message: 'This account has no AWS Marketplace link.' });
      return status;
    },
  );
}
