/**
 * Issue 12, point 8 (the Origin check and the cookie names; the certificate
 * host is tested with the poller).
 * - Cookie-authenticated POSTs (/signin, /signout, /api/links) are accepted
 *   only from PUBLIC_BASE_URL's exact origin: not its http twin, not an origin
 *   made from the Host header. Without Origin, Sec-Fetch-Site must say
 *   same-origin; with neither, only a request that authenticates by header
 *   (which no cross-site form can send) gets through.
 * - Over https the cookies are `__Host-` cookies (Secure, Path=/, no Domain),
 *   so a sibling subdomain cannot plant one; the unprefixed names are ignored.
 *   A real Chromium behind a TLS-terminating proxy keeps and sends them.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { selfSignedCertificate } from '../../sandbox/sns-signing';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { Client } from '@temporalio/client';
import { chromium } from 'playwright-core';
import { createMarketplaceActivities } from '../../activities/marketplace';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { accountsOf } from '../../lib/store/accounts';
import { DEMO_PASSWORD, seedDemoAccounts } from '../../lib/store/demo-accounts';
import { connectClient } from '../../lib/temporal';
import { Browser, sessionFor, startApi, type RunningApi } from '../helpers/api';
import { startSandbox, type RunningSandbox } from '../helpers/sandbox';
import { testServers, uniqueName } from '../helpers/test-env';

const PUBLIC = 'https://billing.example';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The `error` of a JSON error answer. */
const errorOf = (body: string) => (JSON.parse(body) as { error?: string }).error;

/** A POST with headers a browser controls and fetch() does not let us set (Host), as a load balancer forwards it. */
function rawPost(url: string, path: string, headers: Record<string, string>, body: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      new URL(path, url),
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('issue 12 point 8: strict Origin check and __Host- cookies', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let sandbox: RunningSandbox;
  /** Served over plain http here, as behind a TLS-terminating load balancer; its public URL is https. */
  let api: RunningApi;
  let host: string;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('origin'));
    await seedDemoAccounts(mongo.db);
    temporal = await connectClient(testServers.temporal());
    sandbox = await startSandbox();
    const { resolveCustomer } = createMarketplaceActivities({ metering: sandbox.metering });
    api = await startApi({ db: mongo.db, temporal, resolveCustomer, settings: { publicBaseUrl: PUBLIC } });
    host = new URL(api.url).host;
  });
  afterAll(async () => {
    await api?.close();
    await sandbox?.close();
    await temporal?.connection.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  const sessionVersion = async (accountId: string) =>
    (await accountsOf(mongo.db).findOne({ _id: accountId }))?.sessionVersion ?? 0;
  const signInForm = (email = 'bob@example.com') =>
    new URLSearchParams({ email, password: DEMO_PASSWORD, next: '/' }).toString();
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const json = { 'content-type': 'application/json' };
  const linkBody = JSON.stringify({ linkCode: 'A'.repeat(43) });

  /** Each cookie-authenticated POST, sent with the given browser headers on top of a valid session cookie. */
  async function postAll(browserHeaders: Record<string, string>) {
    const cookie = `__Host-mp_session=${sessionFor('acct-alice', await sessionVersion('acct-alice'))}`;
    const headers = { ...browserHeaders, cookie };
    // Sign-out last: once accepted, it ends the session the others carry.
    const link = await rawPost(api.url, '/api/links', { ...headers, ...json }, linkBody);
    const signIn = await rawPost(api.url, '/signin', { ...headers, ...form }, signInForm());
    const signOut = await rawPost(api.url, '/signout', { ...headers, ...form }, '');
    return { link, signIn, signOut };
  }

  const refusedOrigins = [
    'http://billing.example',
    'https://billing.example:8443',
    'https://sub.billing.example',
    'https://billing.example.evil.example',
    'https://evil.example',
    'null',
  ];

  it.each(refusedOrigins)(
    'refuses Origin %s on every cookie-authenticated POST, and changes nothing',
    async (origin) => {
      const before = await sessionVersion('acct-alice');
      const answers = await postAll({ origin, host: 'billing.example' });
      for (const [route, answer] of Object.entries(answers)) {
        expect([route, answer.status, errorOf(answer.body)]).toEqual([route, 403, 'CrossSiteRequest']);
        expect(answer.headers['set-cookie']).toBeUndefined();
      }
      expect(await sessionVersion('acct-alice')).toBe(before);
    },
  );

  it('never trusts an origin made from the Host header', async () => {
    for (const origin of [`http://${host}`, `https://${host}`]) {
      const answers = await postAll({ origin });
      for (const [route, answer] of Object.entries(answers))
        expect([origin, route, answer.status]).toEqual([origin, route, 403]);
    }
  });

  it('accepts its exact public origin', async () => {
    const answers = await postAll({ origin: PUBLIC, host: 'billing.example' });
    expect(answers.signOut.status).toBe(303);
    expect(answers.signIn.status).toBe(303);
    // Past the Origin check: the (unknown) link code itself is what is refused.
    expect([answers.link.status, errorOf(answers.link.body)]).toEqual([404, 'UnknownLinkCode']);
  });

  it('falls back to Sec-Fetch-Site without Origin: same-origin only', async () => {
    for (const site of ['cross-site', 'same-site', 'none', 'bogus']) {
      const before = await sessionVersion('acct-alice');
      const answers = await postAll({ 'sec-fetch-site': site });
      for (const [route, answer] of Object.entries(answers)) {
        expect([site, route, answer.status, errorOf(answer.body)]).toEqual([site, route, 403, 'CrossSiteRequest']);
      }
      expect(await sessionVersion('acct-alice')).toBe(before);
    }
    const answers = await postAll({ 'sec-fetch-site': 'same-origin' });
    expect([answers.signOut.status, answers.signIn.status, answers.link.status]).toEqual([303, 303, 404]);
  });

  it('refuses a cookie-authenticated POST with neither Origin nor Sec-Fetch-Site, but lets a Bearer client through', async () => {
    const before = await sessionVersion('acct-alice');
    const answers = await postAll({});
    for (const [route, answer] of Object.entries(answers)) expect([route, answer.status]).toEqual([route, 403]);
    expect(await sessionVersion('acct-alice')).toBe(before);

    // A header no cross-site form or fetch can send without a CORS preflight, which this API never grants.
    const bearer = await rawPost(
      api.url,
      '/api/links',
      { ...json, authorization: `Bearer ${sessionFor('acct-alice', await sessionVersion('acct-alice'))}` },
      linkBody,
    );
    expect([bearer.status, errorOf(bearer.body)]).toEqual([404, 'UnknownLinkCode']);
    // The same from another site is refused all the same.
    const crossSite = await rawPost(
      api.url,
      '/api/links',
      {
        ...json,
        origin: 'https://evil.example',
        authorization: `Bearer ${sessionFor('acct-alice', await sessionVersion('acct-alice'))}`,
      },
      linkBody,
    );
    expect(crossSite.status).toBe(403);
  });

  it('keeps the registration webhook open to the cross-site POST from AWS, and binds it with a __Host- cookie', async () => {
    const created = await sandbox.control<{ token: string }>('POST', '/control/customers', {});
    const registered = await rawPost(
      api.url,
      '/marketplace/register',
      { ...form, origin: 'https://aws.amazon.com', 'sec-fetch-site': 'cross-site' },
      new URLSearchParams({ 'x-amzn-marketplace-token': created.body.token }).toString(),
    );
    expect(registered.status).toBe(303);
    const cookies = registered.headers['set-cookie'] as string[];
    expect(cookies).toHaveLength(1);
    const binding = cookies[0]!;
    expect(binding).toMatch(/^__Host-mp_link_binding=[A-Za-z0-9_-]{43};/);
    expect(binding).toMatch(/; Secure/);
    expect(binding).toMatch(/; SameSite=None/);
    expect(binding).toMatch(/; HttpOnly/);
    expect(binding).toMatch(/; Path=\//);
    expect(binding).not.toMatch(/domain=/i);
  });

  it('sets the session as a __Host- cookie over https, and ignores a tossed cookie without the prefix', async () => {
    const browser = new Browser(api.url, { origin: PUBLIC });
    const signedIn = await browser.postForm('/signin', { email: 'carol@example.com', password: DEMO_PASSWORD });
    expect(signedIn.status).toBe(303);
    const [session] = signedIn.headers.getSetCookie();
    expect(session).toMatch(/^__Host-mp_session=[\w-]+\.[\w-]+\.[\w-]+;/);
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).toMatch(/; Path=\//);
    expect(session).not.toMatch(/domain=/i);
    const victim = session!.split(';')[0]!.split('=')[1]!;

    // A sibling subdomain can set `mp_session` for the parent domain; it must not sign anyone in, nor win over ours.
    const attacker = sessionFor('acct-dave');
    const billing = (cookie: string) => fetch(`${api.url}/api/billing`, { headers: { cookie } });
    expect((await billing(`mp_session=${attacker}`)).status).toBe(401);
    const both = await billing(`mp_session=${attacker}; __Host-mp_session=${victim}`);
    expect([both.status, ((await both.json()) as { accountId: string }).accountId]).toEqual([200, 'acct-carol']);
  });

  it('keeps plain names without Secure on a plain-http public URL (the local stack), where Safari drops Secure cookies', async () => {
    const local = await startApi({ db: mongo.db, temporal });
    try {
      const signedIn = await new Browser(local.url).postForm('/signin', {
        email: 'carol@example.com',
        password: DEMO_PASSWORD,
      });
      const [session] = signedIn.headers.getSetCookie();
      expect(session).toMatch(/^mp_session=/);
      expect(session).not.toMatch(/; Secure/);
    } finally {
      await local.close();
    }
  });

  describe('in Chromium, over https', () => {
    let tls: TlsServer;
    let secure: RunningApi;
    let publicUrl: string;

    beforeAll(async () => {
      if (!existsSync(CHROMIUM))
        throw new Error(`Chromium not found at ${CHROMIUM}: infra/install.sh installs Debian's chromium package`);
      const dir = mkdtempSync(join(tmpdir(), 'host-cookies-'));
      selfSignedCertificate({
        keyFile: join(dir, 'key.pem'),
        certFile: join(dir, 'cert.pem'),
        subject: '/CN=127.0.0.1',
        days: 1,
        extensions: ['subjectAltName=IP:127.0.0.1'],
      });
      // The load balancer: terminates TLS and forwards the bytes to the API.
      let target = 0;
      tls = createTlsServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        (socket) => {
          const upstream = connect(target, '127.0.0.1');
          socket.pipe(upstream).pipe(socket);
          socket.on('error', () => upstream.destroy());
          upstream.on('error', () => socket.destroy());
        },
      );
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      publicUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
      secure = await startApi({ db: mongo.db, temporal, settings: { publicBaseUrl: publicUrl } });
      target = Number(new URL(secure.url).port);
    });
    afterAll(async () => {
      await secure?.close();
      await new Promise<void>((resolve) => (tls ? tls.close(() => resolve()) : resolve()));
    });

    it('keeps the __Host- session cookie, sends it back, and loses it at sign-out', async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      });
      try {
        const context = await browser.newContext({ ignoreHTTPSErrors: true });
        const page = await context.newPage();
        await page.goto(`${publicUrl}/billing`);
        await page.fill('#email', 'erin@example.com');
        await page.fill('#password', DEMO_PASSWORD);
        await Promise.all([page.waitForURL(`${publicUrl}/billing`), page.click('#sign-in')]);
        expect(await page.locator('#payment-method').textContent()).toBe('AWS Marketplace Subscription');
        const cookies = await context.cookies(publicUrl);
        expect(cookies.map((c) => [c.name, c.secure, c.httpOnly, c.sameSite, c.path])).toEqual([
          ['__Host-mp_session', true, true, 'Lax', '/'],
        ]);
        // The sign-out form on our own page passes the Origin check, and the cookie is gone.
        await Promise.all([page.waitForURL(`${publicUrl}/signin`), page.click('form[action="/signout"] button')]);
        expect(await context.cookies(publicUrl)).toEqual([]);
        await page.goto(`${publicUrl}/billing`);
        expect(new URL(page.url()).pathname).toBe('/signin');
      } finally {
        await browser.close();
      }
    });
  });
});
