/**
 * Who is signed in. A session is a JWT (lib/session-token.ts) in an HttpOnly
 * cookie, or a Bearer token for API clients. It is valid while its `sv` equals
 * the account's session version, which sign-out moves on. The browser-binding
 * cookie ties each link code to the browser that came from AWS.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { Db } from 'mongodb';
import { accountsOf, type AccountDoc } from '../../lib/store/accounts';
import { signSession, verifySession } from '../../lib/session-token';
import { documentGuard } from './documented-guards';

/**
 * The names the code reads our cookies by (`request.cookies[SESSION_COOKIE]`).
 * Over https they travel as `__Host-` cookies (Secure, Path=/, no Domain),
 * which no sibling subdomain can set, and only those count: a tossed
 * `mp_session` is ignored. Plain http (the local stack) keeps the plain names,
 * because Safari drops Secure cookies on http://localhost.
 */
export const SESSION_COOKIE = 'mp_session';
export const BINDING_COOKIE = 'mp_link_binding';

export interface SessionSettings {
  signingKeys: string[];
  ttlSeconds: number;
  /** Secure `__Host-` cookies when the public URL is https. */
  secureCookies: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in platform account, if the request carries a valid session. */
    accountId?: string;
    /** The session version the valid session was issued with. */
    sessionVersion?: number;
  }
}

/** The name a cookie travels under. */
export function cookieName(name: string, secure: boolean): string {
  return secure ? `__Host-${name}` : name;
}

/** Our cookies as the browser sent them, under the names the code reads; nothing else. */
function ourCookies(sent: Record<string, string | undefined>, secure: boolean): Record<string, string | undefined> {
  return Object.fromEntries([SESSION_COOKIE, BINDING_COOKIE].map((name) => [name, sent[cookieName(name, secure)]]));
}

/** Session cookies: Lax, so the redirect after AWS's cross-site POST and every later page carry them. */
function sessionCookieOptions(
  settings: Pick<SessionSettings, 'secureCookies'>,
  maxAgeSeconds?: number,
): CookieSerializeOptions {
  return {
    httpOnly: true,
    sameSite: 'lax',
    secure: settings.secureCookies,
    path: '/',
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}

/**
 * The browser-binding cookie must also ride AWS's cross-site POST, so that a
 * buyer posting the same token twice is recognised: SameSite=None, which
 * browsers accept only with Secure (https). It grants nothing on its own.
 */
export function setBindingCookie(
  reply: FastifyReply,
  binding: string,
  settings: Pick<SessionSettings, 'secureCookies'>,
  maxAgeSeconds: number,
): void {
  const options = {
    ...sessionCookieOptions(settings, maxAgeSeconds),
    sameSite: settings.secureCookies ? ('none' as const) : ('lax' as const),
  };
  reply.setCookie(cookieName(BINDING_COOKIE, settings.secureCookies), binding, options);
}

/**
 * Cross-site request forgery guard for cookie-authenticated POSTs. Browsers
 * send Origin on every POST: it must be exactly PUBLIC_BASE_URL's origin
 * (never one made from the Host header, which the client chooses, nor the
 * http twin of an https site). Without Origin, Sec-Fetch-Site (sent by every
 * current browser) must say same-origin; same-site is not enough, as a
 * sibling subdomain is another origin. With neither, the request is not from
 * a browser we can vouch for, and only one that authenticates with a Bearer
 * token gets through: no cross-site form can send that header, this API
 * grants no CORS preflight that would let a script send it, and browsers never
 * add it on their own (as they do cookies, or Basic credentials).
 */
export function sameOriginOnly(publicBaseUrl: string) {
  const ours = new URL(publicBaseUrl).origin;
  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const { origin } = request.headers;
    const site = request.headers['sec-fetch-site'];
    const sameOrigin =
      origin !== undefined
        ? origin === ours
        : site !== undefined
          ? site === 'same-origin'
          : bearerOf(request) !== undefined;
    if (!sameOrigin) {
      await reply
        .code(403)
        .send({ error: 'CrossSiteRequest', message: 'This request came from another site and was refused.' });
    }
  };
  return documentGuard(guard, { responses: { 403: 'The request came from another site (its Origin is not ours)' } });
}

const bearerOf = (request: FastifyRequest) => /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]?.trim();

/** A request with a Bearer token is authenticated by it alone, never by an ambient cookie. */
function presentedToken(request: FastifyRequest): string | undefined {
  return bearerOf(request) ?? request.cookies[SESSION_COOKIE];
}

export function registerSessions(app: FastifyInstance, settings: SessionSettings, db: Db): void {
  app.decorateRequest('accountId', undefined);
  app.decorateRequest('sessionVersion', undefined);
  app.addHook('onRequest', async (request) => {
    request.cookies = ourCookies(request.cookies, settings.secureCookies);
    const token = presentedToken(request);
    const claims = token ? await verifySession(token, settings.signingKeys) : undefined;
    if (!claims) return;
    const account = await accountsOf(db).findOne({ _id: claims.sub }, { projection: { sessionVersion: 1 } });
    if (account && (account.sessionVersion ?? 0) === claims.sv) {
      request.accountId = claims.sub;
      request.sessionVersion = claims.sv;
    }
  });
}

export async function startSession(
  reply: FastifyReply,
  account: Pick<AccountDoc, '_id' | 'sessionVersion'>,
  settings: SessionSettings,
): Promise<void> {
  const token = await signSession(
    account._id,
    account.sessionVersion ?? 0,
    settings.signingKeys[0]!,
    settings.ttlSeconds,
  );
  reply.setCookie(
    cookieName(SESSION_COOKIE, settings.secureCookies),
    token,
    sessionCookieOptions(settings, settings.ttlSeconds),
  );
}

/**
 * Signing out moves the account's session version on, so this token and every
 * other one issued before (another device, a copied cookie) stops working: a
 * token carries nothing the server could revoke alone, and a per-token deny
 * list would grow with every sign-out. Of concurrent sign-outs, one moves it.
 */
export async function endSession(
  request: FastifyRequest,
  reply: FastifyReply,
  settings: SessionSettings,
  db: Db,
): Promise<void> {
  const { accountId, sessionVersion } = request;
  if (accountId !== undefined && sessionVersion !== undefined) {
    const current =
      sessionVersion === 0
        ? { $or: [{ sessionVersion: 0 }, { sessionVersion: { $exists: false } }] }
        : { sessionVersion };
    await accountsOf(db).updateOne({ _id: accountId, ...current }, { $set: { sessionVersion: sessionVersion + 1 } });
  }
  reply.clearCookie(cookieName(SESSION_COOKIE, settings.secureCookies), sessionCookieOptions(settings));
}

/** preHandler for JSON routes that need a signed-in user. */
export async function requireAccount(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!request.accountId) {
    await reply
      .code(401)
      .send({ error: 'Unauthorized', message: 'Sign in first: this request carries no valid session.' });
  }
}
documentGuard(requireAccount, { responses: { 401: 'The request carries no valid session' }, needsSession: true });

/**
 * Only a path on this site may follow sign-in, so the form cannot bounce the
 * user elsewhere. Browsers drop tabs and newlines and read `\\` as `/` in a
 * Location, so anything with control characters or backslashes is refused.
 * Dot segments, plain or percent-encoded, resolve away (`/.//evil` and
 * `/%2e%2e//evil` become `//evil`, another host), so the check is on the
 * resolved path: it must start with exactly one slash and read back as itself.
 */
export function safeLocalPath(next: string | undefined, fallback = '/'): string {
  const unsafe = [...(next ?? '')].some((c) => c < ' ' || c === '\u007f' || c === '\\');
  if (!next || !next.startsWith('/') || unsafe) return fallback;
  const base = 'http://local.invalid';
  // `//` or `///@` names an empty host: no URL at all, so no path of ours (it used to throw, a 500).
  if (!URL.canParse(next, base)) return fallback;
  const resolved = new URL(next, base);
  const path = `${resolved.pathname}${resolved.search}`;
  if (resolved.origin !== base || !path.startsWith('/') || path.startsWith('//')) return fallback;
  const reread = new URL(path, base);
  return reread.origin === base && `${reread.pathname}${reread.search}` === path ? path : fallback;
}
