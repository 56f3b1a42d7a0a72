/**
 * Issue 12, point 4: floods. On the real linking stack (API, Marketplace
 * sandbox, worker, poller), with the API behind one load balancer
 * (TRUST_PROXY=1: the address the balancer appends to X-Forwarded-For is the
 * client):
 * - one attacker flooding well-formed fake tokens gets a handful of
 *   ResolveCustomer calls, then 429s, while real buyers keep registering;
 * - many attackers together never push ResolveCustomer past the global
 *   ceiling, so AWS (the sandbox, with a quota like AWS's) never throttles;
 * - tokens of the wrong shape never reach AWS at all;
 * - sign-in and the link API have per-client limits too.
 */
import { randomBytes } from 'node:crypto';
import { Browser, startApi } from '../helpers/api';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { loadApiConfig } from '../../api/config';
import { DEMO_PASSWORD, seedDemoAccounts } from '../../lib/store/demo-accounts';

const LIMITS = { registrationPerMinute: 5, signInPerMinute: 5, linksPerMinute: 5, resolveCustomerPerSecond: 3 };
/** The sandbox's ResolveCustomer quota: above our ceiling, as AWS's quota must be. */
const AWS_QUOTA_RPS = 4;

let stack: LinkingStack;

beforeAll(async () => {
  stack = await startLinkingStack({ settings: { rateLimits: LIMITS, trustProxy: 1 } });
  await seedDemoAccounts(stack.mongo.db);
  expect((await stack.sandbox.control('PUT', '/control/quota', { ResolveCustomer: AWS_QUOTA_RPS })).status).toBe(200);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** Real-looking fake tokens: base64 of 64 random bytes, the shape the sandbox issues. */
const fakeToken = () => randomBytes(64).toString('base64');

/** A browser behind the load balancer, which appends the client's address to X-Forwarded-For. */
function client(ip: string, spoofed?: () => string) {
  const browser = new Browser(stack.api.url);
  const forwarded = () => ({ 'x-forwarded-for': spoofed ? `${spoofed()}, ${ip}` : ip });
  return {
    browser,
    register: (token: string) =>
      browser.request('POST', '/marketplace/register', { form: { 'x-amzn-marketplace-token': token } }, forwarded()),
    signIn: (email: string, password: string) =>
      browser.request('POST', '/signin', { form: { email, password } }, forwarded()),
    link: (linkCode: string) => browser.request('POST', '/api/links', { json: { linkCode } }, forwarded()),
  };
}

/** ResolveCustomer calls the sandbox answered, by outcome (ok, InvalidTokenException, ThrottlingException, …). */
async function resolveCalls(since: Date): Promise<{ byOutcome: Record<string, number>; at: number[] }> {
  const calls = await stack.sandbox.store.calls
    .find({ operation: 'ResolveCustomer', at: { $gte: since } })
    .sort({ at: 1 })
    .toArray();
  const byOutcome: Record<string, number> = {};
  for (const call of calls) byOutcome[call.outcome] = (byOutcome[call.outcome] ?? 0) + 1;
  return { byOutcome, at: calls.map((call) => call.at.getTime()) };
}

/** The most calls in any one-second window. */
function busiestSecond(at: number[]): number {
  let most = 0;
  for (let i = 0; i < at.length; i++) most = Math.max(most, at.filter((t) => t >= at[i]! && t < at[i]! + 1000).length);
  return most;
}

const waitForWindow = () => new Promise((resolve) => setTimeout(resolve, 1100));

describe('issue 12 point 4: rate limits', () => {
  it('bounds one attacker flooding fake tokens while real buyers keep registering', async () => {
    const since = new Date();
    const attacker = client('203.0.113.66', () => `10.${randomBytes(3).join('.')}`);
    const buyers = await Promise.all(
      ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].map(async (ip) => ({
        ip,
        token: (await stack.sandbox.control<{ token: string }>('POST', '/control/customers', {})).body.token,
      })),
    );

    const flood = Array.from({ length: 100 }, () => attacker.register(fakeToken()));
    const real = buyers.map(({ ip, token }) => client(ip).register(token));
    const [attacks, registrations] = await Promise.all([Promise.all(flood), Promise.all(real)]);

    for (const registration of registrations) {
      expect(registration.status).toBe(303);
      expect(registration.headers.get('location')).toMatch(/^\/signin\?next=/);
    }
    const limited = attacks.filter((answer) => answer.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(100 - LIMITS.registrationPerMinute);
    for (const answer of limited) {
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answer.headers.get('content-type')).toMatch(/text\/html/);
      expect(answer.text).toContain('data-problem="rate-limited"');
      expect(answer.text).toContain('Set Up Your Account');
    }
    // The few that got through were refused by AWS (403: the token is not one AWS issued), or, sent while the
    // attacker's previous token still waited for its ResolveCustomer slot, turned away at once (503, no call).
    const passed = attacks.filter((answer) => answer.status !== 429);
    expect(passed.every((answer) => answer.status === 403 || answer.status === 503)).toBe(true);

    // What AWS saw: the real buyers, and no more of the attacker's tokens than the per-client limit.
    const calls = await resolveCalls(since);
    expect(calls.byOutcome.ok).toBe(buyers.length);
    expect(calls.byOutcome.InvalidTokenException).toBe(passed.filter((answer) => answer.status === 403).length);
    expect(calls.byOutcome.InvalidTokenException).toBeLessThanOrEqual(LIMITS.registrationPerMinute);
    expect(calls.byOutcome.ThrottlingException ?? 0).toBe(0);
  });

  it('keeps a distributed flood under the global ResolveCustomer ceiling, so AWS never throttles the seller, and a real buyer gets through it', async () => {
    await waitForWindow();
    const since = new Date();
    const token = (await stack.sandbox.control<{ token: string }>('POST', '/control/customers', {})).body.token;
    const attackers = Array.from({ length: 25 }, (_, i) => client(`203.0.113.${i + 100}`));
    const flood = Promise.all(
      attackers.flatMap((attacker) => [attacker.register(fakeToken()), attacker.register(fakeToken())]),
    );
    // A real buyer arrives in the middle of it: one place in the queue per client puts it behind one call per attacker, not behind the flood.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const buyer = await client('198.51.100.50').register(token);
    expect(buyer.status).toBe(303);
    const answers = await flood;
    // An attacker's second request, sent while its first still waited, is turned away without a call.
    expect(answers.filter((answer) => answer.status === 503).length).toBeGreaterThanOrEqual(attackers.length - 1);

    const calls = await resolveCalls(since);
    expect(calls.byOutcome.ThrottlingException ?? 0).toBe(0);
    expect(busiestSecond(calls.at)).toBeLessThanOrEqual(LIMITS.resolveCustomerPerSecond + 1);
    // Every call AWS answered is one request's answer; everything else was turned away with a way back.
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 403)).toHaveLength(calls.byOutcome.InvalidTokenException ?? 0);
    const busy = answers.filter((answer) => answer.status === 503);
    expect(busy.length + (calls.byOutcome.InvalidTokenException ?? 0)).toBe(answers.length);
    expect(calls.byOutcome.ok).toBe(1);
    for (const answer of busy) {
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answer.text).toContain('data-problem="busy"');
    }
  });

  it('refuses a token of the wrong shape without spending a ResolveCustomer call', async () => {
    const since = new Date();
    const shapes = [
      'dW5rbm93bi10b2tlbg==', // base64, but far shorter than any real token
      'A'.repeat(63),
      `${fakeToken().slice(0, -2)}`, // not a whole number of base64 quanta
      fakeToken().replace(/[+/]/g, '-').replace(/=/g, '') + '!',
      `${fakeToken()} ${fakeToken()}`,
    ];
    for (const [i, token] of shapes.entries()) {
      const answer = await client(`192.0.2.${i + 1}`).register(token);
      expect([token, answer.status]).toEqual([token, 400]);
      expect(answer.text).toContain('data-problem="invalid"');
    }
    expect((await resolveCalls(since)).byOutcome).toEqual({});
  });

  it('stops a sign-in brute force after the limit, for that client only', async () => {
    const attacker = client('192.0.2.66');
    for (let i = 0; i < LIMITS.signInPerMinute; i++)
      expect((await attacker.signIn('alice@example.com', `guess-${i}`)).status).toBe(401);
    const locked = await attacker.signIn('alice@example.com', DEMO_PASSWORD);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(locked.headers.get('set-cookie')).toBeNull();
    expect(locked.text).toMatch(/Too many sign-in attempts/);
    // Another client is not affected.
    expect((await client('192.0.2.67').signIn('alice@example.com', DEMO_PASSWORD)).status).toBe(303);
  });

  it('limits the link API per client, with a JSON answer', async () => {
    const buyer = client('192.0.2.80');
    expect((await buyer.signIn('bob@example.com', DEMO_PASSWORD)).status).toBe(303);
    for (let i = 0; i < LIMITS.linksPerMinute; i++) expect((await buyer.link('A'.repeat(43))).status).toBe(404);
    const limited = await buyer.link('A'.repeat(43));
    expect(limited.status).toBe(429);
    expect(limited.json()).toEqual({
      error: 'TooManyRequests',
      message: expect.stringMatching(/Too many requests.*retry in/i),
    });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('reads TRUST_PROXY as a hop count or addresses, and refuses a value that would believe any client', () => {
    expect(loadApiConfig({}).httpServer.trustProxy).toBeUndefined();
    expect(loadApiConfig({ TRUST_PROXY: '1' }).httpServer.trustProxy).toBe(1);
    expect(loadApiConfig({ TRUST_PROXY: '10.0.0.0/8,fd00::/8,loopback' }).httpServer.trustProxy).toBe(
      '10.0.0.0/8,fd00::/8,loopback',
    );
    for (const value of ['true', '10.0.0.0/33', 'lb.example', '10.0.0.1/8/8']) {
      expect(() => loadApiConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
    }
    expect(loadApiConfig({}).rateLimits).toEqual({
      registrationPerMinute: 10,
      signInPerMinute: 10,
      linksPerMinute: 30,
      resolveCustomerPerSecond: 5,
    });
  });

  it('ignores X-Forwarded-For unless a proxy is trusted: rotating it does not escape the limit', async () => {
    const direct = await startApi({
      db: stack.mongo.db,
      temporal: stack.temporal,
      resolveCustomer: stack.resolveCustomer,
      settings: { rateLimits: LIMITS, taskQueue: stack.taskQueue },
    });
    try {
      const browser = new Browser(direct.url);
      const answers = [];
      for (let i = 0; i < LIMITS.registrationPerMinute + 3; i++) {
        answers.push(
          (
            await browser.request(
              'POST',
              '/marketplace/register',
              { form: { 'x-amzn-marketplace-token': 'short' } },
              { 'x-forwarded-for': `198.18.0.${i}` },
            )
          ).status,
        );
      }
      expect(answers).toEqual([...Array(LIMITS.registrationPerMinute).fill(400), 429, 429, 429]);
    } finally {
      await direct.close();
    }
  });
});
