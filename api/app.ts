import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { ResolvedRegistration } from '../activities/marketplace';
import type { ApiConfig } from './config';
import { installErrorHandler } from '../lib/error-handler';
import { timeoutOptions, type HttpTimeouts } from './http-timeouts';
import { answerOtherMethodsWith405 } from './method-not-allowed';
import { registerOpenApi } from './openapi';
import { registerAssets } from './routes/assets';
import { registerBillingRoutes } from './routes/billing';
import { registerHealthRoutes } from './routes/health';
import { registerLinkRoutes } from './routes/linking/links';
import { registerRateLimits, type RateLimitSettings } from './rate-limits';
import { registerPages } from './routes/pages';
import { registerPageViews } from './pages/views';
import { CEILING_MAX_WAIT_MS, registerRegistrationRoute } from './routes/linking/registration';
import { ErrorResponse } from './common/schemas';
import { frameworkErrorsWithHeaders, registerSecurityHeaders } from './security-headers';
import { registerSessions, type SessionSettings } from './common/session';
import { PerClientCeiling, RateLimiter } from '../lib/rate-limiter';
import { THREE_DAYS_MS } from '../workflows/legacy/cancel-subscription';

export interface ApiSettings {
  taskQueue: string;
  publicBaseUrl: string;
  session: Omit<SessionSettings, 'secureCookies'>;
  linking: ApiConfig['linking'];
  /** Passed to a subscription workflow this API starts. */
  cancellation?: ApiConfig['cancellation'];
  demoAccounts: boolean;
  signInUrl: string;
  rateLimits: RateLimitSettings;
  timeouts: HttpTimeouts;
  /** Whose X-Forwarded-For is believed: a hop count or the load balancers' addresses (TRUST_PROXY); unset: nobody's. */
  trustProxy?: number | string;
}

export interface AppDeps {
  db: Db;
  temporal: Client;
  /** The ResolveCustomer activity, called in-process: the buyer's browser is waiting for it. */
  resolveCustomer: (token: string) => Promise<ResolvedRegistration>;
  settings: ApiSettings;
  logLevel?: string;
}

export function apiSettings(config: ApiConfig, signingKeys: string[]): ApiSettings {
  return {
    taskQueue: config.temporal.taskQueue,
    publicBaseUrl: config.api.publicBaseUrl,
    session: { signingKeys, ttlSeconds: config.session.ttlSeconds },
    linking: config.linking,
    cancellation: config.cancellation,
    demoAccounts: config.demoAccounts,
    signInUrl: config.signInUrl,
    rateLimits: config.rateLimits,
    timeouts: config.httpServer.timeouts,
    trustProxy: config.httpServer.trustProxy,
  };
}

/** Link codes travel in query strings; they are secrets and must not reach the logs. */
function loggableUrl(url: string): string {
  return url.replace(/([?&](?:link|next)=)[^&]*/g, '$1[redacted]');
}

/** A hop count trusts that many proxies nearest to us (Fastify's own reading of a number, which its types omit). */
function trustProxyOption(trustProxy: ApiSettings['trustProxy']) {
  if (trustProxy === undefined) return {};
  return {
    trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy,
  };
}

/** Builds the API without listening, so tests drive it on a real port. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { settings } = deps;
  const headers = { publicBaseUrl: settings.publicBaseUrl, signInUrl: settings.signInUrl };
  const app = Fastify({
    logger: {
      level: deps.logLevel ?? 'info',
      // Registration tokens, session tokens and cookies must never reach the logs.
      redact: ['req.headers.cookie', 'req.headers.authorization', 'req.body', 'res.headers["set-cookie"]'],
      serializers: {
        req: (request) => ({ method: request.method, url: loggableUrl(request.url), remoteAddress: request.ip }),
      },
    },
    bodyLimit: 64 * 1024,
    ...timeoutOptions(settings.timeouts),
    ...trustProxyOption(settings.trustProxy),
    frameworkErrors: frameworkErrorsWithHeaders(headers),
  });
  const session: SessionSettings = { ...settings.session, secureCookies: settings.publicBaseUrl.startsWith('https:') };
  installErrorHandler(app);
  await registerSecurityHeaders(app, headers);
  answerOtherMethodsWith405(app);
  await app.register(cookie);
  await app.register(formbody);
  await registerPageViews(app);
  await registerRateLimits(app, settings.rateLimits);
  await registerOpenApi(app, settings.publicBaseUrl);
  app.addSchema(ErrorResponse);
  registerSessions(app, session, deps.db);

  registerHealthRoutes(app, {
    mongodb: () => deps.db.command({ ping: 1 }),
    temporal: () => deps.temporal.workflowService.getSystemInfo({}),
  });
  registerRegistrationRoute(app, {
    db: deps.db,
    resolveCustomer: deps.resolveCustomer,
    resolveCustomerCeiling: new PerClientCeiling(
      new RateLimiter(settings.rateLimits.resolveCustomerPerSecond),
      CEILING_MAX_WAIT_MS,
    ),
    linkCodeTtlSeconds: settings.linking.codeTtlSeconds,
    session,
    signInUrl: settings.signInUrl,
  });
  registerLinkRoutes(app, {
    db: deps.db,
    subscriptions: {
      temporal: deps.temporal,
      taskQueue: settings.taskQueue,
      settings: {
        syncTimeoutMs: settings.linking.syncTimeoutMs,
        gracePeriodMs: settings.cancellation?.gracePeriodMs ?? THREE_DAYS_MS,
      },
    },
    publicBaseUrl: settings.publicBaseUrl,
  });
  registerBillingRoutes(app, { db: deps.db });
  registerAssets(app);
  registerPages(app, {
    db: deps.db,
    session,
    demoAccounts: settings.demoAccounts,
    signInUrl: settings.signInUrl,
    publicBaseUrl: settings.publicBaseUrl,
  });
  return app;
}
