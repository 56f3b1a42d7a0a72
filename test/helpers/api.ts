import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { ResolvedRegistration } from '../../activities/marketplace';
import { buildApp, type ApiSettings } from '../../api/app';
import { signSession } from '../../lib/session-token';

export const TEST_SIGNING_KEY = 'test-only-session-signing-key-0123456789abcdef';

export function testApiSettings(overrides: Partial<ApiSettings> = {}): ApiSettings {
  return {
    taskQueue: 'unused',
    publicBaseUrl: 'http://127.0.0.1',
    session: { signingKeys: [TEST_SIGNING_KEY], ttlSeconds: 3600 },
    linking: { codeTtlSeconds: 600, syncTimeoutMs: 60_000 },
    demoAccounts: true,
    signInUrl: '/signin',
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
  const app = await buildApp({
    db: deps.db,
    temporal: deps.temporal,
    resolveCustomer: deps.resolveCustomer ?? (() => Promise.reject(new Error('ResolveCustomer is not wired in this test'))),
    settings: testApiSettings(deps.settings),
    logLevel: 'silent',
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, close: () => app.close() };
}

export function sessionFor(accountId: string): string {
  return signSession(accountId, TEST_SIGNING_KEY, 3600);
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** A browser-like HTTP client with a cookie jar and no automatic redirects, so each hop is visible. */
export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(private readonly baseUrl: string) {}

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
        ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body?.form ? new URLSearchParams(body.form).toString() : body?.json !== undefined ? JSON.stringify(body.json) : undefined,
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
