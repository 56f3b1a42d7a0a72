/** The worker's variables, and only those: a bad value meant for the API or the poller does not stop it. */
import {
  commonConfigFrom,
  commonEnv,
  meteringEndpointEnv,
  meteringEnv,
  meteringFrom,
  NonEmpty,
  parseEnv,
  retentionEnv,
  subscriptionEnv,
  subscriptionSettingsFrom,
  Url,
  type AwsConfig,
  type CommonConfig,
  type Env,
  type MeteringConfig,
  type RetentionConfig,
  type SubscriptionSettings,
} from '../lib/config';
import { Type } from '../lib/schema';

/** Every variable the worker reads, with its default. The README documents each one. */
export const workerEnvSchema = Type.Object({
  ...commonEnv,
  ...meteringEndpointEnv,
  ...subscriptionEnv,
  ...meteringEnv,
  ...retentionEnv,
  DEPLOYMENTS_API_URL: Type.Optional(Url),
  DEPLOYMENTS_API_TOKEN: Type.Optional(NonEmpty()),
  WORKER_METRICS_HOST: NonEmpty('127.0.0.1'),
  WORKER_METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  /**
   * How many workflow runs the worker keeps in memory between their tasks. The SDK's default grows with the heap
   * limit (about 2,400 on a 4 GB heap) at roughly 0.65 MB each, so thousands of subscriptions waiting on their
   * grace-period timer would hold over 1.5 GB; a run not kept replays its history at its next task. 0: none kept.
   */
  WORKER_MAX_CACHED_WORKFLOWS: Type.Integer({ minimum: 0, maximum: 100_000, default: 500 }),
});

export interface WorkerConfig extends CommonConfig, SubscriptionSettings {
  /** BatchMeterUsage's endpoint; unset: real AWS. */
  aws: AwsConfig;
  metering: MeteringConfig;
  /** lib/store/retention.ts: the schedule, and how long the metering ledger is kept. */
  retention: RetentionConfig;
  /** Unset URL: the deployments in MongoDB. */
  deploymentsApi: { url?: string; token?: string };
  /** The Prometheus endpoint (Temporal SDK metrics and the subscription workflow's counters); no port: none. */
  workerMetrics: { host: string; port?: number };
  /** The SDK's sticky workflow cache (`maxCachedWorkflows`). */
  maxCachedWorkflows: number;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const parsed = parseEnv(workerEnvSchema, env);
  return {
    ...commonConfigFrom(env, parsed),
    ...subscriptionSettingsFrom(parsed),
    aws: { region: parsed.AWS_REGION, endpoints: { metering: parsed.AWS_ENDPOINT_URL_MARKETPLACE_METERING } },
    metering: meteringFrom(parsed),
    retention: { schedule: parsed.RETENTION_SCHEDULE, meteringLedgerDays: parsed.METERING_LEDGER_RETENTION_DAYS },
    deploymentsApi: { url: parsed.DEPLOYMENTS_API_URL, token: parsed.DEPLOYMENTS_API_TOKEN },
    workerMetrics: { host: parsed.WORKER_METRICS_HOST, port: parsed.WORKER_METRICS_PORT },
    maxCachedWorkflows: parsed.WORKER_MAX_CACHED_WORKFLOWS,
  };
}
