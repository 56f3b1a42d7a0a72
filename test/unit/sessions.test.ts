/**
 * Session tokens (lib/session-token.ts) and where sign-in may send the user
 * next (`safeLocalPath`, api/session.ts), without a server.
 * test/security/03 and 07 run the same rules through HTTP.
 */
import { SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { safeLocalPath } from '../../api/common/session';
import { SESSION_AUDIENCE, signSession, verifySession } from '../../lib/session-token';

const KEY = 'the-current-session-signing-key-0123456789';
const PREVIOUS = 'the-previous-session-signing-key-0123456789';
const secret = (key: string) => new TextEncoder().encode(key);

/** A token as another JWT library (the platform's) would make it. */
function token(
  claims: JWTPayload,
  options: { key?: string; alg?: string; audience?: string | null; ttl?: number } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttl ?? 3600));
  if (options.audience !== null) jwt = jwt.setAudience(options.audience ?? SESSION_AUDIENCE);
  return jwt.sign(secret(options.key ?? KEY));
}

describe('session tokens', () => {
  it('verifies what it signs, with the account, the session version and the lifetime', async () => {
    const now = Date.now();
    const claims = await verifySession(await signSession('acct-1', 3, KEY, 600, now), [KEY]);
    expect(claims).toEqual({ sub: 'acct-1', sv: 3, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 600 });
  });

  it('accepts a token the platform issued with its own library', async () => {
    await expect(verifySession(await token({ sub: 'acct-1', sv: 0 }), [KEY])).resolves.toMatchObject({
      sub: 'acct-1',
      sv: 0,
    });
  });

  it('accepts a token of the previous key during a rotation, and no longer once that key is dropped', async () => {
    const old = await signSession('acct-1', 0, PREVIOUS, 600);
    await expect(verifySession(old, [KEY, PREVIOUS])).resolves.toMatchObject({ sub: 'acct-1' });
    await expect(verifySession(old, [KEY])).resolves.toBeUndefined();
  });

  it('refuses an expired token, whichever key signed it', async () => {
    const twoHoursAgo = Date.now() - 2 * 3_600_000;
    await expect(verifySession(await signSession('acct-1', 0, KEY, 3600, twoHoursAgo), [KEY])).resolves.toBeUndefined();
    await expect(
      verifySession(await signSession('acct-1', 0, PREVIOUS, 3600, twoHoursAgo), [KEY, PREVIOUS]),
    ).resolves.toBeUndefined();
  });

  it.each([
    ['another key', () => token({ sub: 'acct-1', sv: 0 }, { key: 'someone-elses-signing-key-0123456789abcdef' })],
    ['HS512 with our key', () => token({ sub: 'acct-1', sv: 0 }, { alg: 'HS512' })],
    [
      'alg none',
      async () =>
        new UnsecuredJWT({ sub: 'acct-1', sv: 0, aud: SESSION_AUDIENCE })
          .setIssuedAt()
          .setExpirationTime('1h')
          .encode(),
    ],
    ['another audience', () => token({ sub: 'acct-1', sv: 0 }, { audience: 'another-service' })],
    ['no audience', () => token({ sub: 'acct-1', sv: 0 }, { audience: null })],
    ['no session version', () => token({ sub: 'acct-1' })],
    ['a negative session version', () => token({ sub: 'acct-1', sv: -1 })],
    ['a fractional session version', () => token({ sub: 'acct-1', sv: 1.5 })],
    ['a session version as a string', () => token({ sub: 'acct-1', sv: '1' })],
    ['no subject', () => token({ sv: 0 })],
    ['an empty subject', () => token({ sub: '', sv: 0 })],
  ])('refuses a token with %s', async (_case, make) => {
    await expect(verifySession(await make(), [KEY, PREVIOUS])).resolves.toBeUndefined();
  });

  it.each(['', 'garbage', 'a.b', 'a.b.c', 'v1.eyJzdWIiOiJhY2N0LTEifQ.bWFj', `${'x'.repeat(10_000)}.y.z`])(
    'refuses the malformed token %j',
    async (text) => {
      await expect(verifySession(text, [KEY])).resolves.toBeUndefined();
    },
  );
});

describe('safeLocalPath', () => {
  it.each([
    ['/billing', '/billing'],
    ['/billing?x=1&y=%2F', '/billing?x=1&y=%2F'],
    ['/a/../billing', '/billing'],
    ['/%2e%2e/billing', '/billing'],
    ['/billing#section', '/billing'],
    ['/', '/'],
  ])('keeps the local path %j as %j', (next, expected) => {
    expect(safeLocalPath(next)).toBe(expected);
  });

  it.each([
    undefined,
    '',
    'billing',
    'https://evil.example',
    '//evil.example',
    '/.//evil.example',
    '/\\evil.example',
    '/%2e//evil.example',
    '/\u0000x',
    '/\u007f',
  ])('falls back for %j', (next) => {
    expect(safeLocalPath(next)).toBe('/');
    expect(safeLocalPath(next, '/billing')).toBe('/billing');
  });

  /**
   * Every combination of up to four pieces an attacker assembles a `next`
   * from: whatever comes back stays on this site, has no character a browser
   * would rewrite, and is returned unchanged when passed again.
   */
  it('never lets any combination of dot segments, encodings, slashes and control characters leave the site', () => {
    const pieces = ['/', '.', '..', '%2e', '%2E', '%2f', '\\', 'evil.example', '?x', '#f', '\t', '\n', '@', ':'];
    const inputs: string[] = [];
    let level = [''];
    for (let length = 1; length <= 4; length++) {
      level = level.flatMap((prefix) => pieces.map((piece) => prefix + piece));
      inputs.push(...level);
    }
    const base = 'https://billing.example.com';
    const violations: Array<[string, string, string[]]> = [];
    for (const next of inputs) {
      const out = safeLocalPath(next);
      const problems = [
        !out.startsWith('/') && 'does not start with /',
        out.startsWith('//') && 'starts with //',
        [...out].some((c) => c < ' ' || c === '\u007f' || c === '\\') && 'has a control character or backslash',
        new URL(out, base).origin !== base && 'resolves to another origin',
        safeLocalPath(out) !== out && 'is not stable',
      ].filter((problem): problem is string => typeof problem === 'string');
      if (problems.length > 0) violations.push([next, out, problems]);
    }
    expect(inputs).toHaveLength(14 + 14 ** 2 + 14 ** 3 + 14 ** 4);
    expect(violations).toEqual([]);
  });
});
