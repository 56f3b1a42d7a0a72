/**
 * Issue 12, point 9 (the rules): with real AWS endpoints or an https public
 * URL, every setting that is only safe locally is refused by name.
 * test/security/ starts the built api, worker and poller with them.
 */
import { enforceProductionGuard, productionGuard, type ServiceRole } from '../../../lib/production-guard';
import {
  LOCAL_ENDPOINTS as local,
  STRONG_KEY,
  UNSAFE_NAMES,
  UNSAFE_ON_REAL_AWS,
} from '../../fixtures/production-settings';

const guard = (env: Record<string, string>, role: ServiceRole = 'api') => productionGuard(env, role);

describe('issue 12 point 9: production guard (the rules)', () => {
  it('counts a process as production when it calls real AWS, or when the public URL is https', () => {
    expect(guard({}, 'api').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')]);
    expect(guard({}, 'worker').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')]);
    expect(guard({}, 'poller').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_SQS')]);
    // A VPC endpoint or a regional AWS URL is still AWS.
    expect(
      guard({ AWS_ENDPOINT_URL_SQS: 'https://vpce-0a1b.sqs.us-east-1.vpce.amazonaws.com' }, 'poller').production,
    ).toHaveLength(1);
    // So are the SDK's dual-stack and European sovereign domains, and a host written with the root's trailing dot.
    for (const endpoint of [
      'https://metering-marketplace.us-east-1.api.aws',
      'https://metering.marketplace.us-east-1.amazonaws.com.',
      'https://metering.marketplace.eusc-de-east-1.amazonaws.eu',
    ]) {
      expect([endpoint, guard({ AWS_ENDPOINT_URL_MARKETPLACE_METERING: endpoint }, 'api').production]).toEqual([
        endpoint,
        [expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')],
      ]);
    }
    expect(guard(local, 'api').production).toEqual([]);
    expect(guard({ ...local, PUBLIC_BASE_URL: 'https://billing.example.com' }, 'api').production).toEqual([
      expect.stringContaining('PUBLIC_BASE_URL'),
    ]);
  });

  it('names every unsafe setting in production', () => {
    const verdict = guard(UNSAFE_ON_REAL_AWS, 'api');
    for (const name of [...UNSAFE_NAMES, 'PUBLIC_BASE_URL'])
      expect(verdict.unsafe).toContainEqual(expect.stringMatching(new RegExp(`^${name}`)));
    expect(verdict.unsafe).toHaveLength(UNSAFE_NAMES.length + 1);
    // Only the http:// certificate URL is named, not the https one beside it.
    const certs = verdict.unsafe.find((line) => line.startsWith('SNS_TRUSTED_CERT_URLS'))!;
    expect(certs).toContain('http://certs.example.net/sns.pem');
    expect(certs).not.toContain('https://sns.example.net/ok.pem');
    // The secret itself is never repeated in the message.
    expect(verdict.unsafe.join('\n')).not.toContain('changeme');
  });

  it.each([
    ['unset', {}],
    ['localhost', { PUBLIC_BASE_URL: 'https://localhost:3000' }],
    ['127.0.0.1', { PUBLIC_BASE_URL: 'https://127.0.0.1' }],
    ['::1', { PUBLIC_BASE_URL: 'https://[::1]:3000' }],
    ['http://', { PUBLIC_BASE_URL: 'http://billing.example.com' }],
  ])('refuses PUBLIC_BASE_URL %s for the API against real AWS', (_case, env) => {
    const verdict = guard({ ...env, SESSION_SIGNING_KEY: STRONG_KEY }, 'api');
    expect(verdict.unsafe).toEqual([expect.stringMatching(/^PUBLIC_BASE_URL/)]);
  });

  it('leaves PUBLIC_BASE_URL to the API: the worker and the poller never use it', () => {
    expect(guard({}, 'worker').unsafe).toEqual([]);
    expect(guard({}, 'poller').unsafe).toEqual([]);
  });

  it.each([
    ['one repeated character', 'k'.repeat(40)],
    ['almost one character', `${'a'.repeat(39)}b`],
    ['a short sequence repeated', 'Zx8#Kp2!'.repeat(5)],
    ['a well-known placeholder', 'changemechangemechangemechangeme'],
    ['a placeholder', 'my-very-own-session-signing-key-for-billing'],
  ])('refuses a session key that is %s', (_case, key) => {
    expect(guard({ PUBLIC_BASE_URL: 'https://billing.example.com', SESSION_SIGNING_KEY: key }, 'api').unsafe).toEqual([
      expect.stringMatching(/^SESSION_SIGNING_KEY:/),
    ]);
    expect(
      guard(
        {
          PUBLIC_BASE_URL: 'https://billing.example.com',
          SESSION_SIGNING_KEY: STRONG_KEY,
          SESSION_SIGNING_KEY_PREVIOUS: key,
        },
        'api',
      ).unsafe,
    ).toEqual([expect.stringMatching(/^SESSION_SIGNING_KEY_PREVIOUS:/)]);
  });

  it('accepts a safe production configuration', () => {
    // EventBridge has no signature to give up: its queue policy is its trust (README), so it is not refused.
    const env = {
      PUBLIC_BASE_URL: 'https://billing.example.com',
      SESSION_SIGNING_KEY: STRONG_KEY,
      SIGN_IN_URL: 'https://platform.example.com/login',
      SQS_QUEUE_FORMATS: 'sns,eventbridge',
    };
    for (const role of ['api', 'worker', 'poller'] as const) expect(guard(env, role).unsafe).toEqual([]);
    // 32 random hex characters (128 bits) are strong enough.
    expect(guard({ ...env, SESSION_SIGNING_KEY: '9f86d081884c7d659a2feaa0c55ad015' }, 'api').unsafe).toEqual([]);
  });

  it('lets the local stack be: nothing is checked without real AWS or an https URL', () => {
    const verdict = guard(
      { ...local, DEMO_ACCOUNTS: 'true', SNS_TRUSTED_CERT_URLS: 'http://localhost:4580/sns/signing-certificate.pem' },
      'api',
    );
    expect(verdict).toEqual({ production: [], unsafe: [], waived: false });
    expect(() => enforceProductionGuard({ ...local, DEMO_ACCOUNTS: 'true' }, 'api', () => undefined)).not.toThrow();
  });

  it('throws one ConfigError naming every unsafe setting and why the deployment is production', () => {
    let error: Error | undefined;
    try {
      enforceProductionGuard(UNSAFE_ON_REAL_AWS, 'api', () => undefined);
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.name).toBe('ConfigError');
    for (const name of [...UNSAFE_NAMES, 'PUBLIC_BASE_URL', 'AWS_ENDPOINT_URL_MARKETPLACE_METERING'])
      expect(error?.message).toContain(name);
  });

  it('ALLOW_UNSAFE_STAGING_SETTINGS waives the settings on an https staging site, loudly, naming each', () => {
    const env = {
      ...local,
      PUBLIC_BASE_URL: 'https://staging.example.com',
      DEMO_ACCOUNTS: 'true',
      SNS_VERIFY_SIGNATURES: 'false',
      ALLOW_UNSAFE_STAGING_SETTINGS: 'true',
    };
    const warnings: string[] = [];
    expect(() => enforceProductionGuard(env, 'api', (line) => warnings.push(line))).not.toThrow();
    const logged = warnings.join('\n');
    expect(logged).toContain('ALLOW_UNSAFE_STAGING_SETTINGS');
    expect(logged).toContain('DEMO_ACCOUNTS');
    expect(logged).toContain('SNS_VERIFY_SIGNATURES');
    // Without the switch the same settings are refused.
    const refused = Object.fromEntries(
      Object.entries(env).filter(([name]) => name !== 'ALLOW_UNSAFE_STAGING_SETTINGS'),
    );
    expect(() => enforceProductionGuard(refused, 'api', () => undefined)).toThrow(
      /DEMO_ACCOUNTS[\s\S]*SNS_VERIFY_SIGNATURES/,
    );
  });

  it('ALLOW_UNSAFE_STAGING_SETTINGS is refused against real AWS: real money never runs with unsafe settings', () => {
    const env = { ...UNSAFE_ON_REAL_AWS, ALLOW_UNSAFE_STAGING_SETTINGS: 'true' };
    expect(productionGuard(env, 'api').waived).toBe(false);
    expect(() => enforceProductionGuard(env, 'api', () => undefined)).toThrow(
      /ALLOW_UNSAFE_STAGING_SETTINGS[\s\S]*real AWS/,
    );
  });
});
