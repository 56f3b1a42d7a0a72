/**
 * How long the server waits for a client. Fastify turns Node's request
 * timeout off and sets no socket timeout, so a client that trickles its
 * headers or body, or sends nothing, would hold a connection for ever.
 */
import type { FastifyServerOptions } from 'fastify';

export interface HttpTimeouts {
  /** From the connection's first byte to the end of the request headers. */
  headersMs: number;
  /** From the first byte to the end of the request body; answered 408. */
  requestMs: number;
  /** A socket with no traffic either way; longer than any handler waits (the link request: 10 s). */
  connectionMs: number;
  /** An idle connection between requests; longer than a load balancer's idle timeout (AWS ALB: 60 s), so the balancer closes first. */
  keepAliveMs: number;
}

export function timeoutOptions(timeouts: HttpTimeouts): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout'
> & {
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    requestTimeout: timeouts.requestMs,
    connectionTimeout: timeouts.connectionMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    http: {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // Node enforces the two above only when it sweeps its connections (every 30 s by default).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, timeouts.headersMs / 4)),
    },
  };
}
