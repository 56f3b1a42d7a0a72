/**
 * Per-client request limits (@fastify/rate-limit) on the routes a flood could
 * abuse, all in this one table: the registration webhook (each request may
 * cost a ResolveCustomer call), sign-in (scrypt per attempt) and the link API
 * (Temporal per request). Every other route is unlimited here.
 *
 * A client is its IP address as Fastify sees it (`request.ip`): the socket's
 * peer, or, with TRUST_PROXY, the address that the trusted load balancer
 * appended to X-Forwarded-For (entries a client writes itself are never
 * believed). IPv6 clients count per /64, which one host usually owns whole.
 * Counters live in each API process, per route, over a one-minute window.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';

export interface RateLimitSettings {
  registrationPerMinute: number;
  signInPerMinute: number;
  linksPerMinute: number;
  /** Across all clients: the ceiling on ResolveCustomer calls (api/routes/registration.ts). */
  resolveCustomerPerSecond: number;
}

const WINDOW_MS = 60_000;

/** Must be registered before the routes it limits, and before the OpenAPI document reads their answers. */
export async function registerRateLimits(app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  const perMinute: Record<string, number> = {
    'POST /marketplace/register': settings.registrationPerMinute,
    'POST /signin': settings.signInPerMinute,
    'POST /api/links': settings.linksPerMinute,
    'POST /api/links/decline': settings.linksPerMinute,
  };
  // Runs before the plugin's own onRoute hook, which applies `config.rateLimit`.
  app.addHook('onRoute', (route) => {
    const max = [route.method]
      .flat()
      .map((method) => perMinute[`${method} ${route.url}`])
      .find((limit) => limit !== undefined);
    if (max !== undefined) route.config = { ...route.config, rateLimit: { max, timeWindow: WINDOW_MS } };
  });
  await app.register(rateLimit, {
    global: false,
    // A client that keeps going while limited stays limited: each refused request restarts its window.
    continueExceeding: true,
    errorResponseBuilder: (_request, context) =>
      Object.assign(new Error(`Too many requests from your address; retry in ${context.after}.`), {
        statusCode: context.statusCode,
      }),
  });
}
