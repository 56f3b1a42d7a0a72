/** The buyer's pages: sign-in (local demo), the index page with the link modal, and Billing. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import { hashPassword, verifyPassword } from '../../lib/passwords';
import { randomSecret } from '../../lib/secrets';
import { Type } from '../../lib/schema';
import { accountsOf, deploymentsOf } from '../../lib/store/accounts';
import { linkOfferFor } from '../common/link-codes';
import { billingPage } from '../pages/billing-page';
import { indexPage } from '../pages/index-page';
import { signInPage } from '../pages/sign-in';
import { sendPage } from '../pages/views';
import {
  BINDING_COOKIE,
  endSession,
  safeLocalPath,
  sameOriginOnly,
  startSession,
  type SessionSettings,
} from '../common/session';
import { billingView, latestCancellation } from '../common/billing-view';

export interface PageDeps {
  db: Db;
  session: SessionSettings;
  /** The local sign-in page exists only with demo accounts; production signs in on the platform. */
  demoAccounts: boolean;
  signInUrl: string;
  publicBaseUrl: string;
}

// Verifying against this when the email is unknown keeps both answers equally slow.
const unknownAccountHash = hashPassword(randomSecret());

function toSignIn(request: FastifyRequest, reply: FastifyReply, signInUrl: string) {
  return reply.redirect(`${signInUrl}?next=${encodeURIComponent(request.url)}`, 303);
}

export function registerPages(root: FastifyInstance, deps: PageDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const hidden = { hide: true };

  app.get('/', { schema: hidden }, async (request, reply) => {
    const account = request.accountId ? await accountsOf(deps.db).findOne({ _id: request.accountId }) : null;
    if (!account) return toSignIn(request, reply, deps.signInUrl);
    const deployments = await deploymentsOf(deps.db)
      .find({ accountId: account._id, state: { $ne: 'deleted' } })
      .sort({ name: 1 })
      .toArray();
    // A code from the registration webhook is only offered for confirmation here; the buyer's click links.
    const linkCode = (request.query as { link?: unknown }).link;
    const link =
      linkCode === undefined
        ? undefined
        : await linkOfferFor(
            deps.db,
            typeof linkCode === 'string' ? linkCode : '',
            request.cookies[BINDING_COOKIE],
            account._id,
          );
    return sendPage(reply, 'index', indexPage(account, deployments, link));
  });

  app.get('/billing', { schema: hidden }, async (request, reply) => {
    const account = request.accountId ? await accountsOf(deps.db).findOne({ _id: request.accountId }) : null;
    if (!account) return toSignIn(request, reply, deps.signInUrl);
    return sendPage(
      reply,
      'billing',
      billingPage(billingView(account, await latestCancellation(deps.db, account._id))),
    );
  });

  const sameOrigin = sameOriginOnly(deps.publicBaseUrl);
  app.post('/signout', { schema: hidden, preHandler: sameOrigin }, async (request, reply) => {
    await endSession(request, reply, deps.session, deps.db);
    return reply.redirect(deps.signInUrl, 303);
  });

  if (!deps.demoAccounts) return;

  app.get(
    '/signin',
    { schema: { ...hidden, querystring: Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) }) } },
    async (request, reply) => {
      const next = safeLocalPath(request.query.next);
      if (request.accountId) return reply.redirect(next, 303);
      return sendPage(reply, 'sign-in', signInPage(next, undefined, deps.demoAccounts));
    },
  );

  app.post(
    '/signin',
    {
      bodyLimit: 8 * 1024,
      attachValidation: true,
      preHandler: sameOrigin,
      // The rate limiter (api/rate-limits.ts) refuses before the body is read: the form comes back, with the wait.
      errorHandler: (error, _request, reply) => {
        if (error.statusCode !== 429) throw error;
        const wait = `Too many sign-in attempts from your address. Wait ${String(reply.getHeader('retry-after'))} seconds and try again.`;
        return sendPage(reply, 'sign-in', signInPage('/', wait, deps.demoAccounts), 429);
      },
      schema: {
        ...hidden,
        body: Type.Object({
          email: Type.String({ minLength: 3, maxLength: 320 }),
          password: Type.String({ minLength: 1, maxLength: 1024 }),
          next: Type.Optional(Type.String({ maxLength: 2048 })),
        }),
      },
    },
    async (request, reply) => {
      const next = safeLocalPath((request.body as { next?: string } | undefined)?.next);
      if (request.validationError)
        return sendPage(reply, 'sign-in', signInPage(next, 'Enter your email and password.', deps.demoAccounts), 400);
      const account = await accountsOf(deps.db).findOne({ email: request.body.email.trim().toLowerCase() });
      const valid = await verifyPassword(request.body.password, account?.passwordHash ?? (await unknownAccountHash));
      if (!account || !valid) {
        return sendPage(
          reply,
          'sign-in',
          signInPage(next, 'That email and password do not match an account.', deps.demoAccounts),
          401,
        );
      }
      await startSession(reply, account, deps.session);
      return reply.redirect(next, 303);
    },
  );
}
