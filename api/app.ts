import Fastify, { type FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { installErrorHandler } from '../lib/error-handler';
import { registerHealthRoutes } from './routes/health';

export interface AppDeps {
  db: Db;
  temporal: Client;
  logLevel?: string;
}

/** Builds the API without listening, so tests drive it with `inject` or a real port. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: deps.logLevel ?? 'info',
      // Registration tokens, session tokens and cookies must never reach the logs.
      redact: ['req.headers.cookie', 'req.headers.authorization', 'req.body'],
    },
    bodyLimit: 64 * 1024,
  });
  installErrorHandler(app);
  registerHealthRoutes(app, {
    mongodb: () => deps.db.command({ ping: 1 }),
    temporal: () => deps.temporal.workflowService.getSystemInfo({}),
  });
  return app;
}
