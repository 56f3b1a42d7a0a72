import type { FastifyInstance, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { Type } from '../lib/schema';
import { guardDocsOf, type GuardDoc } from './common/documented-guards';
import { ErrorResponse } from './common/schemas';
import { cookieName, SESSION_COOKIE } from './common/session';

/** Fastify reads a body for these methods only (its own list), so only they can fail on parsing, size or media type. */
const BODY_METHODS = new Set(['DELETE', 'OPTIONS', 'PATCH', 'PUT', 'POST', 'QUERY']);
const INPUT_SCHEMAS = ['body', 'querystring', 'params', 'headers'] as const;
const GUARD_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const;

/** Either way of presenting a session, as lib/session-token.ts issues it. */
export const SESSION_SECURITY: Array<Record<string, string[]>> = [{ session: [] }, { bearer: [] }];

type RouteSchema = NonNullable<RouteOptions['schema']> & {
  hide?: boolean;
  security?: unknown;
  response?: Record<string, unknown>;
};

const errorResponse = (description: string) => Type.Ref(ErrorResponse, { description });

/**
 * The answers a route can give besides its own: Fastify's validation, body parsing and body limit,
 * the rate limiter, and the guards in its hooks. Each is added where the route can really give it,
 * unless the route declares that status (or its range, like `4xx`) itself.
 */
function implicitResponses(route: RouteOptions, schema: RouteSchema, guards: GuardDoc[]): Record<number, unknown> {
  const methods = [route.method].flat();
  const readsBody = methods.some((method) => BODY_METHODS.has(method));
  const answers: Record<number, unknown> = {};
  if (readsBody || INPUT_SCHEMAS.some((part) => schema[part] !== undefined)) {
    answers[400] = errorResponse('The request does not match this operation, or its body cannot be parsed');
  }
  if (readsBody) {
    answers[413] = errorResponse('The body is larger than this operation accepts');
    answers[415] = errorResponse('The body is in a media type this operation does not read');
  }
  // api/rate-limits.ts puts a limit in the route's config; @fastify/rate-limit answers 429 past it.
  if (typeof route.config?.rateLimit === 'object') {
    answers[429] = errorResponse(
      'Too many requests from this client: retry after the number of seconds in Retry-After',
    );
  }
  for (const guard of guards) {
    for (const [status, description] of Object.entries(guard.responses))
      answers[Number(status)] = errorResponse(description);
  }
  return answers;
}

function declares(responses: Record<string, unknown>, status: number): boolean {
  return String(status) in responses || `${String(status)[0]}xx` in responses || `${String(status)[0]}XX` in responses;
}

/** Makes every documented route's schema state the errors and security it really has, before the document reads it. */
function documentImplicitContract(route: RouteOptions): void {
  const schema = (route.schema ?? {}) as RouteSchema;
  if (schema.hide) return;
  const guards = GUARD_HOOKS.flatMap((hook) => guardDocsOf(route[hook]));
  const responses = { ...(schema.response ?? {}) };
  for (const [status, answer] of Object.entries(implicitResponses(route, schema, guards))) {
    if (!declares(responses, Number(status))) responses[status] = answer;
  }
  const needsSession = guards.some((guard) => guard.needsSession);
  route.schema = {
    ...schema,
    response: responses,
    ...(needsSession && !schema.security ? { security: SESSION_SECURITY } : {}),
  };
}

/** Generates the OpenAPI document from the route schemas; must be registered before the routes. */
export async function registerOpenApi(app: FastifyInstance, publicBaseUrl: string): Promise<void> {
  app.addHook('onRoute', documentImplicitContract);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'AWS Marketplace billing',
        version: '1',
        description:
          'Registration webhook and account-linking API. JSON routes need a session (cookie or Bearer token).',
      },
      servers: [{ url: publicBaseUrl }],
      components: {
        securitySchemes: {
          // The name a browser sends it by: `__Host-` over https (api/session.ts).
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: cookieName(SESSION_COOKIE, publicBaseUrl.startsWith('https:')),
          },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
