/**
 * Issue 12, point 7: sign-out must end the session. A session is a standard
 * JWT (HS256) that the platform can issue with any JWT library; it carries the
 * account's session version (`sv`), and signing out moves the version on, so
 * every token issued before (a copied cookie, another device) stops working.
 */
import type { Client } from '@temporalio/client';
import { SignJWT, jwtVerify, type JWTPayload } from 'jose';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { accountsOf } from '../../lib/store/accounts';
import { DEMO_PASSWORD, seedDemoAccounts } from '../../lib/store/demo-accounts';
import { connectClient } from '../../lib/temporal';
import { Browser, startApi, TEST_SIGNING_KEY, type RunningApi } from '../helpers/api';
import { testServers, uniqueName } from '../helpers/test-env';

const AUDIENCE = 'marketplace-billing';
const PREVIOUS_KEY = 'the-previous-session-signing-key-0123456789';
const secret = (key: string) => new TextEncoder().encode(key);

/** A token as the platform would issue it, with a JWT library of its own. */
function platformToken(
  claims: JWTPayload,
  key = TEST_SIGNING_KEY,
  options: { expiresIn?: string | number; alg?: string } = {},
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(secret(key));
}

const decodePart = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('issue 12 point 7: sessions are standard tokens, and sign-out ends them', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('sessions'));
    await seedDemoAccounts(mongo.db);
    temporal = await connectClient(testServers.temporal());
    api = await startApi({
      db: mongo.db,
      temporal,
      settings: { session: { signingKeys: [TEST_SIGNING_KEY, PREVIOUS_KEY], ttlSeconds: 3600 } },
    });
  });
  afterAll(async () => {
    await api?.close();
    await temporal?.connection.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  /** Signs in through the form; returns the browser and the session token it was given. */
  async function signIn(email: string): Promise<{ browser: Browser; token: string }> {
    const browser = new Browser(api.url);
    const response = await browser.postForm('/signin', { email, password: DEMO_PASSWORD, next: '/' });
    expect(response.status).toBe(303);
    const session = [...browser.cookies].find(([name]) => name.endsWith('mp_session'));
    expect(session).toBeDefined();
    return { browser, token: session![1] };
  }

  const billingWith = async (token: string) => {
    const response = await fetch(`${api.url}/api/billing`, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('issues a JWT signed with HS256 that carries sub, iat, exp, sv and aud', async () => {
    const { token } = await signIn('alice@example.com');
    const [header, payload, signature] = token.split('.');
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodePart(header!)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodePart(payload!);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'iat', 'sub', 'sv']);
    expect(claims).toMatchObject({ sub: 'acct-alice', aud: AUDIENCE, sv: expect.any(Number) });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    // Any JWT library verifies it with the shared key.
    const verified = await jwtVerify(token, secret(TEST_SIGNING_KEY), { algorithms: ['HS256'], audience: AUDIENCE });
    expect(verified.payload.sub).toBe('acct-alice');
  });

  it('accepts a token the platform issued, as a Bearer token and as the session cookie', async () => {
    const token = await platformToken({ sub: 'acct-bob', sv: 0, aud: AUDIENCE });
    expect(await billingWith(token)).toMatchObject({ status: 200, body: { accountId: 'acct-bob' } });
    const browser = new Browser(api.url);
    const cookieName = [...(await signIn('carol@example.com')).browser.cookies.keys()].find((name) =>
      name.endsWith('mp_session'),
    )!;
    browser.cookies.set(cookieName, token);
    const billing = await browser.get('/api/billing');
    expect([billing.status, billing.json().accountId]).toEqual([200, 'acct-bob']);
  });

  it('ends the session at sign-out: the old token no longer reads /api/billing, by cookie or as a Bearer token', async () => {
    const { browser, token } = await signIn('alice@example.com');
    expect((await browser.get('/api/billing')).status).toBe(200);
    // The attacker's copy of the cookie, taken before the buyer signs out.
    const copy = new Browser(api.url);
    for (const [name, value] of browser.cookies) copy.cookies.set(name, value);

    const signOut = await browser.request('POST', '/signout');
    expect(signOut.status).toBe(303);
    expect([...browser.cookies.keys()].filter((name) => name.endsWith('mp_session'))).toEqual([]);

    const byCookie = await copy.get('/api/billing');
    expect([byCookie.status, byCookie.json().error]).toEqual([401, 'Unauthorized']);
    expect((await billingWith(token)).status).toBe(401);
    const page = await copy.get('/billing');
    expect([page.status, page.headers.get('location')]).toEqual([303, '/signin?next=%2Fbilling']);

    // Signing out again with the dead token changes nothing, and signing in again works.
    const before = await accountsOf(mongo.db).findOne({ _id: 'acct-alice' });
    expect((await copy.request('POST', '/signout')).status).toBe(303);
    expect(await accountsOf(mongo.db).findOne({ _id: 'acct-alice' })).toEqual(before);
    const again = await signIn('alice@example.com');
    expect(await billingWith(again.token)).toMatchObject({ status: 200, body: { accountId: 'acct-alice' } });
  });

  it('ends every session of the account at sign-out, on other devices too', async () => {
    const laptop = await signIn('bob@example.com');
    const phone = await signIn('bob@example.com');
    const platformIssued = await platformToken({
      sub: 'acct-bob',
      sv: (await accountsOf(mongo.db).findOne({ _id: 'acct-bob' }))?.sessionVersion ?? 0,
      aud: AUDIENCE,
    });
    expect((await billingWith(phone.token)).status).toBe(200);
    expect((await billingWith(platformIssued)).status).toBe(200);
    expect((await laptop.browser.request('POST', '/signout')).status).toBe(303);
    expect((await billingWith(phone.token)).status).toBe(401);
    expect((await billingWith(platformIssued)).status).toBe(401);
    // Other accounts keep their sessions.
    const carol = await signIn('carol@example.com');
    expect((await billingWith(carol.token)).status).toBe(200);
  });

  it('keeps the previous key valid for rotation, and refuses every other token', async () => {
    const sv = (await accountsOf(mongo.db).findOne({ _id: 'acct-dave' }))?.sessionVersion ?? 0;
    const claims = { sub: 'acct-dave', sv, aud: AUDIENCE };
    expect(await billingWith(await platformToken(claims, PREVIOUS_KEY))).toMatchObject({
      status: 200,
      body: { accountId: 'acct-dave' },
    });

    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ ...claims, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }),
    ).toString('base64url')}.`;
    const refused: Array<[string, string]> = [
      ['an unknown key', await platformToken(claims, 'some-other-key-that-nobody-configured-0123')],
      ['HS512', await platformToken(claims, TEST_SIGNING_KEY, { alg: 'HS512' })],
      ['alg none', none],
      ['expired', await platformToken(claims, TEST_SIGNING_KEY, { expiresIn: Math.floor(Date.now() / 1000) - 5 })],
      ['another audience', await platformToken({ ...claims, aud: 'another-service' })],
      ['no audience', await platformToken({ sub: 'acct-dave', sv })],
      ['no session version', await platformToken({ sub: 'acct-dave', aud: AUDIENCE })],
      ['an old session version', await platformToken({ ...claims, sv: sv - 1 })],
      ['a future session version', await platformToken({ ...claims, sv: sv + 1 })],
      ['an unknown account', await platformToken({ ...claims, sub: 'acct-nobody' })],
      ['no subject', await platformToken({ sv, aud: AUDIENCE })],
      [
        'the retired v1 format',
        `v1.${Buffer.from(JSON.stringify({ sub: 'acct-dave', iat: 1, exp: 4102444800 })).toString('base64url')}.x`,
      ],
      ['garbage', 'not.a.token'],
    ];
    for (const [name, token] of refused) {
      const answer = await billingWith(token);
      expect([name, answer.status, answer.body.error]).toEqual([name, 401, 'Unauthorized']);
    }
  });
});
