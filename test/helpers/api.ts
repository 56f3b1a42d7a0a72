import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { ResolvedRegistration } from '../../activities/marketplace';
import { buildApp, type ApiSettings } from '../../api/app';
import { loadApiConfig } from '../../api/config';
import { freePort } from '../../infra/processes';
import { SESSION_AUDIENCE } from '../../lib/session-token';

export const TEST_SIGNING_KEY = 'test-only-session-signing-key-0123456789abcdef';

export function testApiSettings(overrides: Partial<ApiSettings> = {}): ApiSettings {
  return {
    taskQueue: 'unused',
    publicBaseUrl: 'http://127.0.0.1',
    session: { signingKeys: [TEST_SIGNING_KEY], ttlSeconds: 3600 },
    linking: { codeTtlSeconds: 600, syncTimeoutMs: 60_000 },
    demoAccounts: true,
    signInUrl: '/signin',
    // Suites drive many requests from one address: only the rate-limit tests set real limits.
    rateLimits: {
      registrationPerMinute: 100_000,
      signInPerMinute: 100_000,
      linksPerMinute: 100_000,
      resolveCustomerPerSecond: 1000,
    },
    timeouts: loadApiConfig({}).httpServer.timeouts,
    ...overrides,
  };
}

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startApi(deps: {
  db: Db;
  temporal: Client;
  resolveCustomer?: (token: string) => Promise<ResolvedRegistration>;
  settings?: Partial<ApiSettings>;
}): Promise<RunningApi> {
  // The Origin check compares with the public URL, so by default it is the address the API really listens on.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const app = await buildApp({
      db: deps.db,
      temporal: deps.temporal,
      resolveCustomer:
        deps.resolveCustomer ?? (() => Promise.reject(new Error('ResolveCustomer is not wired in this test'))),
      settings: testApiSettings({ publicBaseUrl: `http://127.0.0.1:${port}`, ...deps.settings }),
      logLevel: 'silent',
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port });
      return { app, url, close: () => app.close() };
    } catch (error) {
      await app.close();
      // Another process took the port between our look and our listen.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw error;
    }
  }
}

/**
 * A session token as the platform issues it (RFC 7519, HS256), built here by
 * hand rather than by our own signer, so the tests also hold the documented
 * format. `sessionVersion` must be the account's current one (0 until it
 * first signs out).
 */
export function sessionFor(accountId: string, sessionVersion = 0, key = TEST_SIGNING_KEY): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: accountId, aud: SESSION_AUDIENCE, iat, exp: iat + 3600, sv: sessionVersion })}`;
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * A browser-like HTTP client with a cookie jar and no automatic redirects, so
 * each hop is visible. Like a browser on the page it came from, it sends
 * Origin on every request but GET and HEAD: by default the origin of the
 * address it talks to; a test may give the public origin, or another site's.
 */
export class Browser {
  readonly cookies = new Map<string, string>();
  private readonly origin: string;

  constructor(
    private readonly baseUrl: string,
    options: { origin?: string } = {},
  ) {
    this.origin = options.origin ?? new URL(baseUrl).origin;
  }

  async request(
    method: string,
    path: string,
    body?: { form?: Record<string, string>; json?: unknown },
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(method === 'GET' || method === 'HEAD' ? {} : { origin: this.origin }),
        ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body?.form
        ? new URLSearchParams(body.form).toString()
        : body?.json !== undefined
          ? JSON.stringify(body.json)
          : undefined,
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, ...rest] = pair!.split('=');
      const value = rest.join('=');
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name!.trim());
      else this.cookies.set(name!.trim(), value);
    }
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: <T>() => JSON.parse(text) as T };
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, undefined, headers);
  }

  postForm(path: string, form: Record<string, string>) {
    return this.request('POST', path, { form });
  }

  postJson(path: string, json: unknown) {
    return this.request('POST', path, { json });
  }
}
