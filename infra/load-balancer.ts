/**
 * The cluster mode's load balancer: one address (API_PORT) in front of the
 * API's replicas, as an AWS ALB is in production. It sends requests to the
 * replicas in turn (through @fastify/reply-from's undici pools), passes a
 * replica that just refused a connection over for a second, and tries another
 * replica for a request that failed where it is safe to (below). It passes bodies
 * through byte for byte, and appends the client's address to X-Forwarded-For:
 * the replicas trust one hop (TRUST_PROXY=1), so they take the address it
 * appended, whatever a client wrote before it, and still limit each client by
 * its own address. It logs no request line (URLs carry link codes; each
 * replica logs its requests with those redacted), and has the API's timeouts
 * for slow clients, since it holds a body whole before it forwards it.
 *
 *   LB_PORT=3000 LB_UPSTREAMS=http://127.0.0.1:3001,http://127.0.0.1:3002 node dist/infra/load-balancer.js
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import replyFrom from '@fastify/reply-from';
import { loadApiConfig } from '../api/config';
import { timeoutOptions } from '../api/http-timeouts';

/** Errors that mean the replica never had the request: no connection was made. Retried whatever the method. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT']);
/**
 * A connection that broke under the request: a pooled connection to a replica that died since. The replica
 * may have acted on the request, so only requests that mean the same sent twice (GET, HEAD) are retried;
 * the others are answered 502, as an AWS ALB does, and the client decides.
 */
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
/** How long a replica that failed a connection is passed over, while another one answers. */
const DOWN_MS = 1000;
/** Above any body a replica accepts, so that the replica, not the balancer, answers an oversized one. */
const BODY_LIMIT = 1024 * 1024;
/**
 * Not forwarded: hop-by-hop headers (this hop has answered `Expect` already, and undici refuses to send
 * them), and what a client could write to pass for the balancer (the forwarding headers it sets itself).
 */
const DROPPED = [
  'connection',
  'expect',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'forwarded',
  'x-forwarded-host',
];

export async function startLoadBalancer(options: { host: string; port: number; upstreams: string[] }) {
  if (options.upstreams.length < 2) throw new Error('LB_UPSTREAMS: at least two replicas, comma-separated');
  const { timeouts } = loadApiConfig({}).httpServer;
  const app = Fastify({
    logger: { level: process.env.LOG_LEVEL ?? 'warn' },
    logController: new Fastify.LogController({ disableRequestLogging: true }),
    ...timeoutOptions(timeouts),
  });
  // Bodies pass through unparsed, held whole so that a retry sends the same bytes (each replica has its own limits).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  );
  // No `base`: each attempt names its replica, so that a retry goes to another one, never the one that failed.
  await app.register(replyFrom, { disableRequestLogging: true });
  const downUntil = new Map<string, number>();
  let turn = 0;
  /** The next replica in turn that this request has not tried, skipping those that just failed while others remain. */
  const pick = (tried: Set<string>) => {
    const untried = options.upstreams.filter((upstream) => !tried.has(upstream));
    const up = untried.filter((upstream) => (downUntil.get(upstream) ?? 0) <= Date.now());
    const choices = up.length > 0 ? up : untried;
    return choices[turn++ % choices.length];
  };
  const forward = (request: FastifyRequest, reply: FastifyReply, tried: Set<string>): void => {
    const upstream = pick(tried)!;
    tried.add(upstream);
    void reply.from(`${upstream}${request.url}`, {
      // As received, bytes and Content-Type (left to itself, reply-from re-encodes what it takes for JSON).
      ...(Buffer.isBuffer(request.body)
        ? { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }
        : {}),
      onError: (failed, { error }) => {
        // reply-from wraps what undici threw: the network's own code is on the cause.
        const { cause } = error as { cause?: NodeJS.ErrnoException };
        const code = cause?.code ?? (error as NodeJS.ErrnoException).code ?? '';
        if (NOT_DELIVERED.has(code) || BROKEN.has(code)) downUntil.set(upstream, Date.now() + DOWN_MS);
        const retry = NOT_DELIVERED.has(code) || (BROKEN.has(code) && IDEMPOTENT.has(request.method));
        if (retry && tried.size < options.upstreams.length) return forward(request, failed as FastifyReply, tried);
        if ((error as { statusCode?: number }).statusCode === 504 || code === 'UND_ERR_HEADERS_TIMEOUT')
          return void failed.code(504).send({ error: 'GatewayTimeout', message: 'No replica answered in time.' });
        if (NOT_DELIVERED.has(code) || BROKEN.has(code))
          return void failed
            .code(502)
            .send({ error: 'BadGateway', message: 'No API replica answered; retry in a moment.' });
        // Not the replicas' absence: a request this balancer cannot forward. Logged, and not worth a retry.
        failed.log.error({ err: error }, 'request not forwarded');
        void failed
          .code(500)
          .send({ error: 'InternalServerError', message: 'The load balancer could not forward this request.' });
      },
      rewriteRequestHeaders: (original, headers) => {
        const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => !DROPPED.includes(name)));
        const forwarded = original.headers['x-forwarded-for'];
        const client = original.socket.remoteAddress ?? '';
        return {
          ...kept,
          host: original.headers.host ?? headers.host,
          'x-forwarded-for': forwarded ? `${String(forwarded)}, ${client}` : client,
          'x-forwarded-proto': 'http',
        };
      },
    });
  };
  app.all('/*', (request, reply) => forward(request, reply, new Set()));
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
