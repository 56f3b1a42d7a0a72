import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ensureSigningKey } from '../../sandbox/sns-signing';
import type { AwsConfig, TemporalConfig } from '../../lib/config';
import { loadPollerConfig, type PollerConfig } from '../../poller/config';

/** Variables through which global-setup tells each test file where its servers are. */
export const TEST_ENV = {
  mongoUri: 'TEST_MONGODB_URI',
  awsEndpoint: 'TEST_AWS_ENDPOINT',
  temporalAddress: 'TEST_TEMPORAL_ADDRESS',
  temporalNamespace: 'TEST_TEMPORAL_NAMESPACE',
  runDir: 'TEST_RUN_DIR',
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through jest (global-setup starts the servers)`);
  return value;
}

/** A name no other test in this run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export const testServers = {
  mongoUri: () => required(TEST_ENV.mongoUri),
  awsEndpoint: () => required(TEST_ENV.awsEndpoint),
  temporal: (taskQueue = uniqueName('tq')): TemporalConfig => ({
    address: required(TEST_ENV.temporalAddress),
    namespace: required(TEST_ENV.temporalNamespace),
    taskQueue,
  }),
  /** The sandbox's SNS signing key and certificate, made by global-setup. */
  snsSigningKey: () => ensureSigningKey(join(required(TEST_ENV.runDir), 'sns-signing')),
  aws: (): AwsConfig => {
    const endpoint = required(TEST_ENV.awsEndpoint);
    return { region: 'us-east-1', endpoints: { sqs: endpoint, sns: endpoint } };
  },
};

/** The poller's settings for tests: its defaults, with a short shutdown and any free metrics port. */
export function testPollerConfig(overrides: Partial<PollerConfig> = {}): PollerConfig {
  return {
    ...loadPollerConfig({}).poller,
    shutdownTimeoutMs: 10_000,
    metrics: { host: '127.0.0.1', port: 0 },
    ...overrides,
  };
}
