/** Scripts of our pages, served from fixed paths so the Content-Security-Policy allows only scripts of this origin. */
import type { FastifyInstance } from 'fastify';
import { INDEX_SCRIPT_PATH, indexScript } from '../pages/index-script';

export function registerAssets(app: FastifyInstance): void {
  app.get(INDEX_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    // Short-lived caching: a deployment's new script reaches every buyer within minutes.
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(indexScript),
  );
}
