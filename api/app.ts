import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { ResolvedRegistration } from '../activities/marketplace';
import type { ServiceConfig } from '../lib/config';
import { installErrorHandler } from '../lib/error-handler';
import { registerCookies } from './cookies';
import { registerOpenApi } from './openapi';
import { registerBillingRoutes } from './routes/billing';
import { registerHealthRoutes } from './routes/health';
import { registerLinkRoutes } from './routes/links';
import { registerPages } from './routes/pages';
import { registerRegistrationRoute } from './routes/registration';
import { ErrorResponse } from './schemas';
import { registerSessions, type SessionSettings } from './session';
import { THREE_DAYS_MS } from '../workflows/cancel-subscription';

export interface ApiSettings {
  taskQueue: string;
  publicBaseUrl: string;
  session: Omit<SessionSettings, 'secureCookies'>;
  linking: ServiceConfig['linking'];
  /** Passed to a subscription workflow this API starts. */
  cancellation?: ServiceConfig['cancellation'];
  demoAccounts: boolean;
  signInUrl: string;
}

export interface AppDeps {
  db: Db;
  temporal: Client;
  /** The ResolveCustomer activity, called in-process: the buyer's browser is waiting for it. */
  resolveCustomer(token: string): Promise<ResolvedRegistration>;
  settings: ApiSettings;
  logLevel?: string;
}

export function apiSettings(config: ServiceConfig, signingKeys: string[]): ApiSettings {
  return {
    taskQueue: config.temporal.taskQueue,
    publicBaseUrl: config.api.publicBaseUrl,
    session: { signingKeys, ttlSeconds: config.session.ttlSeconds },
    linking: config.linking,
    cancellation: config.cancellation,
    demoAccounts: config.demoAccounts,
    signInUrl: config.signInUrl,
  };
}

/** Link codes travel in query strings; they are secrets and must not reach the logs. */
function loggableUrl(url: string): string {
  return url.replace(/([?&](?:link|next)=)[^&]*/g, '$1[redacted]');
}

/** Builds the API without listening, so tests drive it on a real port. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { settings } = deps;
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
  });
  const session: SessionSettings = { ...settings.session, secureCookies: settings.publicBaseUrl.startsWith('https:') };
  installErrorHandler(app);
  registerCookies(app);
  await app.register(formbody);
  await registerOpenApi(app, settings.publicBaseUrl);
  app.addSchema(ErrorResponse);
  registerSessions(app, session);

  registerHealthRoutes(app, {
    mongodb: () => deps.db.command({ ping: 1 }),
    temporal: () => deps.temporal.workflowService.getSystemInfo({}),
  });
  registerRegistrationRoute(app, {
    db: deps.db,
    resolveCustomer: deps.resolveCustomer,
    linkCodeTtlSeconds: settings.linking.codeTtlSeconds,
    session,
    signInUrl: settings.signInUrl,
  });
  registerLinkRoutes(app, {
    db: deps.db,
    subscriptions: {
      temporal: deps.temporal,
      taskQueue: settings.taskQueue,
      settings: { syncTimeoutMs: settings.linking.syncTimeoutMs, gracePeriodMs: settings.cancellation?.gracePeriodMs ?? THREE_DAYS_MS },
    },
    publicBaseUrl: settings.publicBaseUrl,
  });
  registerBillingRoutes(app, { db: deps.db });
  registerPages(app, { db: deps.db, session, demoAccounts: settings.demoAccounts, signInUrl: settings.signInUrl, publicBaseUrl: settings.publicBaseUrl });
  return app;
}
