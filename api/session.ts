/**
 * Who is signed in. A session is a signed token (lib/session-token.ts) in an
 * HttpOnly cookie, or a Bearer token for API clients. The browser-binding
 * cookie ties each link code to the browser that came from AWS.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signSession, verifySession } from '../lib/session-token';
import { setCookie, type CookieOptions } from './cookies';

export const SESSION_COOKIE = 'mp_session';
export const BINDING_COOKIE = 'mp_link_binding';

export interface SessionSettings {
  signingKeys: string[];
  ttlSeconds: number;
  /** Secure cookies when the public URL is https. */
  secureCookies: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in platform account, if the request carries a valid session. */
    accountId?: string;
  }
}

/** Session cookies: Lax, so the redirect after AWS's cross-site POST and every later page carry them. */
export function cookieOptions(settings: Pick<SessionSettings, 'secureCookies'>, maxAgeSeconds: number): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure: settings.secureCookies, path: '/', maxAge: maxAgeSeconds };
}

/**
 * The browser-binding cookie must also ride AWS's cross-site POST, so that a
 * buyer posting the same token twice is recognised: SameSite=None, which
 * browsers accept only with Secure (https). It grants nothing on its own.
 */
export function bindingCookieOptions(settings: Pick<SessionSettings, 'secureCookies'>, maxAgeSeconds: number): CookieOptions {
  return { ...cookieOptions(settings, maxAgeSeconds), sameSite: settings.secureCookies ? 'none' : 'lax' };
}

/**
 * Cross-site request forgery guard for cookie-authenticated POSTs: browsers
 * send Origin on every POST, and it must be ours. Requests without Origin come
 * from non-browser clients, which carry no ambient cookies to abuse.
 */
export function sameOriginOnly(publicBaseUrl: string) {
  const ours = new URL(publicBaseUrl).origin;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = request.headers.origin;
    if (origin && origin !== ours && origin !== `http://${request.headers.host}` && origin !== `https://${request.headers.host}`) {
      await reply.code(403).send({ error: 'CrossSiteRequest', message: 'This request came from another site and was refused.' });
    }
  };
}

function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  return request.cookies[SESSION_COOKIE];
}

export function registerSessions(app: FastifyInstance, settings: SessionSettings): void {
  app.decorateRequest('accountId', undefined);
  app.addHook('onRequest', async (request) => {
    const token = presentedToken(request);
    if (token) request.accountId = verifySession(token, settings.signingKeys)?.sub;
  });
}

export function startSession(reply: FastifyReply, accountId: string, settings: SessionSettings): void {
  const token = signSession(accountId, settings.signingKeys[0]!, settings.ttlSeconds);
  setCookie(reply, SESSION_COOKIE, token, cookieOptions(settings, settings.ttlSeconds));
}

export function endSession(reply: FastifyReply, settings: SessionSettings): void {
  setCookie(reply, SESSION_COOKIE, '', cookieOptions(settings, 0));
}

/** preHandler for JSON routes that need a signed-in user. */
export async function requireAccount(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!request.accountId) {
    await reply.code(401).send({ error: 'Unauthorized', message: 'Sign in first: this request carries no valid session.' });
  }
}

/**
 * Only a path on this site may follow sign-in, so the form cannot bounce the
 * user elsewhere. Browsers drop tabs and newlines and read `\\` as `/` in a
 * Location, so anything with control characters or backslashes is refused, and
 * what is left must resolve to our own origin.
 */
export function safeLocalPath(next: string | undefined, fallback = '/'): string {
  const unsafe = [...(next ?? '')].some((c) => c < ' ' || c === '\u007f' || c === '\\');
  if (!next || !next.startsWith('/') || unsafe) return fallback;
  const base = 'http://local.invalid';
  const url = new URL(next, base);
  return url.origin === base ? `${url.pathname}${url.search}` : fallback;
}
