/**
 * Issue 12, point 12: security headers. Every answer of the API (pages, JSON,
 * errors, the page script) carries a Content-Security-Policy without inline
 * script, frame-ancestors 'none', form-action limited to us, a Referrer-Policy
 * that keeps link codes (which travel in query strings) on this site, and HSTS
 * only when the public URL is https. The browser test checks that Chromium
 * runs the whole journey under this policy without a single violation.
 */
import type { Client } from '@temporalio/client';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { connectClient } from '../../lib/temporal';
import { seedDemoAccounts } from '../../lib/store/demo-accounts';
import { indexScript } from '../../api/pages/index-script';
import { cookieName, SESSION_COOKIE } from '../../api/common/session';
import { sessionFor, startApi, type RunningApi } from '../helpers/api';
import { testServers, uniqueName } from '../helpers/test-env';

type Directives = Record<string, string[]>;

function directivesOf(response: Response): Directives {
  const header = response.headers.get('content-security-policy');
  expect(header).toBeTruthy();
  return Object.fromEntries(
    header!
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...values]) => [name!, values]),
  );
}

function expectSecurityHeaders(response: Response, options: { https: boolean; formAction?: string[] }): void {
  const csp = directivesOf(response);
  expect(csp).toMatchObject({
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'object-src': ["'none'"],
    'base-uri': ["'none'"],
    'frame-ancestors': ["'none'"],
    'form-action': options.formAction ?? ["'self'"],
  });
  expect('upgrade-insecure-requests' in csp).toBe(options.https);
  expect(response.headers.get('x-frame-options')).toBe('DENY');
  expect(response.headers.get('referrer-policy')).toBe('same-origin');
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('strict-transport-security')).toBe(
    options.https ? 'max-age=31536000; includeSubDomains' : null,
  );
}

/** Script only from files we serve: no inline <script> body and no on…= handler attributes. */
function expectNoInlineScript(html: string): void {
  expect(html.match(/<script(?![^>]*\ssrc=)[^>]*>/gi) ?? []).toEqual([]);
  expect(html.match(/<[^>]+\son[a-z]+\s*=/gi) ?? []).toEqual([]);
}

describe('issue 12 point 12: security headers', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;
  // Under both names: over https the session cookie is `__Host-` prefixed (api/session.ts).
  const session = {
    cookie: `${SESSION_COOKIE}=${sessionFor('acct-alice')}; ${cookieName(SESSION_COOKIE, true)}=${sessionFor('acct-alice')}`,
  };
  const get = (path: string, headers: Record<string, string> = {}, base = api.url) =>
    fetch(`${base}${path}`, { headers, redirect: 'manual' });

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('headers'));
    await seedDemoAccounts(mongo.db);
    temporal = await connectClient(testServers.temporal());
    api = await startApi({ db: mongo.db, temporal });
  });
  afterAll(async () => {
    await api?.close();
    await temporal?.connection.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  it('sends the headers on every page, and the pages carry no inline script', async () => {
    const pages = [
      ['/', session],
      ['/billing', session],
      ['/signin', {}],
      ['/marketplace/register', {}],
    ] as const;
    for (const [path, headers] of pages) {
      const response = await get(path, headers);
      expect([path, response.headers.get('content-type')]).toEqual([path, expect.stringMatching(/^text\/html/)]);
      expectSecurityHeaders(response, { https: false });
      expectNoInlineScript(await response.text());
    }
    const index = await (await get('/', session)).text();
    expect(index).toContain('<script src="/assets/index.js" defer></script>');
  });

  it('serves the index page script as a file of its own, with the headers', async () => {
    const script = await get('/assets/index.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expectSecurityHeaders(script, { https: false });
    expect(await script.text()).toBe(indexScript);
  });

  it('sends the headers on JSON answers and redirects', async () => {
    for (const [path, status] of [
      ['/api/billing', 200],
      ['/api/links/current', 404],
      ['/openapi.json', 200],
      ['/health', 200],
    ] as const) {
      const response = await get(path, session);
      expect([path, response.status, response.headers.get('content-type')]).toEqual([
        path,
        status,
        expect.stringMatching(/^application\/json/),
      ]);
      expectSecurityHeaders(response, { https: false });
    }
    const redirect = await get('/');
    expect(redirect.status).toBe(303);
    expectSecurityHeaders(redirect, { https: false });
  });

  it('keeps every private answer out of shared caches; only the static script may be cached', async () => {
    for (const [path, headers] of [
      ['/', session],
      ['/billing', session],
      ['/api/billing', session],
      ['/api/links/current', session],
      ['/', {}],
    ] as const) {
      expect([path, (await get(path, headers)).headers.get('cache-control')]).toEqual([path, 'no-store']);
    }
    expect((await get('/assets/index.js')).headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('sends the headers on error answers: 400 (also for an unreadable URL), 401, 404, 405, 413, 415 and 500', async () => {
    const post = (path: string, body: string, contentType: string, headers: Record<string, string> = {}) =>
      fetch(`${api.url}${path}`, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } });
    const answers: Array<[string, Promise<Response>, number]> = [
      ['validation', post('/api/links', JSON.stringify({ linkCode: 'bad' }), 'application/json', session), 400],
      ['unreadable JSON', post('/api/links', '{', 'application/json', session), 400],
      ['no session', get('/api/billing'), 401],
      ['no route', get('/no/such/route'), 404],
      ['malformed URL', get('/api/links/%E0%A4%A'), 400],
      ['GET on the webhook', get('/marketplace/register'), 405],
      ['a method the path lacks', fetch(`${api.url}/api/links`, { method: 'PUT' }), 405],
      [
        'too large',
        post('/api/links', JSON.stringify({ linkCode: 'x'.repeat(70_000) }), 'application/json', session),
        413,
      ],
      ['unsupported type', post('/api/links', 'x', 'text/csv', session), 415],
    ];
    for (const [name, pending, status] of answers) {
      const response = await pending;
      expect([name, response.status]).toEqual([name, status]);
      expect([name, response.headers.has('content-security-policy')]).toEqual([name, true]);
      expectSecurityHeaders(response, { https: false });
    }

    // A store that is gone: the 500 carries them too.
    const gone = await connectMongo(testServers.mongoUri(), uniqueName('headers-gone'));
    await gone.close();
    const broken = await startApi({ db: gone.db, temporal });
    try {
      const failed = await get('/api/billing', session, broken.url);
      expect(failed.status).toBe(500);
      expectSecurityHeaders(failed, { https: false });
    } finally {
      await broken.close();
    }
  });

  it('adds HSTS and upgrade-insecure-requests only when the public URL is https, and allows posting to the platform sign-in', async () => {
    const https = await startApi({
      db: mongo.db,
      temporal,
      settings: {
        publicBaseUrl: 'https://billing.example',
        signInUrl: 'https://platform.example/login',
        demoAccounts: false,
      },
    });
    try {
      // A Bearer token: over https the session cookie travels under another (`__Host-`) name.
      const bearer = { authorization: `Bearer ${sessionFor('acct-alice')}` };
      const page = await get('/', bearer, https.url);
      expect(page.status).toBe(200);
      // Sign-out redirects to the platform's sign-in; browsers apply form-action to the redirect too.
      expectSecurityHeaders(page, { https: true, formAction: ["'self'", 'https://platform.example'] });
      expectSecurityHeaders(await get('/api/links/current', bearer, https.url), {
        https: true,
        formAction: ["'self'", 'https://platform.example'],
      });
    } finally {
      await https.close();
    }
  });
});
