/**
 * Session tokens are JWTs (RFC 7519) signed with HS256, so the platform's real
 * sign-in can issue them with any JWT library and the shared key; this service
 * verifies them (and issues them on the local demo sign-in page). Claims:
 * `sub` (the platform account id), `iat`, `exp`, `aud` (always
 * SESSION_AUDIENCE: a token minted for another service is refused) and `sv`,
 * the account's session version at issue time (see api/session.ts: signing out
 * moves it on, which ends every token issued before). A previous key may be
 * given for rotation: tokens it signed stay valid until they expire.
 */
import { errors, jwtVerify, SignJWT } from 'jose';

export const SESSION_AUDIENCE = 'marketplace-billing';

export interface SessionClaims {
  /** The platform account id. */
  sub: string;
  iat: number;
  exp: number;
  /** The account's session version when the token was issued. */
  sv: number;
}

const encoder = new TextEncoder();

export function signSession(
  accountId: string,
  sessionVersion: number,
  key: string,
  ttlSeconds: number,
  now = Date.now(),
): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({ sv: sessionVersion })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(accountId)
    .setAudience(SESSION_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(encoder.encode(key));
}

/** The claims of a well-formed, correctly signed (HS256 only), unexpired token for this service; undefined otherwise. */
export async function verifySession(token: string, keys: readonly string[]): Promise<SessionClaims | undefined> {
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(token, encoder.encode(key), {
        algorithms: ['HS256'],
        audience: SESSION_AUDIENCE,
        requiredClaims: ['sub', 'iat', 'exp', 'sv'],
      });
      const { sub, iat, exp, sv } = payload;
      if (typeof sub !== 'string' || !sub || !Number.isSafeInteger(sv) || (sv as number) < 0) return undefined;
      return { sub, iat: iat!, exp: exp!, sv: sv as number };
    } catch (error) {
      // Only a signature made with another key is worth trying the next key for; anything else is final.
      if (!(error instanceof errors.JWSSignatureVerificationFailed)) return undefined;
    }
  }
  return undefined;
}
