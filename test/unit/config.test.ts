import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadSandboxConfig, loadServiceConfig, requireQueues, requireApiConfig } from '../../lib/config';

describe('configuration', () => {
  it('has working defaults: real AWS endpoints, local Temporal and MongoDB', () => {
    const config = loadServiceConfig({});
    expect(config.api).toEqual({ host: '127.0.0.1', port: 3000, publicBaseUrl: 'http://localhost:3000' });
    // Plaintext, no API key: a local dev server.
    expect(config.temporal).toEqual({ address: 'localhost:7233', namespace: 'default', taskQueue: 'marketplace-billing' });
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

  it('reads the standard mTLS variables: certificate and key together, every file readable', () => {
    expect(() => loadServiceConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/x.pem' })).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/);
    expect(() => loadServiceConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/c.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: '/nonexistent/k.pem' })).toThrow(
      /TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read "\/nonexistent\/c.pem" \(ENOENT\)/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'c.pem'), 'cert');
    writeFileSync(join(dir, 'k.pem'), 'key');
    writeFileSync(join(dir, 'ca.pem'), 'ca');
    expect(() =>
      loadServiceConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'c.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'k.pem'), TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'none.pem') }),
    ).toThrow(/TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read/);
    const config = loadServiceConfig({
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
    const inline = loadServiceConfig({ TEMPORAL_TLS_CLIENT_CERT_DATA: 'cert', TEMPORAL_TLS_CLIENT_KEY_DATA: 'key' });
    expect(inline.temporal.tls).toMatchObject({ clientCertPair: { crt: Buffer.from('cert'), key: Buffer.from('key') } });
  });

  it('names the variables it read before the standard ones, rather than ignoring them', () => {
    for (const [old, standard] of [
      ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH'],
      ['TEMPORAL_TLS_KEY_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'],
      ['TEMPORAL_TLS_CA_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'],
    ]) {
      expect(() => loadServiceConfig({ [old!]: '/etc/temporal/x.pem' })).toThrow(new RegExp(`${old}: no longer read; set ${standard}`));
    }
    expect(() => loadServiceConfig({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toThrow(/TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: .*TEMPORAL_TLS_SERVER_NAME/);
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
      expect(loadServiceConfig({ TEMPORAL_CONFIG_FILE: file }).temporal).toEqual({ address: 'temporal.internal:7233', namespace: 'billing', taskQueue: 'marketplace-billing' });
      expect(loadServiceConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' }).temporal).toEqual({
        address: 'billing.acct.tmprl.cloud:7233',
        namespace: 'billing.acct',
        taskQueue: 'marketplace-billing',
        apiKey: 'key-from-file',
        tls: true,
        metadata: { 'x-team': 'billing' },
      });
      const overridden = loadServiceConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_NAMESPACE: 'other.acct', TEMPORAL_GRPC_META_X_TEAM: 'ops' });
      expect(overridden.temporal).toMatchObject({ namespace: 'other.acct', apiKey: 'key-from-file', metadata: { 'x-team': 'ops' } });
      // Empty is unset, as for every other variable.
      expect(loadServiceConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_ADDRESS: ' ' }).temporal.address).toBe('temporal.internal:7233');
    });

    it('fails naming the variable: no such file, a profile it lacks, a file that is not valid', () => {
      expect(() => loadServiceConfig({ TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') })).toThrow(/TEMPORAL_CONFIG_FILE: no such file/);
      expect(() => loadServiceConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })).toThrow(/TEMPORAL_PROFILE: Profile 'staging' not found/);
      const broken = join(dir, 'broken.toml');
      writeFileSync(broken, '[profile.default]\napi_key = "secret-api-key\n');
      expect(() => loadServiceConfig({ TEMPORAL_CONFIG_FILE: broken })).toThrow(/TEMPORAL_CONFIG_FILE: Invalid TOML document: .* \(line 2\)$/);
      // The parser quotes the faulty line; a key on it must not reach the logs.
      expect(() => loadServiceConfig({ TEMPORAL_CONFIG_FILE: broken })).not.toThrow(/secret-api-key/);
      const misspelt = join(dir, 'misspelt.toml');
      writeFileSync(misspelt, '[profile.default]\nadress = "temporal.internal:7233"\n');
      expect(() => loadServiceConfig({ TEMPORAL_CONFIG_FILE: misspelt })).toThrow(/TEMPORAL_CONFIG_FILE: .*unrecognized.*adress/);
    });
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
