import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadSandboxConfig, loadServiceConfig, requireQueues, requireApiConfig } from '../lib/config';

describe('configuration', () => {
  it('has working defaults: real AWS endpoints, local Temporal and MongoDB', () => {
    const config = loadServiceConfig({});
    expect(config.api).toEqual({ host: '127.0.0.1', port: 3000, publicBaseUrl: 'http://localhost:3000' });
    expect(config.temporal).toMatchObject({ address: 'localhost:7233', namespace: 'default', taskQueue: 'marketplace-billing', tls: undefined });
    expect(config.aws.endpoints).toEqual({ sqs: undefined, sns: undefined, metering: undefined });
    expect(config.mongo.uri).toBe('mongodb://127.0.0.1:27017/');
  });

  it('converts and validates values', () => {
    const config = loadServiceConfig({ API_PORT: '8080', TEMPORAL_TLS: 'true', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566' });
    expect(config.api.port).toBe(8080);
    expect(config.temporal.tls).toBeDefined();
    expect(config.aws.endpoints.sqs).toBe('http://127.0.0.1:4566');
  });

  it.each([
    ['API_PORT', 'eighty'],
    ['API_PORT', '70000'],
    ['MONGODB_URI', 'postgres://x'],
    ['AWS_ENDPOINT_URL_SQS', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['TEMPORAL_TLS', 'maybe'],
    ['LINK_CODE_TTL_SECONDS', '5'],
    ['SQS_MAX_MESSAGES', '11'],
    ['SQS_WAIT_TIME_SECONDS', '21'],
    ['METERING_DIMENSIONS', 'session_hours'],
    ['METERING_RATE_PER_SECOND', '0'],
    ['METERING_PAGE_SIZE', '0'],
    ['CANCELLATION_GRACE_SECONDS', '0'],
    ['DEPLOYMENTS_API_URL', 'not a url'],
    ['SNS_TOPIC_ARN', 'my-topic'],
    ['SNS_TRUSTED_CERT_URLS', 'ftp://example.com/cert.pem'],
    ['SNS_VERIFY_SIGNATURES', 'maybe'],
    ['POLLER_MAX_IN_FLIGHT', '5'],
    ['SQS_DEAD_LETTER_QUEUE_URL', 'dlq'],
  ])('fails on a bad %s, naming the variable', (name, value) => {
    expect(() => loadServiceConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadServiceConfig({ [name]: value })).toThrow(new RegExp(`${name}:`));
  });

  it('treats a Temporal Cloud API key as implying TLS', () => {
    const config = loadServiceConfig({ TEMPORAL_API_KEY: 'secret-key', TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233' });
    expect(config.temporal.apiKey).toBe('secret-key');
    expect(config.temporal.tls).toBeDefined();
  });

  it('requires the mTLS certificate and key together, and readable', () => {
    expect(() => loadServiceConfig({ TEMPORAL_TLS_CERT_PATH: '/x.pem' })).toThrow(/TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH/);
    expect(() => loadServiceConfig({ TEMPORAL_TLS_CERT_PATH: '/nonexistent/c.pem', TEMPORAL_TLS_KEY_PATH: '/nonexistent/k.pem' })).toThrow(
      /TEMPORAL_TLS_CERT_PATH: cannot read/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'c.pem'), 'cert');
    writeFileSync(join(dir, 'k.pem'), 'key');
    const config = loadServiceConfig({ TEMPORAL_TLS_CERT_PATH: join(dir, 'c.pem'), TEMPORAL_TLS_KEY_PATH: join(dir, 'k.pem') });
    expect(config.temporal.tls?.clientCertPem?.toString()).toBe('cert');
  });

  it('reports every bad variable at once', () => {
    try {
      loadServiceConfig({ API_PORT: '0', SQS_QUEUE_URL: 'nope' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as ConfigError).problems).toHaveLength(2);
    }
  });

  it('accepts a session key and a previous one for rotation, and never echoes a key it rejects', () => {
    const current = 'c'.repeat(40);
    const previous = 'p'.repeat(40);
    const config = loadServiceConfig({
      SESSION_SIGNING_KEY: current,
      SESSION_SIGNING_KEY_PREVIOUS: previous,
      LINK_SYNC_TIMEOUT_SECONDS: '90',
      SIGN_IN_URL: 'https://platform.example/login',
    });
    expect(requireApiConfig(config)).toEqual([current, previous]);
    expect(config.linking.syncTimeoutMs).toBe(90_000);
    try {
      loadServiceConfig({ SESSION_SIGNING_KEY: 'short-secret' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as ConfigError).message).toMatch(/SESSION_SIGNING_KEY:/);
      expect((error as ConfigError).message).not.toContain('short-secret');
    }
  });

  it('names what the API and the poller cannot run without', () => {
    const config = loadServiceConfig({});
    expect(() => requireApiConfig(config)).toThrow(/SESSION_SIGNING_KEY: required by the API/);
    const keyed = loadServiceConfig({ SESSION_SIGNING_KEY: 'k'.repeat(40) });
    expect(() => requireApiConfig(keyed)).toThrow(/SIGN_IN_URL: set it to the platform's sign-in page/);
    expect(requireApiConfig(loadServiceConfig({ SESSION_SIGNING_KEY: 'k'.repeat(40), DEMO_ACCOUNTS: 'true' }))).toHaveLength(1);
    expect(() => requireQueues(config)).toThrow(/SQS_QUEUE_URL: required by the notification poller/);
  });

  it('reads only signed SNS envelopes unless a queue is configured for more', () => {
    const queue = 'http://sqs.local/123456789012/notifications';
    const events = 'http://sqs.local/123456789012/events';
    expect(requireQueues(loadServiceConfig({ SQS_QUEUE_URL: queue }))).toEqual([{ url: queue, formats: ['sns'] }]);
    expect(requireQueues(loadServiceConfig({ SQS_QUEUE_URL: queue, SQS_QUEUE_FORMATS: 'sns,sns-raw', SQS_EVENTBRIDGE_QUEUE_URL: events }))).toEqual([
      { url: queue, formats: ['sns', 'sns-raw'] },
      { url: events, formats: ['eventbridge'] },
    ]);
    expect(requireQueues(loadServiceConfig({ SQS_EVENTBRIDGE_QUEUE_URL: events }))).toEqual([{ url: events, formats: ['eventbridge'] }]);
    expect(() => loadServiceConfig({ SQS_QUEUE_FORMATS: 'sns,json' })).toThrow(/SQS_QUEUE_FORMATS/);
    expect(() => requireQueues(loadServiceConfig({ SQS_QUEUE_URL: queue, SQS_EVENTBRIDGE_QUEUE_URL: queue }))).toThrow(/must be another queue/);
  });

  it('maps platform metrics to AWS dimensions, with AWS\'s quota as the default rate', () => {
    expect(loadServiceConfig({}).metering).toMatchObject({
      dimensions: { session_hours: 'session_hours', traffic_gb: 'traffic_gb' },
      ratePerSecond: 10,
      schedule: { enabled: true, offsetMinutes: 5 },
    });
    expect(loadServiceConfig({ METERING_DIMENSIONS: 'sessions=SessionHours,bytes_gb=TrafficGB' }).metering.dimensions).toEqual({
      sessions: 'SessionHours',
      bytes_gb: 'TrafficGB',
    });
  });

  it('defaults the cancellation grace period to 3 days and the deployments to MongoDB', () => {
    expect(loadServiceConfig({}).cancellation.gracePeriodMs).toBe(3 * 24 * 3_600_000);
    expect(loadServiceConfig({}).deploymentsApi).toEqual({ url: undefined, token: undefined });
    expect(loadServiceConfig({ CANCELLATION_GRACE_SECONDS: '120' }).cancellation.gracePeriodMs).toBe(120_000);
    const poller = loadServiceConfig({ SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:1:a,arn:aws:sns:us-east-1:1:b', SNS_TRUSTED_CERT_URLS: 'http://sandbox:4580/c.pem' }).poller;
    expect(poller).toMatchObject({ topicArns: ['arn:aws:sns:us-east-1:1:a', 'arn:aws:sns:us-east-1:1:b'], trustedCertUrls: ['http://sandbox:4580/c.pem'], verifySignatures: true, maxInFlight: 50, receivers: 2 });
    // Signatures are verified unless switched off explicitly.
    expect(loadServiceConfig({}).poller).toMatchObject({ verifySignatures: true, topicArns: [], trustedCertUrls: [] });
  });

  it('validates the sandbox variables the same way', () => {
    expect(loadSandboxConfig({}).quotaRps).toBe(10);
    expect(() => loadSandboxConfig({ SANDBOX_QUOTA_RPS: '0' })).toThrow(/SANDBOX_QUOTA_RPS/);
  });
});
