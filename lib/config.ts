/**
 * All configuration comes from the environment, is validated once at start-up,
 * and fails fast naming the offending variable. Defaults target real AWS and a
 * local Temporal/MongoDB; `infra/local.env` holds the local stack's overrides.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWith, StringEnum, Type, type Static, type TSchema } from './schema';
import { temporalEnv, temporalFrom, type TemporalConfig } from './temporal-config';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export const Port = (fallback: number) => Type.Integer({ minimum: 1, maximum: 65535, default: fallback });
export const Url = Type.String({ format: 'uri' });
export const Bool = (fallback: boolean) => Type.Boolean({ default: fallback });
export const NonEmpty = (fallback?: string) =>
  fallback === undefined ? Type.String({ minLength: 1 }) : Type.String({ minLength: 1, default: fallback });
const LogLevel = StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
  default: 'info',
});

const MongoUri = Type.String({ pattern: '^mongodb(\\+srv)?://', default: 'mongodb://127.0.0.1:27017/' });

/**
 * What a notification queue may carry. Only an SNS envelope is signed; raw
 * delivery and EventBridge bodies are trusted for the queue they arrive on,
 * so each must be switched on for its queue (see the README's queue policies).
 */
export const QUEUE_FORMATS = ['sns', 'sns-raw', 'eventbridge'] as const;
export type QueueFormat = (typeof QUEUE_FORMATS)[number];

/** Where traces go: nowhere (the default), an OTLP/HTTP collector, or standard output. gRPC is not offered. */
export const TRACES_EXPORTERS = ['none', 'otlp', 'console'] as const;
const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/*
 * Each process validates only the variables it reads (api/config.ts,
 * worker/config.ts, poller/config.ts, and the sandbox's below), so a bad value
 * meant for one process never stops another. These are the pieces they share.
 */

/** OpenTelemetry's standard variables (lib/telemetry/tracing.ts); the exporter itself reads OTEL_EXPORTER_OTLP_HEADERS and the rest. */
const tracingEnv = {
  OTEL_TRACES_EXPORTER: StringEnum(TRACES_EXPORTERS, { default: 'none' }),
  OTEL_EXPORTER_OTLP_PROTOCOL: StringEnum(OTLP_PROTOCOLS, { default: 'http/protobuf' }),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Type.Optional(StringEnum(OTLP_PROTOCOLS)),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Url),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Url),
  OTEL_SERVICE_NAME: Type.Optional(NonEmpty()),
};

/** What the api, the worker and the poller all read: logging, the store, the AWS region, Temporal and tracing. */
export const commonEnv = {
  LOG_LEVEL: LogLevel,
  MONGODB_URI: MongoUri,
  MONGODB_DATABASE: NonEmpty('marketplace_billing'),
  AWS_REGION: NonEmpty('us-east-1'),
  ...temporalEnv,
  ...tracingEnv,
};
type CommonEnv = Static<ReturnType<typeof Type.Object<typeof commonEnv>>>;

/** The subscription workflow's settings: the api and the poller (whichever starts it first) and the worker (moving legacy runs) pass the same. */
export const subscriptionEnv = {
  LINK_SYNC_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  CANCELLATION_GRACE_SECONDS: Type.Integer({ minimum: 1, default: 3 * 24 * 3600 }),
};

/** ResolveCustomer (the api) and BatchMeterUsage (the worker); unset: real AWS. */
export const meteringEndpointEnv = { AWS_ENDPOINT_URL_MARKETPLACE_METERING: Type.Optional(Url) };

/** The buyer-facing site (the api's); the production guard reads these in every process, see lib/production-guard.ts. */
export const siteEnv = {
  API_PORT: Port(3000),
  PUBLIC_BASE_URL: Type.Optional(Url),
  SESSION_SIGNING_KEY: Type.Optional(Type.String({ minLength: 32 })),
  SESSION_SIGNING_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 32 })),
  DEMO_ACCOUNTS: Bool(false),
  SIGN_IN_URL: NonEmpty('/signin'),
  /** lib/production-guard.ts: an https staging site on the sandbox may keep unsafe settings; never against real AWS. */
  ALLOW_UNSAFE_STAGING_SETTINGS: Bool(false),
};

/** What the poller trusts on its queues; the production guard reads these in every process too. */
export const notificationTrustEnv = {
  SQS_QUEUE_FORMATS: Type.String({
    pattern: `^(${QUEUE_FORMATS.join('|')})(,(${QUEUE_FORMATS.join('|')}))*$`,
    default: 'sns',
  }),
  SNS_VERIFY_SIGNATURES: Bool(true),
  SNS_TRUSTED_CERT_URLS: Type.Optional(Type.String({ pattern: '^https?://[^,\\s]+(,https?://[^,\\s]+)*$' })),
};

/** The hourly metering run (the worker's schedule and activities). */
export const meteringEnv = {
  METERING_DIMENSIONS: Type.String({
    pattern: '^[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+)*$',
    default: 'session_hours=session_hours,traffic_gb=traffic_gb',
  }),
  // AWS's quota is 10 a second per seller account; a pace at the quota itself trips a token bucket now and then.
  METERING_RATE_PER_SECOND: Type.Number({ exclusiveMinimum: 0, default: 9.7 }),
  METERING_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  METERING_PAGE_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
  METERING_SCHEDULE: Bool(true),
  METERING_SCHEDULE_OFFSET_MINUTES: Type.Integer({ minimum: 0, maximum: 59, default: 5 }),
};

/** lib/store/retention.ts: the worker's schedule, and how long the metering ledger is kept. */
export const retentionEnv = {
  RETENTION_SCHEDULE: Bool(true),
  // Never shorter than a month: no record is re-sent after AWS's window, even with a month-end grace.
  METERING_LEDGER_RETENTION_DAYS: Type.Integer({ minimum: 32, default: 400 }),
};

/** The sandbox is a separate program with its own variables; it shares the store and AWS settings. */
export const sandboxEnvSchema = Type.Object({
  LOG_LEVEL: LogLevel,
  MONGODB_URI: MongoUri,
  AWS_REGION: NonEmpty('us-east-1'),
  AWS_ENDPOINT_URL_SQS: Type.Optional(Url),
  AWS_ENDPOINT_URL_SNS: Type.Optional(Url),
  SQS_EVENTBRIDGE_QUEUE_URL: Type.Optional(Url),
  SANDBOX_HOST: NonEmpty('127.0.0.1'),
  SANDBOX_PORT: Port(4580),
  SANDBOX_PUBLIC_URL: Type.Optional(Url),
  SANDBOX_REGISTRATION_URL: Type.String({ format: 'uri', default: 'http://localhost:3000/marketplace/register' }),
  SANDBOX_PRODUCT_CODE: NonEmpty('demo-paygo-product'),
  SANDBOX_QUOTA_RPS: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  SANDBOX_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  SANDBOX_SNS_TOPIC_ARN: Type.Optional(NonEmpty()),
  SANDBOX_SNS_SIGNING: Bool(true),
  SANDBOX_SNS_SIGNING_DIR: Type.Optional(NonEmpty()),
  SANDBOX_SNS_SIGNATURE_VERSION: StringEnum(['1', '2'] as const, { default: '1' }),
  SANDBOX_SNS_SIGNING_CERT_URL: Type.Optional(Url),
  SANDBOX_MONGODB_DATABASE: NonEmpty('marketplace_sandbox'),
});
export type SandboxEnv = Static<typeof sandboxEnvSchema>;

export type Env = Record<string, string | undefined>;

/** Reads exactly the schema's variables, treating empty strings as unset, and reports every bad one by name. */
export function parseEnv<T extends TSchema>(schema: T, env: Env): Static<T> {
  const known = Object.keys((schema as unknown as { properties: Record<string, unknown> }).properties);
  const input: Record<string, string> = {};
  for (const name of known) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') input[name] = value.trim();
  }
  const result = parseWith(schema, input);
  if (result.ok) return result.value;
  const byVariable = new Map<string, string>();
  for (const issue of result.issues) {
    const name = issue.path.replace(/^\//, '') || '(environment)';
    if (!byVariable.has(name)) {
      const shown = name in input && !/KEY|SECRET|PASSWORD|TOKEN/.test(name) ? ` (got "${input[name]}")` : '';
      byVariable.set(name, `${name}: ${issue.message}${shown}`);
    }
  }
  throw new ConfigError([...byVariable.values()]);
}

export type { TemporalConfig };

export interface AwsConfig {
  region: string;
  /** Unset endpoints mean real AWS through the default credential chain. */
  endpoints: { sqs?: string; sns?: string; metering?: string };
}

/** What every service process is given: see `commonEnv`. */
export interface CommonConfig {
  logLevel: CommonEnv['LOG_LEVEL'];
  temporal: TemporalConfig;
  mongo: { uri: string; database: string };
  /** lib/telemetry/tracing.ts: OpenTelemetry traces, off unless an exporter is named. */
  tracing: TracingConfig;
}

export interface TracingConfig {
  exporter: (typeof TRACES_EXPORTERS)[number];
  protocol: (typeof OTLP_PROTOCOLS)[number];
}

export interface RetentionConfig {
  schedule: boolean;
  meteringLedgerDays: number;
}

export interface MeteringConfig {
  /** Platform metric → AWS dimension. */
  dimensions: Record<string, string>;
  ratePerSecond: number;
  concurrency: number;
  pageSize: number;
  schedule: { enabled: boolean; offsetMinutes: number };
}

/** The subscription workflow's settings (`subscriptionEnv`). */
export interface SubscriptionSettings {
  linking: { syncTimeoutMs: number };
  cancellation: { gracePeriodMs: number };
}

export const listOf = (value: string | undefined) => (value ? value.split(',') : []);

/** The shared part of a process's configuration, from a schema that spreads `commonEnv`. */
export function commonConfigFrom(env: Env, parsed: CommonEnv): CommonConfig {
  const temporal = temporalFrom(env, parsed);
  if ('problems' in temporal) throw new ConfigError(temporal.problems);
  return {
    logLevel: parsed.LOG_LEVEL,
    temporal: temporal.temporal,
    mongo: { uri: parsed.MONGODB_URI, database: parsed.MONGODB_DATABASE },
    tracing: {
      exporter: parsed.OTEL_TRACES_EXPORTER,
      protocol: parsed.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? parsed.OTEL_EXPORTER_OTLP_PROTOCOL,
    },
  };
}

export function subscriptionSettingsFrom(
  parsed: Static<ReturnType<typeof Type.Object<typeof subscriptionEnv>>>,
): SubscriptionSettings {
  return {
    linking: { syncTimeoutMs: parsed.LINK_SYNC_TIMEOUT_SECONDS * 1000 },
    cancellation: { gracePeriodMs: parsed.CANCELLATION_GRACE_SECONDS * 1000 },
  };
}

function dimensionsFrom(spec: string): Record<string, string> {
  const pairs = spec.split(',').map((pair) => pair.split('=') as [string, string]);
  const targets = pairs.map(([, dimension]) => dimension);
  // Two metrics on one AWS dimension would share one record per hour, and one of them would be lost.
  if (new Set(targets).size !== targets.length || new Set(pairs.map(([metric]) => metric)).size !== pairs.length) {
    throw new ConfigError([`METERING_DIMENSIONS: each metric and each AWS dimension may appear once (got "${spec}")`]);
  }
  return Object.fromEntries(pairs);
}

export function meteringFrom(parsed: Static<ReturnType<typeof Type.Object<typeof meteringEnv>>>): MeteringConfig {
  return {
    dimensions: dimensionsFrom(parsed.METERING_DIMENSIONS),
    ratePerSecond: parsed.METERING_RATE_PER_SECOND,
    concurrency: parsed.METERING_CONCURRENCY,
    pageSize: parsed.METERING_PAGE_SIZE,
    schedule: { enabled: parsed.METERING_SCHEDULE, offsetMinutes: parsed.METERING_SCHEDULE_OFFSET_MINUTES },
  };
}

/** The metering settings as the worker would read them from `env`: for tests and tools that run the activities in-process. */
export function loadMeteringConfig(env: Env = process.env): MeteringConfig {
  return meteringFrom(parseEnv(Type.Object(meteringEnv), env));
}

/** The subscription workflow's settings as every process reads them from `env`. */
export function loadSubscriptionSettings(env: Env = process.env): SubscriptionSettings {
  return subscriptionSettingsFrom(parseEnv(Type.Object(subscriptionEnv), env));
}

/** Temporal's connection as every process reads it from `env`: for tools that only talk to Temporal. */
export function loadTemporalConfig(env: Env = process.env): TemporalConfig {
  const parsed = parseEnv(Type.Object(temporalEnv), env);
  const temporal = temporalFrom(env, parsed);
  if ('problems' in temporal) throw new ConfigError(temporal.problems);
  return temporal.temporal;
}

export interface SandboxConfig {
  logLevel: SandboxEnv['LOG_LEVEL'];
  host: string;
  port: number;
  publicUrl: string;
  registrationUrl: string;
  productCode: string;
  quotaRps: number;
  tokenTtlSeconds: number;
  snsTopicArn?: string;
  /** Undefined: publish through the SNS emulator, unsigned. */
  snsSigning?: { dir: string; version: '1' | '2'; certUrl?: string };
  eventBridgeQueueUrl?: string;
  mongo: { uri: string; database: string };
  aws: AwsConfig;
}

export function loadSandboxConfig(env: Env = process.env): SandboxConfig {
  const parsed = parseEnv(sandboxEnvSchema, env);
  return {
    logLevel: parsed.LOG_LEVEL,
    host: parsed.SANDBOX_HOST,
    port: parsed.SANDBOX_PORT,
    publicUrl: parsed.SANDBOX_PUBLIC_URL ?? `http://localhost:${parsed.SANDBOX_PORT}`,
    registrationUrl: parsed.SANDBOX_REGISTRATION_URL,
    productCode: parsed.SANDBOX_PRODUCT_CODE,
    quotaRps: parsed.SANDBOX_QUOTA_RPS,
    tokenTtlSeconds: parsed.SANDBOX_TOKEN_TTL_SECONDS,
    snsTopicArn: parsed.SANDBOX_SNS_TOPIC_ARN,
    snsSigning: parsed.SANDBOX_SNS_SIGNING
      ? {
          dir: parsed.SANDBOX_SNS_SIGNING_DIR ?? join(tmpdir(), 'marketplace-sandbox-sns'),
          version: parsed.SANDBOX_SNS_SIGNATURE_VERSION,
          certUrl: parsed.SANDBOX_SNS_SIGNING_CERT_URL,
        }
      : undefined,
    eventBridgeQueueUrl: parsed.SQS_EVENTBRIDGE_QUEUE_URL,
    mongo: { uri: parsed.MONGODB_URI, database: parsed.SANDBOX_MONGODB_DATABASE },
    aws: {
      region: parsed.AWS_REGION,
      endpoints: { sqs: parsed.AWS_ENDPOINT_URL_SQS, sns: parsed.AWS_ENDPOINT_URL_SNS },
    },
  };
}

/** Read by the AWS SDK's default credential chain, not by us; documented in the README. */
export const AWS_SDK_ENV_VARS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
] as const;
