/**
 * The cluster mode's load balancer: one address (API_PORT) in front of the
 * API's replicas, as an AWS ALB is in production. It spreads requests over the
 * replicas (undici's BalancedPool, through @fastify/reply-from), passes bodies
 * through untouched, and appends the client's address to X-Forwarded-For, so
 * the API (TRUST_PROXY=1) still limits each client by its own address. A
 * request a dead replica refused before reading it goes to another replica:
 * nothing of it was processed, so it is safe to send again whatever its method.
 *
 *   LB_PORT=3000 LB_UPSTREAMS=http://127.0.0.1:3001,http://127.0.0.1:3002 node dist/infra/load-balancer.js
 */
import Fastify from 'fastify';
import replyFrom from '@fastify/reply-from';

/** Errors that mean the replica never had the request: no connection was made. Retried whatever the method. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT']);
/**
 * A connection that broke under the request: a pooled connection to a replica that died since. The replica
 * may have acted on the request, so only requests that mean the same sent twice (GET, HEAD) are retried;
 * the others are answered 502, as an AWS ALB does, and the client decides.
 */
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRIES = 3;
/** Above any body a replica accepts, so that the replica, not the balancer, answers an oversized one. */
const BODY_LIMIT = 1024 * 1024;

export async function startLoadBalancer(options: { host: string; port: number; upstreams: string[] }) {
  if (options.upstreams.length < 2) throw new Error('LB_UPSTREAMS: at least two replicas, comma-separated');
  // Request lines are logged at info: the replicas log each request already.
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } });
  // Bodies pass through unparsed, held whole so that a retry sends the same bytes (each replica has its own limits).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  );
  await app.register(replyFrom, { base: options.upstreams });
  app.all('/*', (request, reply) =>
    reply.from(request.url, {
      // As received, bytes and Content-Type (left to itself, reply-from re-encodes what it takes for JSON).
      ...(Buffer.isBuffer(request.body)
        ? { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }
        : {}),
      retriesCount: RETRIES,
      // Another replica at once (the pool has lowered the failed one's weight); a delay of 0 would mean no retry.
      retryDelay: ({ err, attempt }) => {
        const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
        const safe = NOT_DELIVERED.has(code) || (BROKEN.has(code) && IDEMPOTENT.has(request.method));
        return safe && attempt < RETRIES ? 1 : null;
      },
      onError: (failed, { error }) => {
        const status = (error as { statusCode?: number }).statusCode;
        void failed
          .code(status === 504 ? 504 : 502)
          .send({ error: 'BadGateway', message: 'No API replica answered; retry in a moment.' });
      },
      rewriteRequestHeaders: (original, headers) => {
        const forwarded = original.headers['x-forwarded-for'];
        const client = original.socket.remoteAddress ?? '';
        return {
          ...headers,
          host: original.headers.host ?? headers.host,
          'x-forwarded-for': forwarded ? `${String(forwarded)}, ${client}` : client,
          'x-forwarded-proto': 'http',
        };
      },
    }),
  );
  await app.listen({ host: options.host, port: options.port });
  return app;
}

if (require.main === module) {
  const port = Number(process.env.LB_PORT);
  const upstreams = (process.env.LB_UPSTREAMS ?? '').split(',').filter(Boolean);
  if (!Number.isInteger(port) || port <= 0) throw new Error('LB_PORT: the port to listen on');
  void startLoadBalancer({ host: process.env.LB_HOST ?? '127.0.0.1', port, upstreams }).then((app) => {
    const close = () => void app.close().then(() => process.exit(0));
    process.once('SIGTERM', close);
    process.once('SIGINT', close);
  });
}
