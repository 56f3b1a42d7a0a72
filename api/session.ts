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

export function cookieOptions(settings: Pick<SessionSettings, 'secureCookies'>, maxAgeSeconds: number): CookieOptions {
  // Lax, not Strict: the buyer arrives from AWS by a cross-site POST and the cookie set there must ride the redirect.
  return { httpOnly: true, sameSite: 'lax' as const, secure: settings.secureCookies, path: '/', maxAge: maxAgeSeconds };
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

/** Only same-site paths may follow sign-in, so the form cannot bounce the user elsewhere. */
export function safeLocalPath(next: string | undefined, fallback = '/'): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return fallback;
  return next;
}
