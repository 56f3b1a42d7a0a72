/**
 * Issue 12, point 3: open redirect. `next` may only name a page of this site.
 * Dot segments (plain or percent-encoded) and backslashes once turned
 * `/.//evil.example` into `Location: //evil.example`, which every browser
 * reads as another host. Each variant is sent through HTTP, the three ways
 * `next` reaches a Location: GET /signin while signed in, the sign-in form's
 * hidden field, and POST /signin.
 */
import type { Client } from '@temporalio/client';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { DEMO_PASSWORD, seedDemoAccounts } from '../../lib/store/demo-accounts';
import { connectClient } from '../../lib/temporal';
import { Browser, startApi, type RunningApi } from '../helpers/api';
import { testServers, uniqueName } from '../helpers/test-env';

/** Values of `next` as the attacker writes them into the link (each is then URL-encoded once more into the query). */
const HOSTILE = [
  '/.//evil.example',
  '/..//evil.example',
  '/%2e//evil.example',
  '/%2E//evil.example',
  '/%2e%2e//evil.example',
  '/%2E%2e//evil.example',
  '/.%2e//evil.example',
  '/a/..//evil.example',
  '/a/%2e%2e//evil.example',
  '/a/b/../..//evil.example',
  '/././/evil.example',
  '/.././..//evil.example',
  '/.//evil.example/path?x=1',
  '/./\\evil.example',
  '/.\\/evil.example',
  '/\\/evil.example',
  '/%2e/\\evil.example',
  '/..\\\\evil.example',
  '/.//\\evil.example',
  '/.\t//evil.example',
  '/.\n//evil.example',
  '//evil.example',
  '///evil.example',
  '/\\evil.example',
  'https://evil.example',
  'http:evil.example',
  '\\\\evil.example',
  'evil.example',
  '',
  // Not a URL at all (a scheme-relative reference with no host): once answered 500.
  '//',
  '///@',
];

/** Local pages keep working, their dot segments resolved. */
const LOCAL: Array<[string, string]> = [
  ['/billing', '/billing'],
  ['/billing?x=1', '/billing?x=1'],
  ['/?link=abc', '/?link=abc'],
  ['/a/../billing', '/billing'],
  ['/%2e/billing', '/billing'],
  ['/./billing', '/billing'],
  ['/.%2fevil.example', '/.%2fevil.example'],
  // An encoded tab stays encoded: a segment named `%09` on our own site.
  ['/./%09/evil.example', '/%09/evil.example'],
];

/** A Location a browser would follow away from us: protocol-relative, backslashed, or absolute elsewhere. */
function leavesOrigin(location: string, ours: string): boolean {
  if (/^[/\\]{2}/.test(location) || /^\/\\/.test(location) || /[\t\n\r]/.test(location)) return true;
  return new URL(location, ours).origin !== new URL(ours).origin;
}

describe('issue 12 point 3: open redirect', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;
  /** Signed in once through the form, so the same session cookie rides every GET below. */
  let signedIn: Browser;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('redirect'));
    await seedDemoAccounts(mongo.db);
    temporal = await connectClient(testServers.temporal());
    api = await startApi({ db: mongo.db, temporal });
    signedIn = new Browser(api.url);
    expect((await signedIn.postForm('/signin', { email: 'alice@example.com', password: DEMO_PASSWORD })).status).toBe(
      303,
    );
  });
  afterAll(async () => {
    await api?.close();
    await temporal?.connection.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  it.each(HOSTILE)('GET /signin?next=%j while signed in goes home, never elsewhere', async (next) => {
    const response = await signedIn.get(`/signin?next=${encodeURIComponent(next)}`);
    const location = response.headers.get('location')!;
    expect(leavesOrigin(location, api.url)).toBe(false);
    expect([response.status, location]).toEqual([303, '/']);
  });

  it.each(HOSTILE)('the sign-in form for next=%j carries "/" onward', async (next) => {
    const response = await new Browser(api.url).get(`/signin?next=${encodeURIComponent(next)}`);
    expect(response.status).toBe(200);
    expect(response.text).toContain('<input type="hidden" name="next" value="/">');
  });

  it.each(HOSTILE)('POST /signin with next=%j signs in and goes home, never elsewhere', async (next) => {
    const response = await new Browser(api.url).postForm('/signin', {
      email: 'alice@example.com',
      password: DEMO_PASSWORD,
      next,
    });
    const location = response.headers.get('location')!;
    expect(leavesOrigin(location, api.url)).toBe(false);
    expect([response.status, location]).toEqual([303, '/']);
  });

  it('keeps local pages, with their dot segments resolved, on every path', async () => {
    for (const [next, expected] of LOCAL) {
      const get = await signedIn.get(`/signin?next=${encodeURIComponent(next)}`);
      expect([next, get.status, get.headers.get('location')]).toEqual([next, 303, expected]);
      const post = await new Browser(api.url).postForm('/signin', {
        email: 'alice@example.com',
        password: DEMO_PASSWORD,
        next,
      });
      expect([next, post.status, post.headers.get('location')]).toEqual([next, 303, expected]);
    }
  });

  it('refuses a hostile next on a failed sign-in too: the form it shows again carries "/"', async () => {
    const response = await new Browser(api.url).postForm('/signin', {
      email: 'alice@example.com',
      password: 'wrong',
      next: '/.//evil.example',
    });
    expect(response.status).toBe(401);
    expect(response.text).toContain('<input type="hidden" name="next" value="/">');
  });
});
