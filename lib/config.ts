/**
 * All configuration comes from the environment, is validated once at start-up,
 * and fails fast naming the offending variable. Defaults target real AWS and a
 * local Temporal/MongoDB; `infra/local.env` holds the local stack's overrides.
 */
import { isIP } from 'node:net';
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

const Port = (fallback: number) => Type.Integer({ minimum: 1, maximum: 65535, default: fallback });
const Url = Type.String({ format: 'uri' });
const Bool = (fallback: boolean) => Type.Boolean({ default: fallback });
const NonEmpty = (fallback?: string) =>
  fallback === undefined ? Type.String({ minLength: 1 }) : Type.String({ minLength: 1, default: fallback });
const LogLevel = StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, { default: 'info' });

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

/** Variables both programs read: logging, the store and where AWS is. */
const sharedEnv = {
  LOG_LEVEL: LogLevel,
  MONGODB_URI: MongoUri,
  AWS_REGION: NonEmpty('us-east-1'),
  AWS_ENDPOINT_URL_SQS: Type.Optional(Url),
  AWS_ENDPOINT_URL_SNS: Type.Optional(Url),
  SQS_QUEUE_URL: Type.Optional(Url),
  SQS_EVENTBRIDGE_QUEUE_URL: Type.Optional(Url),
};

/** Every variable the service reads, with its default. The README documents each one. */
export const serviceEnvSchema = Type.Object({
  ...sharedEnv,
  API_HOST: NonEmpty('127.0.0.1'),
  API_PORT: Port(3000),
  PUBLIC_BASE_URL: Type.Optional(Url),
  ...temporalEnv,
  MONGODB_DATABASE: NonEmpty('marketplace_billing'),
  AWS_ENDPOINT_URL_MARKETPLACE_METERING: Type.Optional(Url),
  SESSION_SIGNING_KEY: Type.Optional(Type.String({ minLength: 32 })),
  SESSION_SIGNING_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 32 })),
  SESSION_TTL_SECONDS: Type.Integer({ minimum: 60, default: 12 * 3600 }),
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z.:/]+(,[0-9A-Za-z.:/]+)*$' })),
  RATE_LIMIT_REGISTRATION_PER_MINUTE: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_SIGN_IN_PER_MINUTE: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_LINKS_PER_MINUTE: Type.Integer({ minimum: 1, default: 30 }),
  RESOLVE_CUSTOMER_MAX_PER_SECOND: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 5 }),
  API_HEADERS_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 600, default: 10 }),
  API_REQUEST_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 600, default: 30 }),
  API_CONNECTION_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
  API_KEEP_ALIVE_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 72 }),
  LINK_CODE_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800 }),
  LINK_SYNC_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  DEMO_ACCOUNTS: Bool(false),
  /** lib/production-guard.ts: an https staging site on the sandbox may keep unsafe settings; never against real AWS. */
  ALLOW_UNSAFE_STAGING_SETTINGS: Bool(false),
  SIGN_IN_URL: NonEmpty('/signin'),
  METERING_DIMENSIONS: Type.String({
    pattern: '^[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+)*$',
    default: 'session_hours=session_hours,traffic_gb=traffic_gb',
  }),
  METERING_RATE_PER_SECOND: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  METERING_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  METERING_PAGE_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
  METERING_SCHEDULE: Bool(true),
  METERING_SCHEDULE_OFFSET_MINUTES: Type.Integer({ minimum: 0, maximum: 59, default: 5 }),
  RETENTION_SCHEDULE: Bool(true),
  // Never shorter than a month: no record is re-sent after AWS's window, even with a month-end grace.
  METERING_LEDGER_RETENTION_DAYS: Type.Integer({ minimum: 32, default: 400 }),
  DEPLOYMENTS_API_URL: Type.Optional(Url),
  DEPLOYMENTS_API_TOKEN: Type.Optional(NonEmpty()),
  CANCELLATION_GRACE_SECONDS: Type.Integer({ minimum: 1, default: 3 * 24 * 3600 }),
  SQS_WAIT_TIME_SECONDS: Type.Integer({ minimum: 0, maximum: 20, default: 20 }),
  SQS_MAX_MESSAGES: Type.Integer({ minimum: 1, maximum: 10, default: 10 }),
  SQS_DEAD_LETTER_QUEUE_URL: Type.Optional(Url),
  SQS_QUEUE_FORMATS: Type.String({ pattern: `^(${QUEUE_FORMATS.join('|')})(,(${QUEUE_FORMATS.join('|')}))*$`, default: 'sns' }),
  SQS_EVENTBRIDGE_DEAD_LETTER_QUEUE_URL: Type.Optional(Url),
  POLLER_RECEIVERS: Type.Integer({ minimum: 1, maximum: 20, default: 2 }),
  POLLER_MAX_IN_FLIGHT: Type.Integer({ minimum: 10, maximum: 1000, default: 50 }),
  POLLER_SHUTDOWN_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 25 }),
  POLLER_METRICS_HOST: NonEmpty('127.0.0.1'),
  POLLER_METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9464 }),
  WORKER_METRICS_HOST: NonEmpty('127.0.0.1'),
  WORKER_METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  SNS_TOPIC_ARN: Type.Optional(Type.String({ pattern: '^arn:[^,\\s]+(,arn:[^,\\s]+)*$' })),
  SNS_VERIFY_SIGNATURES: Bool(true),
  SNS_TRUSTED_CERT_URLS: Type.Optional(Type.String({ pattern: '^https?://[^,\\s]+(,https?://[^,\\s]+)*$' })),
  // OpenTelemetry's standard variables (lib/telemetry/tracing.ts); the exporter itself reads OTEL_EXPORTER_OTLP_HEADERS and the rest.
  OTEL_TRACES_EXPORTER: StringEnum(TRACES_EXPORTERS, { default: 'none' }),
  OTEL_EXPORTER_OTLP_PROTOCOL: StringEnum(OTLP_PROTOCOLS, { default: 'http/protobuf' }),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Type.Optional(StringEnum(OTLP_PROTOCOLS)),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Url),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Url),
  OTEL_SERVICE_NAME: Type.Optional(NonEmpty()),
});
export type ServiceEnv = Static<typeof serviceEnvSchema>;

/** The sandbox is a separate program with its own variables; it shares the store and AWS settings. */
export const sandboxEnvSchema = Type.Object({
  ...sharedEnv,
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

type Env = Record<string, string | undefined>;

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

export interface ServiceConfig {
  logLevel: ServiceEnv['LOG_LEVEL'];
  api: { host: string; port: number; publicBaseUrl: string };
  temporal: TemporalConfig;
  mongo: { uri: string; database: string };
  aws: AwsConfig;
  sqs: { queueUrl?: string; waitTimeSeconds: number; maxMessages: number };
  poller: PollerConfig;
  /** Only the API signs and verifies sessions; the first key signs, every key verifies. */
  session: { signingKeys: string[]; ttlSeconds: number };
  linking: { codeTtlSeconds: number; syncTimeoutMs: number };
  /** api/rate-limits.ts: per client (a minute's requests) and, for ResolveCustomer, across all clients. */
  rateLimits: { registrationPerMinute: number; signInPerMinute: number; linksPerMinute: number; resolveCustomerPerSecond: number };
  /** api/http-timeouts.ts, and whose X-Forwarded-For names the client (a hop count or addresses; unset: nobody's). */
  httpServer: { timeouts: { headersMs: number; requestMs: number; connectionMs: number; keepAliveMs: number }; trustProxy?: number | string };
  demoAccounts: boolean;
  /** Where buyers sign in: the local demo page, or the platform's own sign-in URL. */
  signInUrl: string;
  metering: MeteringConfig;
  /** Unset URL: the deployments in MongoDB. */
  deploymentsApi: { url?: string; token?: string };
  cancellation: { gracePeriodMs: number };
  /** The worker's Prometheus endpoint (Temporal SDK metrics and the subscription workflow's counters); no port: none. */
  workerMetrics: { host: string; port?: number };
  /** lib/telemetry/tracing.ts: OpenTelemetry traces, off unless an exporter is named. */
  tracing: TracingConfig;
  /** lib/store/retention.ts: the worker's schedule, and how long the metering ledger is kept. */
  retention: RetentionConfig;
}

export interface TracingConfig {
  exporter: (typeof TRACES_EXPORTERS)[number];
  protocol: (typeof OTLP_PROTOCOLS)[number];
}

export interface RetentionConfig {
  schedule: boolean;
  meteringLedgerDays: number;
}

/** One queue the poller reads, and what it may carry there. */
export interface QueueConfig {
  url: string;
  formats: QueueFormat[];
  /** Unset: the target of the queue's redrive policy. */
  deadLetterQueueUrl?: string;
}

export interface PollerConfig {
  /** Unset: the target of the queue's redrive policy. */
  deadLetterQueueUrl?: string;
  /** The formats SQS_QUEUE_URL may carry (default: signed SNS envelopes only). */
  formats: QueueFormat[];
  /** A second queue that carries only EventBridge events, with its own dead-letter queue. */
  eventBridgeQueue?: { url: string; deadLetterQueueUrl?: string };
  receivers: number;
  maxInFlight: number;
  shutdownTimeoutMs: number;
  metrics: { host: string; port: number };
  /** The SNS topics whose envelopes are accepted. */
  topicArns: string[];
  verifySignatures: boolean;
  /** Certificate URLs trusted besides AWS's own (the local sandbox's). */
  trustedCertUrls: string[];
}

export interface MeteringConfig {
  /** Platform metric → AWS dimension. */
  dimensions: Record<string, string>;
  ratePerSecond: number;
  concurrency: number;
  pageSize: number;
  schedule: { enabled: boolean; offsetMinutes: number };
}

const listOf = (value: string | undefined) => (value ? value.split(',') : []);

function dimensionsFrom(spec: string): Record<string, string> {
  const pairs = spec.split(',').map((pair) => pair.split('=') as [string, string]);
  const targets = pairs.map(([, dimension]) => dimension);
  // Two metrics on one AWS dimension would share one record per hour, and one of them would be lost.
  if (new Set(targets).size !== targets.length || new Set(pairs.map(([metric]) => metric)).size !== pairs.length) {
    throw new ConfigError([`METERING_DIMENSIONS: each metric and each AWS dimension may appear once (got "${spec}")`]);
  }
  return Object.fromEntries(pairs);
}

/** What only the API needs: a session key (the worker and the poller never do) and somewhere to sign in. */
export function requireApiConfig(config: ServiceConfig): string[] {
  if (config.session.signingKeys.length === 0) {
    throw new ConfigError(['SESSION_SIGNING_KEY: required by the API (at least 32 characters, e.g. `openssl rand -base64 48`)']);
  }
  if (!config.demoAccounts && config.signInUrl === '/signin') {
    throw new ConfigError(["SIGN_IN_URL: set it to the platform's sign-in page; the local /signin page exists only with DEMO_ACCOUNTS=true"]);
  }
  return config.session.signingKeys;
}

/** The queues the poller reads, each with the formats it may carry; it cannot run without one. */
export function requireQueues(config: ServiceConfig): QueueConfig[] {
  const { poller } = config;
  const queues: QueueConfig[] = [
    ...(config.sqs.queueUrl ? [{ url: config.sqs.queueUrl, formats: poller.formats, deadLetterQueueUrl: poller.deadLetterQueueUrl }] : []),
    ...(poller.eventBridgeQueue ? [{ url: poller.eventBridgeQueue.url, formats: ['eventbridge' as const], deadLetterQueueUrl: poller.eventBridgeQueue.deadLetterQueueUrl }] : []),
  ];
  if (queues.length === 0) throw new ConfigError(['SQS_QUEUE_URL: required by the notification poller (or SQS_EVENTBRIDGE_QUEUE_URL)']);
  if (queues.length === 2 && queues[0]!.url === queues[1]!.url) {
    throw new ConfigError(['SQS_EVENTBRIDGE_QUEUE_URL: must be another queue than SQS_QUEUE_URL (add eventbridge to SQS_QUEUE_FORMATS instead)']);
  }
  return queues;
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
    return version === 0 || rest.length > 0 || (bits !== undefined && !(/^[0-9]+$/.test(bits) && Number(bits) <= maxBits));
  });
  if (bad.length > 0) {
    throw new ConfigError([`TRUST_PROXY: a hop count, or addresses and CIDR ranges of the load balancers, comma-separated (not: ${bad.join(', ')})`]);
  }
  return value;
}

export function loadServiceConfig(env: Env = process.env): ServiceConfig {
  const parsed = parseEnv(serviceEnvSchema, env);
  const temporal = temporalFrom(env, parsed);
  if ('problems' in temporal) throw new ConfigError(temporal.problems);
  if (parsed.API_HEADERS_TIMEOUT_SECONDS > parsed.API_REQUEST_TIMEOUT_SECONDS) {
    throw new ConfigError(['API_HEADERS_TIMEOUT_SECONDS: must not exceed API_REQUEST_TIMEOUT_SECONDS (the headers are part of the request)']);
  }
  return {
    logLevel: parsed.LOG_LEVEL,
    api: {
      host: parsed.API_HOST,
      port: parsed.API_PORT,
      publicBaseUrl: parsed.PUBLIC_BASE_URL ?? `http://localhost:${parsed.API_PORT}`,
    },
    temporal: temporal.temporal,
    mongo: { uri: parsed.MONGODB_URI, database: parsed.MONGODB_DATABASE },
    aws: {
      region: parsed.AWS_REGION,
      endpoints: {
        sqs: parsed.AWS_ENDPOINT_URL_SQS,
        sns: parsed.AWS_ENDPOINT_URL_SNS,
        metering: parsed.AWS_ENDPOINT_URL_MARKETPLACE_METERING,
      },
    },
    sqs: { queueUrl: parsed.SQS_QUEUE_URL, waitTimeSeconds: parsed.SQS_WAIT_TIME_SECONDS, maxMessages: parsed.SQS_MAX_MESSAGES },
    poller: {
      deadLetterQueueUrl: parsed.SQS_DEAD_LETTER_QUEUE_URL,
      formats: [...new Set(listOf(parsed.SQS_QUEUE_FORMATS))] as QueueFormat[],
      eventBridgeQueue: parsed.SQS_EVENTBRIDGE_QUEUE_URL
        ? { url: parsed.SQS_EVENTBRIDGE_QUEUE_URL, deadLetterQueueUrl: parsed.SQS_EVENTBRIDGE_DEAD_LETTER_QUEUE_URL }
        : undefined,
      receivers: parsed.POLLER_RECEIVERS,
      maxInFlight: parsed.POLLER_MAX_IN_FLIGHT,
      shutdownTimeoutMs: parsed.POLLER_SHUTDOWN_TIMEOUT_SECONDS * 1000,
      metrics: { host: parsed.POLLER_METRICS_HOST, port: parsed.POLLER_METRICS_PORT },
      topicArns: listOf(parsed.SNS_TOPIC_ARN),
      verifySignatures: parsed.SNS_VERIFY_SIGNATURES,
      trustedCertUrls: listOf(parsed.SNS_TRUSTED_CERT_URLS),
    },
    session: {
      signingKeys: [parsed.SESSION_SIGNING_KEY, parsed.SESSION_SIGNING_KEY_PREVIOUS].filter((key): key is string => Boolean(key)),
      ttlSeconds: parsed.SESSION_TTL_SECONDS,
    },
    linking: { codeTtlSeconds: parsed.LINK_CODE_TTL_SECONDS, syncTimeoutMs: parsed.LINK_SYNC_TIMEOUT_SECONDS * 1000 },
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
    metering: {
      dimensions: dimensionsFrom(parsed.METERING_DIMENSIONS),
      ratePerSecond: parsed.METERING_RATE_PER_SECOND,
      concurrency: parsed.METERING_CONCURRENCY,
      pageSize: parsed.METERING_PAGE_SIZE,
      schedule: { enabled: parsed.METERING_SCHEDULE, offsetMinutes: parsed.METERING_SCHEDULE_OFFSET_MINUTES },
    },
    deploymentsApi: { url: parsed.DEPLOYMENTS_API_URL, token: parsed.DEPLOYMENTS_API_TOKEN },
    cancellation: { gracePeriodMs: parsed.CANCELLATION_GRACE_SECONDS * 1000 },
    workerMetrics: { host: parsed.WORKER_METRICS_HOST, port: parsed.WORKER_METRICS_PORT },
    retention: { schedule: parsed.RETENTION_SCHEDULE, meteringLedgerDays: parsed.METERING_LEDGER_RETENTION_DAYS },
    tracing: { exporter: parsed.OTEL_TRACES_EXPORTER, protocol: parsed.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? parsed.OTEL_EXPORTER_OTLP_PROTOCOL },
  };
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
export const AWS_SDK_ENV_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'] as const;
