/**
 * The registration webhook: AWS posts the buyer's browser here with
 * `x-amzn-marketplace-token`. The token is redeemed at once, the customer
 * stored, and the browser sent on with a one-time link code bound to it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from 'mongodb';
import type { RegistrationError, ResolvedRegistration } from '../../../activities/marketplace';
import { StringEnum, Type } from '../../../lib/schema';
import { randomSecret, sha256 } from '../../../lib/secrets';
import {
  issueLinkCode,
  recordRedemption,
  redeemedTokensOf,
  type LinkCodeGrant,
} from '../../../lib/store/registrations';
import { registrationProblemPage, type RegistrationFailure } from '../../pages/registration';
import { sendPage } from '../../pages/views';
import { clientKeyOf, type PerClientCeiling } from '../../../lib/rate-limiter';
import { BINDING_COOKIE, setBindingCookie, type SessionSettings } from '../../common/session';

export const REGISTRATION_PATH = '/marketplace/register';

export interface RegistrationDeps {
  db: Db;
  resolveCustomer: (token: string) => Promise<ResolvedRegistration>;
  /**
   * Paces ResolveCustomer across all clients (RESOLVE_CUSTOMER_MAX_PER_SECOND), so that no flood, however
   * spread over addresses, takes the seller past AWS's quota and real buyers' calls into throttling.
   */
  resolveCustomerCeiling: PerClientCeiling;
  linkCodeTtlSeconds: number;
  session: SessionSettings;
  /** Where buyers who are not signed in go first; the platform's own sign-in in production. */
  signInUrl: string;
}

/**
 * Real tokens are long, padded base64 strings (AWS's documented example has
 * 172 characters; the sandbox issues 88): anything shorter than 64 characters,
 * outside the base64 alphabet or not a whole number of base64 quanta is
 * refused before a ResolveCustomer call is spent on it.
 */
const REGISTRATION_TOKEN_PATTERN = '^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

/**
 * How long a buyer's browser may wait for a ResolveCustomer slot before being
 * asked to come back: with one place per client, 10 s at the default 5 calls
 * per second lets a real buyer through a flood from up to 50 addresses at once.
 */
export const CEILING_MAX_WAIT_MS = 10_000;

const RegistrationForm = Type.Object({
  'x-amzn-marketplace-token': Type.String({ minLength: 64, maxLength: 4096, pattern: REGISTRATION_TOKEN_PATTERN }),
  'x-amzn-marketplace-offer-type': Type.Optional(StringEnum(['free-trial'] as const)),
});

// A well-formed token that AWS doesn't vouch for is refused (403), not malformed (400): no schema can tell it apart.
const failureStatus: Record<RegistrationFailure, number> = {
  invalid: 403,
  expired: 403,
  replayed: 409,
  unavailable: 503,
  busy: 503,
  'rate-limited': 429,
  'not-post': 405,
};

/** `rate-limited` and `busy` answers carry the Retry-After their limiter computed. */
function problem(reply: FastifyReply, failure: RegistrationFailure, status = failureStatus[failure]) {
  if (failure === 'unavailable') reply.header('retry-after', '60');
  if (failure === 'not-post') reply.header('allow', 'POST');
  return sendPage(reply, 'registration-problem', registrationProblemPage(failure), status);
}

const problemPage = (description: string) => ({ description, content: { 'text/html': { schema: Type.String() } } });

const failureOf: Record<RegistrationError['problem'], RegistrationFailure> = {
  'invalid-token': 'invalid',
  'expired-token': 'expired',
  'api-disabled': 'unavailable',
  'aws-unavailable': 'unavailable',
};

export function registerRegistrationRoute(root: FastifyInstance, deps: RegistrationDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    REGISTRATION_PATH,
    {
      bodyLimit: 16 * 1024,
      attachValidation: true,
      // The buyer's browser reads these answers: an oversized or unreadable body gets the page too, not JSON.
      errorHandler: (error, request, reply) => {
        if ((error.statusCode ?? 500) >= 500) throw error;
        if (error.statusCode === 429) return problem(reply, 'rate-limited');
        request.log.warn({ code: error.code }, 'registration request rejected');
        return problem(reply, 'invalid', error.statusCode);
      },
      schema: {
        summary: "AWS Marketplace registration webhook (the buyer's browser, form-encoded)",
        consumes: ['application/x-www-form-urlencoded'],
        body: RegistrationForm,
        response: {
          303: Type.Null({ description: 'To the sign-in page or the index page, with a one-time link code' }),
          // Every refusal is a page for the buyer's browser, whatever refused it (see errorHandler).
          '4xx': problemPage('The request was refused; the page says why and what to do'),
          503: problemPage(
            'AWS Marketplace did not answer, or too many registrations are waiting for it; retry after Retry-After seconds',
          ),
        },
      },
    },
    async (request, reply) => {
      const form = request.headers['content-type']?.startsWith('application/x-www-form-urlencoded');
      if (!form) return problem(reply, 'invalid', 415);
      if (request.validationError) return problem(reply, 'invalid', 400);
      const token = request.body['x-amzn-marketplace-token'];
      const offerType = request.body['x-amzn-marketplace-offer-type'] === 'free-trial' ? 'free-trial' : 'standard';
      const binding = request.cookies[BINDING_COOKIE] ?? randomSecret();
      const bindingHash = sha256(binding);
      const tokenHash = sha256(token);

      const code = randomSecret();
      // Stored as its hash only: the code itself travels in the redirect and nowhere else.
      const grant: LinkCodeGrant = {
        codeHash: sha256(code),
        bindingHash,
        offerType,
        ttlSeconds: deps.linkCodeTtlSeconds,
      };

      const earlier = await redeemedTokensOf(deps.db).findOne({ _id: tokenHash });
      if (earlier) {
        // The same browser posting twice (a double click, a reload) goes on; any other browser is refused.
        if (earlier.bindingHash !== bindingHash) return problem(reply, 'replayed');
        await issueLinkCode(deps.db, earlier, grant);
      } else {
        if (!(await deps.resolveCustomerCeiling.tryAcquire(clientKeyOf(request.ip)))) {
          request.log.warn('registration turned away: the ResolveCustomer ceiling is reached');
          // By then the calls queued now are done.
          reply.header('retry-after', String(Math.ceil(deps.resolveCustomerCeiling.backlogMs() / 1000)));
          return problem(reply, 'busy');
        }
        let resolved: ResolvedRegistration;
        try {
          resolved = await deps.resolveCustomer(token);
        } catch (error) {
          const failure = failureOf[(error as RegistrationError).problem] ?? 'unavailable';
          request.log.warn(
            { awsError: (error as RegistrationError).awsErrorName, failure },
            'registration token not redeemed',
          );
          return problem(reply, failure);
        }
        const stored = await recordRedemption(deps.db, resolved, tokenHash, grant);
        if (stored.bindingHash !== bindingHash) return problem(reply, 'replayed');
      }
      setBindingCookie(reply, binding, deps.session, deps.linkCodeTtlSeconds);
      // AWS's POST is cross-site, so a Lax session cookie usually is not sent here; the sign-in page forwards
      // a signed-in buyer straight to `next`. Anyone can make a browser post here, so the index page only
      // asks the buyer to confirm: nothing links without their click.
      const index = `/?link=${code}`;
      return reply.redirect(request.accountId ? index : `${deps.signInUrl}?next=${encodeURIComponent(index)}`, 303);
    },
  );

  // Browsers that open the URL directly get an explanation, not a bare 404.
  app.get(REGISTRATION_PATH, { schema: { hide: true }, config: { methodNotAllowed: true } }, async (_request, reply) =>
    problem(reply, 'not-post'),
  );
}
