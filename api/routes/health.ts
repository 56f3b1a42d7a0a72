import type { FastifyInstance } from 'fastify';
import { Type } from '../../lib/schema';

export interface HealthChecks {
  [dependency: string]: () => Promise<unknown>;
}

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  checks: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('failed')])),
});

/** Liveness answers while the process runs; readiness checks each dependency. */
export function registerHealthRoutes(app: FastifyInstance, checks: HealthChecks): void {
  app.get('/health', { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get('/ready', { schema: { response: { 200: Health, 503: Health } } }, async (request, reply) => {
    const entries = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (error) {
          request.log.warn({ err: error, dependency: name }, 'readiness check failed');
          return [name, 'failed'] as const;
        }
      }),
    );
    const failed = entries.some(([, state]) => state === 'failed');
    return reply
      .code(failed ? 503 : 200)
      .send({ status: failed ? 'degraded' : 'ok', checks: Object.fromEntries(entries) });
  });
}
