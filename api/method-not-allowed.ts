/**
 * Fastify answers 404 to a method a path doesn't have. HTTP (RFC 9110, 15.5.6) wants 405 with an
 * Allow header naming the methods it has, and the OpenAPI contract tests expect it. The routes are
 * indexed as they are added, with Fastify's own router library so a path matches here exactly when
 * it would match there; a request Fastify found no route for is looked up in that index.
 */
import type { FastifyInstance } from 'fastify';
import FindMyWay from 'find-my-way';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route only explains why its method is refused (its own 405 page): the path doesn't have that method. */
    methodNotAllowed?: boolean;
  }
}

export function answerOtherMethodsWith405(app: FastifyInstance): void {
  const { caseSensitive = true, ignoreTrailingSlash = false, ignoreDuplicateSlashes = false } = app.initialConfig;
  const index = FindMyWay({ caseSensitive, ignoreTrailingSlash, ignoreDuplicateSlashes });
  const indexed = new Set<string>();
  const methods = new Set<string>();

  app.addHook('onRoute', (route) => {
    if (route.config?.methodNotAllowed) return;
    for (const method of [route.method].flat()) {
      // The same method and path again differ only by constraints (a version, a host): the path has the method either way.
      if (indexed.has(`${method} ${route.url}`)) continue;
      indexed.add(`${method} ${route.url}`);
      methods.add(method);
      index.on(method as FindMyWay.HTTPMethod, route.url, () => undefined);
    }
  });

  // onRequest runs before the body is read, so a method that needs a body (QUERY) gets 405 too, not a parse error.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    const allowed = [...methods].filter((method) => index.find(method as FindMyWay.HTTPMethod, request.url) !== null);
    if (allowed.length === 0) return;
    const allow = allowed.join(', ');
    return reply
      .code(405)
      .header('allow', allow)
      .send({
        error: 'MethodNotAllowed',
        message: `${request.method} is not allowed here; this path accepts ${allow}.`,
      });
  });
}
