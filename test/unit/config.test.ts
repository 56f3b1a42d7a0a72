import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiEnvSchema, loadApiConfig, requireApiConfig } from '../../api/config';
import { ConfigError, loadSandboxConfig } from '../../lib/config';
import { loadPollerConfig, pollerEnvSchema, requireQueues } from '../../poller/config';
import { loadWorkerConfig, workerEnvSchema } from '../../worker/config';

const processes = {
  api: { load: loadApiConfig, reads: new Set(Object.keys(apiEnvSchema.properties)) },
  worker: { load: loadWorkerConfig, reads: new Set(Object.keys(workerEnvSchema.properties)) },
  poller: { load: loadPollerConfig, reads: new Set(Object.keys(pollerEnvSchema.properties)) },
};
const readersOf = (name: string) => Object.entries(processes).filter(([, { reads }]) => reads.has(name));

describe('configuration', () => {
  it('has working defaults: real AWS endpoints, local Temporal and MongoDB', () => {
    const config = loadApiConfig({});
    expect(config.api).toEqual({ host: '127.0.0.1', port: 3000, publicBaseUrl: 'http://localhost:3000' });
    // Plaintext, no API key: a local dev server.
    expect(config.temporal).toEqual({
      address: 'localhost:7233',
      namespace: 'default',
      taskQueue: 'marketplace-billing',
    });
    expect(config.aws.endpoints).toEqual({ metering: undefined });
    expect(loadWorkerConfig({}).aws.endpoints).toEqual({ metering: undefined });
    expect(loadPollerConfig({}).aws.endpoints).toEqual({ sqs: undefined });
    expect(config.mongo.uri).toBe('mongodb://127.0.0.1:27017/');
  });

  it('converts and validates values', () => {
    const config = loadApiConfig({ API_PORT: '8080', TEMPORAL_TLS: 'true' });
    expect(config.api.port).toBe(8080);
    expect(config.temporal.tls).toBeDefined();
    expect(loadPollerConfig({ AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566' }).aws.endpoints.sqs).toBe(
      'http://127.0.0.1:4566',
    );
    // The workflow cache is bounded by default, not sized by the heap; 0 keeps none.
    expect(loadWorkerConfig({}).maxCachedWorkflows).toBe(500);
    expect(loadWorkerConfig({ WORKER_MAX_CACHED_WORKFLOWS: '0' }).maxCachedWorkflows).toBe(0);
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
    ['TRUST_PROXY', 'yes please'],
    ['WORKER_METRICS_PORT', '0'],
    ['WORKER_MAX_CACHED_WORKFLOWS', 'many'],
  ])('fails on a bad %s in each process that reads it, naming the variable, and nowhere else', (name, value) => {
    const readers = readersOf(name);
    expect(readers.length).toBeGreaterThan(0);
    for (const { load, reads } of Object.values(processes)) {
      if (reads.has(name)) {
        expect(() => load({ [name]: value })).toThrow(ConfigError);
        expect(() => load({ [name]: value })).toThrow(new RegExp(`${name}:`));
      } else {
        expect(() => load({ [name]: value })).not.toThrow();
      }
    }
  });

  it("each process starts on another process's bad variable, which that process refuses", () => {
    // The worker and the poller never listen for buyers; the API never meters or polls.
    expect(loadWorkerConfig({ API_PORT: 'abc' }).temporal.taskQueue).toBe('marketplace-billing');
    expect(loadPollerConfig({ API_PORT: 'abc', METERING_PAGE_SIZE: '0' }).poller.receivers).toBe(2);
    expect(() => loadApiConfig({ API_PORT: 'abc' })).toThrow(/API_PORT:/);
    expect(
      loadApiConfig({ METERING_DIMENSIONS: 'nonsense', SQS_MAX_MESSAGES: '99', POLLER_MAX_IN_FLIGHT: '1' }).api.port,
    ).toBe(3000);
    expect(() => loadWorkerConfig({ METERING_DIMENSIONS: 'nonsense' })).toThrow(/METERING_DIMENSIONS:/);
    expect(() => loadPollerConfig({ SQS_MAX_MESSAGES: '99' })).toThrow(/SQS_MAX_MESSAGES:/);
    expect(
      loadWorkerConfig({ SQS_MAX_MESSAGES: '99', TRUST_PROXY: 'yes please', LINK_CODE_TTL_SECONDS: '5' }).metering
        .pageSize,
    ).toBe(1000);
  });

  it('shares the variables every process reads, and validates them in each', () => {
    for (const [name, value] of [
      ['LOG_LEVEL', 'loud'],
      ['MONGODB_URI', 'postgres://x'],
      ['TEMPORAL_TLS', 'maybe'],
      ['OTEL_TRACES_EXPORTER', 'jaeger'],
      ['CANCELLATION_GRACE_SECONDS', '0'],
    ] as const) {
      expect(readersOf(name).map(([process]) => process)).toEqual(['api', 'worker', 'poller']);
      for (const { load } of Object.values(processes))
        expect(() => load({ [name]: value })).toThrow(new RegExp(`^Invalid configuration:\\n  ${name}:`));
    }
  });

  it('treats a Temporal Cloud API key as implying TLS', () => {
    const config = loadWorkerConfig({ TEMPORAL_API_KEY: 'secret-key', TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233' });
    expect(config.temporal.apiKey).toBe('secret-key');
    expect(config.temporal.tls).toBeDefined();
  });

  it('reads the standard mTLS variables: certificate and key together, every file readable', () => {
    expect(() => loadWorkerConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/x.pem' })).toThrow(
      /TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/,
    );
    expect(() =>
      loadWorkerConfig({
        TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/c.pem',
        TEMPORAL_TLS_CLIENT_KEY_PATH: '/nonexistent/k.pem',
      }),
    ).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read "\/nonexistent\/c.pem" \(ENOENT\)/);
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'c.pem'), 'cert');
    writeFileSync(join(dir, 'k.pem'), 'key');
    writeFileSync(join(dir, 'ca.pem'), 'ca');
    expect(() =>
      loadWorkerConfig({
        TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'c.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'k.pem'),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'none.pem'),
      }),
    ).toThrow(/TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read/);
    const config = loadWorkerConfig({
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'c.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'k.pem'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(config.temporal.tls).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from('ca'),
      clientCertPair: { crt: Buffer.from('cert'), key: Buffer.from('key') },
    });
    const inline = loadWorkerConfig({ TEMPORAL_TLS_CLIENT_CERT_DATA: 'cert', TEMPORAL_TLS_CLIENT_KEY_DATA: 'key' });
    expect(inline.temporal.tls).toMatchObject({
      clientCertPair: { crt: Buffer.from('cert'), key: Buffer.from('key') },
    });
  });

  it('names the variables it read before the standard ones, rather than ignoring them', () => {
    for (const [old, standard] of [
      ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH'],
      ['TEMPORAL_TLS_KEY_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'],
      ['TEMPORAL_TLS_CA_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'],
    ]) {
      expect(() => loadWorkerConfig({ [old!]: '/etc/temporal/x.pem' })).toThrow(
        new RegExp(`${old}: no longer read; set ${standard}`),
      );
    }
    expect(() => loadWorkerConfig({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toThrow(
      /TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: .*TEMPORAL_TLS_SERVER_NAME/,
    );
  });

  describe('a profile file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'temporal.toml');
    writeFileSync(
      file,
      `[profile.default]
address = "temporal.internal:7233"
namespace = "billing"

[profile.cloud]
address = "billing.acct.tmprl.cloud:7233"
namespace = "billing.acct"
api_key = "key-from-file"

[profile.cloud.grpc_meta]
x-team = "billing"
`,
    );

    it('reads the default profile, or the one TEMPORAL_PROFILE names, under the variables', () => {
      expect(loadWorkerConfig({ TEMPORAL_CONFIG_FILE: file }).temporal).toEqual({
        address: 'temporal.internal:7233',
        namespace: 'billing',
        taskQueue: 'marketplace-billing',
      });
      expect(loadWorkerConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' }).temporal).toEqual({
        address: 'billing.acct.tmprl.cloud:7233',
        namespace: 'billing.acct',
        taskQueue: 'marketplace-billing',
        apiKey: 'key-from-file',
        tls: true,
        metadata: { 'x-team': 'billing' },
      });
      const overridden = loadWorkerConfig({
        TEMPORAL_CONFIG_FILE: file,
        TEMPORAL_PROFILE: 'cloud',
        TEMPORAL_NAMESPACE: 'other.acct',
        TEMPORAL_GRPC_META_X_TEAM: 'ops',
      });
      expect(overridden.temporal).toMatchObject({
        namespace: 'other.acct',
        apiKey: 'key-from-file',
        metadata: { 'x-team': 'ops' },
      });
      // Empty is unset, as for every other variable.
      expect(loadWorkerConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_ADDRESS: ' ' }).temporal.address).toBe(
        'temporal.internal:7233',
      );
    });

    it('fails naming the variable: no such file, a profile it lacks, a file that is not valid', () => {
      expect(() => loadWorkerConfig({ TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') })).toThrow(
        /TEMPORAL_CONFIG_FILE: no such file/,
      );
      expect(() => loadWorkerConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })).toThrow(
        /TEMPORAL_PROFILE: Profile 'staging' not found/,
      );
      const broken = join(dir, 'broken.toml');
      writeFileSync(broken, '[profile.default]\napi_key = "secret-api-key\n');
      expect(() => loadWorkerConfig({ TEMPORAL_CONFIG_FILE: broken })).toThrow(
        /TEMPORAL_CONFIG_FILE: Invalid TOML document: .* \(line 2\)$/,
      );
      // The parser quotes the faulty line; a key on it must not reach the logs.
      expect(() => loadWorkerConfig({ TEMPORAL_CONFIG_FILE: broken })).not.toThrow(/secret-api-key/);
      const misspelt = join(dir, 'misspelt.toml');
      writeFileSync(misspelt, '[profile.default]\nadress = "temporal.internal:7233"\n');
      expect(() => loadWorkerConfig({ TEMPORAL_CONFIG_FILE: misspelt })).toThrow(
        /TEMPORAL_CONFIG_FILE: .*unrecognized.*adress/,
      );
    });
  });

  it('reports every bad variable at once', () => {
    try {
      loadApiConfig({ API_PORT: '0', PUBLIC_BASE_URL: 'nope' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as ConfigError).problems).toHaveLength(2);
    }
  });

  it('accepts a session key and a previous one for rotation, and never echoes a key it rejects', () => {
    const current = 'c'.repeat(40);
    const previous = 'p'.repeat(40);
    const config = loadApiConfig({
      SESSION_SIGNING_KEY: current,
      SESSION_SIGNING_KEY_PREVIOUS: previous,
      LINK_SYNC_TIMEOUT_SECONDS: '90',
      SIGN_IN_URL: 'https://platform.example/login',
    });
    expect(requireApiConfig(config)).toEqual([current, previous]);
    expect(config.linking.syncTimeoutMs).toBe(90_000);
    try {
      loadApiConfig({ SESSION_SIGNING_KEY: 'short-secret' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as ConfigError).message).toMatch(/SESSION_SIGNING_KEY:/);
      expect((error as ConfigError).message).not.toContain('short-secret');
    }
  });

  it('names what the API and the poller cannot run without', () => {
    const config = loadApiConfig({});
    expect(() => requireApiConfig(config)).toThrow(/SESSION_SIGNING_KEY: required by the API/);
    const keyed = loadApiConfig({ SESSION_SIGNING_KEY: 'k'.repeat(40) });
    expect(() => requireApiConfig(keyed)).toThrow(/SIGN_IN_URL: set it to the platform's sign-in page/);
    expect(
      requireApiConfig(loadApiConfig({ SESSION_SIGNING_KEY: 'k'.repeat(40), DEMO_ACCOUNTS: 'true' })),
    ).toHaveLength(1);
    expect(() => requireQueues(loadPollerConfig({}))).toThrow(/SQS_QUEUE_URL: required by the notification poller/);
  });

  it('reads only signed SNS envelopes unless a queue is configured for more', () => {
    const queue = 'http://sqs.local/123456789012/notifications';
    const events = 'http://sqs.local/123456789012/events';
    expect(requireQueues(loadPollerConfig({ SQS_QUEUE_URL: queue }))).toEqual([{ url: queue, formats: ['sns'] }]);
    expect(
      requireQueues(
        loadPollerConfig({ SQS_QUEUE_URL: queue, SQS_QUEUE_FORMATS: 'sns,sns-raw', SQS_EVENTBRIDGE_QUEUE_URL: events }),
      ),
    ).toEqual([
      { url: queue, formats: ['sns', 'sns-raw'] },
      { url: events, formats: ['eventbridge'] },
    ]);
    expect(requireQueues(loadPollerConfig({ SQS_EVENTBRIDGE_QUEUE_URL: events }))).toEqual([
      { url: events, formats: ['eventbridge'] },
    ]);
    expect(() => loadPollerConfig({ SQS_QUEUE_FORMATS: 'sns,json' })).toThrow(/SQS_QUEUE_FORMATS/);
    expect(() => requireQueues(loadPollerConfig({ SQS_QUEUE_URL: queue, SQS_EVENTBRIDGE_QUEUE_URL: queue }))).toThrow(
      /must be another queue/,
    );
  });

  it("maps platform metrics to AWS dimensions, with a default rate just under AWS's quota of 10 a second", () => {
    expect(loadWorkerConfig({}).metering).toMatchObject({
      dimensions: { session_hours: 'session_hours', traffic_gb: 'traffic_gb' },
      ratePerSecond: 9.7,
      schedule: { enabled: true, offsetMinutes: 5 },
    });
    expect(
      loadWorkerConfig({ METERING_DIMENSIONS: 'sessions=SessionHours,bytes_gb=TrafficGB' }).metering.dimensions,
    ).toEqual({
      sessions: 'SessionHours',
      bytes_gb: 'TrafficGB',
    });
  });

  it('defaults the cancellation grace period to 3 days and the deployments to MongoDB', () => {
    expect(loadWorkerConfig({}).cancellation.gracePeriodMs).toBe(3 * 24 * 3_600_000);
    expect(loadWorkerConfig({}).deploymentsApi).toEqual({ url: undefined, token: undefined });
    expect(loadWorkerConfig({ CANCELLATION_GRACE_SECONDS: '120' }).cancellation.gracePeriodMs).toBe(120_000);
    const poller = loadPollerConfig({
      SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:1:a,arn:aws:sns:us-east-1:1:b',
      SNS_TRUSTED_CERT_URLS: 'http://sandbox:4580/c.pem',
    }).poller;
    expect(poller).toMatchObject({
      topicArns: ['arn:aws:sns:us-east-1:1:a', 'arn:aws:sns:us-east-1:1:b'],
      trustedCertUrls: ['http://sandbox:4580/c.pem'],
      verifySignatures: true,
      maxInFlight: 50,
      receivers: 2,
    });
    // Signatures are verified unless switched off explicitly.
    expect(loadPollerConfig({}).poller).toMatchObject({ verifySignatures: true, topicArns: [], trustedCertUrls: [] });
  });

  it('validates the sandbox variables the same way', () => {
    expect(loadSandboxConfig({}).quotaRps).toBe(10);
    expect(() => loadSandboxConfig({ SANDBOX_QUOTA_RPS: '0' })).toThrow(/SANDBOX_QUOTA_RPS/);
  });
});
