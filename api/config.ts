/** The API's variables, and only those: a bad value meant for the worker or the poller does not stop it. */
import { isIP } from 'node:net';
import {
  commonConfigFrom,
  commonEnv,
  ConfigError,
  meteringEndpointEnv,
  NonEmpty,
  parseEnv,
  siteEnv,
  subscriptionEnv,
  subscriptionSettingsFrom,
  type AwsConfig,
  type CommonConfig,
  type Env,
  type SubscriptionSettings,
} from '../lib/config';
import { Type, type Static } from '../lib/schema';

/** Every variable the API reads, with its default. The README documents each one. */
export const apiEnvSchema = Type.Object({
  ...commonEnv,
  ...meteringEndpointEnv,
  ...siteEnv,
  ...subscriptionEnv,
  API_HOST: NonEmpty('127.0.0.1'),
  SESSION_TTL_SECONDS: Type.Integer({ minimum: 60, default: 12 * 3600 }),
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z.:/]+(,[0-9A-Za-z.:/]+)*$' })),
  RATE_LIMIT_REGISTRATION_PER_MINUTE: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_SIGN_IN_PER_MINUTE: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_LINKS_PER_MINUTE: Type.Integer({ minimum: 1, default: 30 }),
  RESOLVE_CUSTOMER_MAX_PER_SECOND: Type.Number({ exclusiveMinimum: 0, maximum: 1000, default: 5 }),
  API_HEADERS_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 600, default: 10 }),
  API_REQUEST_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 600, default: 30 }),
  API_CONNECTION_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
  API_KEEP_ALIVE_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 72 }),
  LINK_CODE_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800 }),
});
export type ApiEnv = Static<typeof apiEnvSchema>;

export interface ApiConfig extends CommonConfig {
  api: { host: string; port: number; publicBaseUrl: string };
  /** ResolveCustomer's endpoint; unset: real AWS. */
  aws: AwsConfig;
  /** The first key signs, every key verifies. */
  session: { signingKeys: string[]; ttlSeconds: number };
  linking: { codeTtlSeconds: number; syncTimeoutMs: number };
  /** Passed to a subscription workflow this API starts. */
  cancellation: SubscriptionSettings['cancellation'];
  /** api/rate-limits.ts: per client (a minute's requests) and, for ResolveCustomer, across all clients. */
  rateLimits: {
    registrationPerMinute: number;
    signInPerMinute: number;
    linksPerMinute: number;
    resolveCustomerPerSecond: number;
  };
  /** api/http-timeouts.ts, and whose X-Forwarded-For names the client (a hop count or addresses; unset: nobody's). */
  httpServer: {
    timeouts: { headersMs: number; requestMs: number; connectionMs: number; keepAliveMs: number };
    trustProxy?: number | string;
  };
  demoAccounts: boolean;
  /** Where buyers sign in: the local demo page, or the platform's own sign-in URL. */
  signInUrl: string;
}

/**
 * TRUST_PROXY: a number of proxy hops (1 behind one load balancer), or the
 * proxies' addresses and CIDR ranges (or proxy-addr's names loopback,
 * linklocal, uniquelocal). Never "true": that would believe an address the
 * client wrote into X-Forwarded-For itself.
 */
function trustProxyFrom(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  if (/^[0-9]+$/.test(value)) return Number(value);
  const named = new Set(['loopback', 'linklocal', 'uniquelocal']);
  const bad = value.split(',').filter((entry) => {
    const [address, bits, ...rest] = entry.split('/');
    const version = isIP(address!);
    const maxBits = version === 4 ? 32 : 128;
    if (named.has(entry)) return false;
    return (
      version === 0 || rest.length > 0 || (bits !== undefined && !(/^[0-9]+$/.test(bits) && Number(bits) <= maxBits))
    );
  });
  if (bad.length > 0) {
    throw new ConfigError([
      `TRUST_PROXY: a hop count, or addresses and CIDR ranges of the load balancers, comma-separated (not: ${bad.join(', ')})`,
    ]);
  }
  return value;
}

export function loadApiConfig(env: Env = process.env): ApiConfig {
  const parsed = parseEnv(apiEnvSchema, env);
  const common = commonConfigFrom(env, parsed);
  if (parsed.API_HEADERS_TIMEOUT_SECONDS > parsed.API_REQUEST_TIMEOUT_SECONDS) {
    throw new ConfigError([
      'API_HEADERS_TIMEOUT_SECONDS: must not exceed API_REQUEST_TIMEOUT_SECONDS (the headers are part of the request)',
    ]);
  }
  const workflow = subscriptionSettingsFrom(parsed);
  return {
    ...common,
    api: {
      host: parsed.API_HOST,
      port: parsed.API_PORT,
      publicBaseUrl: parsed.PUBLIC_BASE_URL ?? `http://localhost:${parsed.API_PORT}`,
    },
    aws: { region: parsed.AWS_REGION, endpoints: { metering: parsed.AWS_ENDPOINT_URL_MARKETPLACE_METERING } },
    session: {
      signingKeys: [parsed.SESSION_SIGNING_KEY, parsed.SESSION_SIGNING_KEY_PREVIOUS].filter((key): key is string =>
        Boolean(key),
      ),
      ttlSeconds: parsed.SESSION_TTL_SECONDS,
    },
    linking: { codeTtlSeconds: parsed.LINK_CODE_TTL_SECONDS, syncTimeoutMs: workflow.linking.syncTimeoutMs },
    cancellation: workflow.cancellation,
    rateLimits: {
      registrationPerMinute: parsed.RATE_LIMIT_REGISTRATION_PER_MINUTE,
      signInPerMinute: parsed.RATE_LIMIT_SIGN_IN_PER_MINUTE,
      linksPerMinute: parsed.RATE_LIMIT_LINKS_PER_MINUTE,
      resolveCustomerPerSecond: parsed.RESOLVE_CUSTOMER_MAX_PER_SECOND,
    },
    httpServer: {
      timeouts: {
        headersMs: parsed.API_HEADERS_TIMEOUT_SECONDS * 1000,
        requestMs: parsed.API_REQUEST_TIMEOUT_SECONDS * 1000,
        connectionMs: parsed.API_CONNECTION_TIMEOUT_SECONDS * 1000,
        keepAliveMs: parsed.API_KEEP_ALIVE_TIMEOUT_SECONDS * 1000,
      },
      trustProxy: trustProxyFrom(parsed.TRUST_PROXY),
    },
    demoAccounts: parsed.DEMO_ACCOUNTS,
    signInUrl: parsed.SIGN_IN_URL,
  };
}

/** What the API cannot run without: a session key, and somewhere to sign in. Returns the keys. */
export function requireApiConfig(config: ApiConfig): string[] {
  if (config.session.signingKeys.length === 0) {
    throw new ConfigError([
      'SESSION_SIGNING_KEY: required by the API (at least 32 characters, e.g. `openssl rand -base64 48`)',
    ]);
  }
  if (!config.demoAccounts && config.signInUrl === '/signin') {
    throw new ConfigError([
      "SIGN_IN_URL: set it to the platform's sign-in page; the local /signin page exists only with DEMO_ACCOUNTS=true",
    ]);
  }
  return config.session.signingKeys;
}
