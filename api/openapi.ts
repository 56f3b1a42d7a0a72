import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';

/** Generates the OpenAPI document from the route schemas; must be registered before the routes. */
export async function registerOpenApi(app: FastifyInstance, publicBaseUrl: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'AWS Marketplace billing',
        version: '1',
        description: 'Registration webhook and account-linking API. JSON routes need a session (cookie or Bearer token).',
      },
      servers: [{ url: publicBaseUrl }],
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: 'mp_session' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
