import type { FastifyError, FastifyInstance } from 'fastify';

/** One error handler for our HTTP services: clear messages for 4xx, nothing internal leaks on 5xx. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      return reply
        .code(status)
        .send({ error: 'InternalError', message: 'Something went wrong on our side; please retry.' });
    }
    const name = error.validation
      ? 'ValidationError'
      : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'PayloadTooLarge'
        : status === 429
          ? 'TooManyRequests'
          : 'BadRequest';
    return reply.code(status).send({ error: name, message: error.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `No route ${request.method} ${request.url}` }),
  );
}
