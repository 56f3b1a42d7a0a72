/**
 * Security headers on every answer (pages, JSON, errors), with @fastify/helmet.
 *
 * - CSP: scripts only from files of this origin (the index page's script is
 *   served at a fixed path, see api/routes/assets.ts), no inline script and no
 *   handler attributes, no plugins, no framing by anyone, and forms that post
 *   only to us (and to the platform's sign-in, where sign-out sends the
 *   browser: browsers apply form-action to a form's redirects too). Styles may
 *   be inline: every value in our pages is escaped, CSS cannot run script, and
 *   img-src/font-src/connect-src 'self' leave injected CSS no host to send a
 *   page's contents to.
 * - Referrer-Policy same-origin: link codes travel in query strings (`/?link=`,
 *   `/signin?next=`), so no other site may receive our URLs. `no-referrer`
 *   would also keep them, but browsers then send `Origin: null` on our own
 *   form posts, and the sign-in and sign-out forms would fail the Origin check.
 * - Cache-Control: no-store on every answer that does not set its own.
 * - HSTS (one year, subdomains) and upgrade-insecure-requests only when
 *   PUBLIC_BASE_URL is https: it is the URL browsers use, whatever the TLS
 *   proxy in front of us forwards, and on a plain-http (local) URL both would
 *   only break the site.
 */
import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import fastifyHelmet from '@fastify/helmet';
import helmet, { type HelmetOptions } from 'helmet';

export interface SecurityHeaderSettings {
  publicBaseUrl: string;
  /** The platform's sign-in in production (absolute), or our local `/signin`. */
  signInUrl: string;
}

function helmetOptions(settings: SecurityHeaderSettings): HelmetOptions {
  const ours = new URL(settings.publicBaseUrl).origin;
  const signIn = new URL(settings.signInUrl, settings.publicBaseUrl).origin;
  const https = ours.startsWith('https:');
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: signIn === ours ? ["'self'"] : ["'self'", signIn],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: https ? { maxAge: 365 * 24 * 3600, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'same-origin' },
    xFrameOptions: { action: 'deny' },
  };
}

/** Registered before every other hook, so that answers sent from a hook (a 405, a 401) carry the headers too. */
export async function registerSecurityHeaders(app: FastifyInstance, settings: SecurityHeaderSettings): Promise<void> {
  await app.register(fastifyHelmet, helmetOptions(settings));
  // Answers are about one signed-in account, or carry a link code or a cookie: no shared cache (a CDN, a proxy)
  // may keep them. Only a route that says otherwise (the static script) is cacheable.
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
}

/**
 * Fastify answers a URL it cannot decode before any hook runs; this answer
 * (Fastify's `frameworkErrors` option) gets the same headers and our usual
 * `{error, message}` body.
 */
export function frameworkErrorsWithHeaders(
  settings: SecurityHeaderSettings,
): NonNullable<FastifyServerOptions['frameworkErrors']> {
  const setHeaders = helmet(helmetOptions(settings));
  return (error, request, generic) => {
    const reply = generic as FastifyReply;
    setHeaders(request.raw, reply.raw, () => undefined);
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    return reply
      .code(status)
      .send(
        status < 500
          ? { error: 'BadRequest', message: error.message }
          : { error: 'InternalError', message: 'Something went wrong on our side; please retry.' },
      );
  };
}
