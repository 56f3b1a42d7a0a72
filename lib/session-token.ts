/**
 * Signed session tokens: `v1.<claims>.<HMAC-SHA256>`, base64url. The platform's
 * real sign-in issues them with the same key; this service only verifies them
 * (and issues them on the local demo sign-in page). A previous key may be given
 * for rotation: tokens it signed stay valid until they expire.
 */
import { createHmac } from 'node:crypto';
import { constantTimeEqual } from './secrets';

export interface SessionClaims {
  /** The platform account id. */
  sub: string;
  iat: number;
  exp: number;
}

const VERSION = 'v1';

function signature(payload: string, key: string): string {
  return createHmac('sha256', key).update(`${VERSION}.${payload}`).digest('base64url');
}

export function signSession(accountId: string, key: string, ttlSeconds: number, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  const payload = Buffer.from(JSON.stringify({ sub: accountId, iat, exp: iat + ttlSeconds })).toString('base64url');
  return `${VERSION}.${payload}.${signature(payload, key)}`;
}

/** The claims of a well-formed, correctly signed, unexpired token; undefined otherwise. */
export function verifySession(token: string, keys: readonly string[], now = Date.now()): SessionClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return undefined;
  const [, payload, mac] = parts as [string, string, string];
  if (!keys.some((key) => constantTimeEqual(signature(payload, key), mac))) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<SessionClaims>;
    if (typeof claims.sub !== 'string' || !claims.sub || typeof claims.exp !== 'number' || typeof claims.iat !== 'number') return undefined;
    return claims.exp * 1000 > now ? (claims as SessionClaims) : undefined;
  } catch {
    return undefined;
  }
}
