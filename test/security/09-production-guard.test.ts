/**
 * Issue 12, point 9: unsafe production settings. With real AWS endpoints or an
 * https public URL, the api, the worker and the poller refuse to start with a
 * setting that is only safe locally, and name every one of them; the local
 * stack's settings (infra/local.env) still start all three.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureLocalAwsResources } from '../../infra/servers';
import { freePort, portOpen, startProcess, type ManagedProcess } from '../../infra/processes';
import { localEnvValues, stackServiceEnv } from '../../infra/stack-env';
import { enforceProductionGuard, productionGuard, type ServiceRole } from '../../lib/production-guard';
import { TEST_ENV, testServers, uniqueName } from '../helpers/test-env';

const root = join(__dirname, '..', '..');
const node = join(root, 'node_modules', '.bin', 'node');
const scripts: Record<ServiceRole, string> = { api: 'api/server.js', worker: 'worker/main.js', poller: 'poller/main.js' };

/** A key made the way the README says: `openssl rand -base64 48`. */
const STRONG_KEY = 'q3Jv9XyZ0bT1mW8sK2nLpR7cA4dE6fG5hJ0kM1oN3rS9tU2vW4xY6zB8aC0eD2fH';

/** Real AWS (no endpoint overrides) and every unsafe setting at once. */
const UNSAFE_ON_REAL_AWS = {
  DEMO_ACCOUNTS: 'true',
  SNS_VERIFY_SIGNATURES: 'false',
  SNS_TRUSTED_CERT_URLS: 'https://sns.example.net/ok.pem,http://certs.example.net/sns.pem',
  PUBLIC_BASE_URL: 'http://localhost:3000',
  SESSION_SIGNING_KEY: 'changemechangemechangemechangeme',
  SIGN_IN_URL: 'http://platform.example.net/login',
  SQS_QUEUE_FORMATS: 'sns,sns-raw',
  SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/marketplace-notifications',
};
const UNSAFE_NAMES = ['DEMO_ACCOUNTS', 'SNS_VERIFY_SIGNATURES', 'SNS_TRUSTED_CERT_URLS', 'SESSION_SIGNING_KEY', 'SIGN_IN_URL', 'SQS_QUEUE_FORMATS'];

const guard = (env: Record<string, string>, role: ServiceRole = 'api') => productionGuard(env, role);
const local = { AWS_ENDPOINT_URL_MARKETPLACE_METERING: 'http://127.0.0.1:4580', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566' };

describe('issue 12 point 9: production guard (the rules)', () => {
  it('counts a process as production when it calls real AWS, or when the public URL is https', () => {
    expect(guard({}, 'api').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')]);
    expect(guard({}, 'worker').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')]);
    expect(guard({}, 'poller').production).toEqual([expect.stringContaining('AWS_ENDPOINT_URL_SQS')]);
    // A VPC endpoint or a regional AWS URL is still AWS.
    expect(guard({ AWS_ENDPOINT_URL_SQS: 'https://vpce-0a1b.sqs.us-east-1.vpce.amazonaws.com' }, 'poller').production).toHaveLength(1);
    // So are the SDK's dual-stack and European sovereign domains, and a host written with the root's trailing dot.
    for (const endpoint of ['https://metering-marketplace.us-east-1.api.aws', 'https://metering.marketplace.us-east-1.amazonaws.com.', 'https://metering.marketplace.eusc-de-east-1.amazonaws.eu']) {
      expect([endpoint, guard({ AWS_ENDPOINT_URL_MARKETPLACE_METERING: endpoint }, 'api').production]).toEqual([endpoint, [expect.stringContaining('AWS_ENDPOINT_URL_MARKETPLACE_METERING')]]);
    }
    expect(guard(local, 'api').production).toEqual([]);
    expect(guard({ ...local, PUBLIC_BASE_URL: 'https://billing.example.com' }, 'api').production).toEqual([expect.stringContaining('PUBLIC_BASE_URL')]);
  });

  it('names every unsafe setting in production', () => {
    const verdict = guard(UNSAFE_ON_REAL_AWS, 'api');
    for (const name of [...UNSAFE_NAMES, 'PUBLIC_BASE_URL']) expect(verdict.unsafe).toContainEqual(expect.stringMatching(new RegExp(`^${name}`)));
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
    expect(guard({ PUBLIC_BASE_URL: 'https://billing.example.com', SESSION_SIGNING_KEY: STRONG_KEY, SESSION_SIGNING_KEY_PREVIOUS: key }, 'api').unsafe).toEqual([
      expect.stringMatching(/^SESSION_SIGNING_KEY_PREVIOUS:/),
    ]);
  });

  it('accepts a safe production configuration', () => {
    // EventBridge has no signature to give up: its queue policy is its trust (README), so it is not refused.
    const env = { PUBLIC_BASE_URL: 'https://billing.example.com', SESSION_SIGNING_KEY: STRONG_KEY, SIGN_IN_URL: 'https://platform.example.com/login', SQS_QUEUE_FORMATS: 'sns,eventbridge' };
    for (const role of ['api', 'worker', 'poller'] as const) expect(guard(env, role).unsafe).toEqual([]);
    // 32 random hex characters (128 bits) are strong enough.
    expect(guard({ ...env, SESSION_SIGNING_KEY: '9f86d081884c7d659a2feaa0c55ad015' }, 'api').unsafe).toEqual([]);
  });

  it('lets the local stack be: nothing is checked without real AWS or an https URL', () => {
    const verdict = guard({ ...local, DEMO_ACCOUNTS: 'true', SNS_TRUSTED_CERT_URLS: 'http://localhost:4580/sns/signing-certificate.pem' }, 'api');
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
    for (const name of [...UNSAFE_NAMES, 'PUBLIC_BASE_URL', 'AWS_ENDPOINT_URL_MARKETPLACE_METERING']) expect(error?.message).toContain(name);
  });

  it('ALLOW_UNSAFE_STAGING_SETTINGS waives the settings on an https staging site, loudly, naming each', () => {
    const env = { ...local, PUBLIC_BASE_URL: 'https://staging.example.com', DEMO_ACCOUNTS: 'true', SNS_VERIFY_SIGNATURES: 'false', ALLOW_UNSAFE_STAGING_SETTINGS: 'true' };
    const warnings: string[] = [];
    expect(() => enforceProductionGuard(env, 'api', (line) => warnings.push(line))).not.toThrow();
    const logged = warnings.join('\n');
    expect(logged).toContain('ALLOW_UNSAFE_STAGING_SETTINGS');
    expect(logged).toContain('DEMO_ACCOUNTS');
    expect(logged).toContain('SNS_VERIFY_SIGNATURES');
    // Without the switch the same settings are refused.
    const refused = Object.fromEntries(Object.entries(env).filter(([name]) => name !== 'ALLOW_UNSAFE_STAGING_SETTINGS'));
    expect(() => enforceProductionGuard(refused, 'api', () => undefined)).toThrow(/DEMO_ACCOUNTS[\s\S]*SNS_VERIFY_SIGNATURES/);
  });

  it('ALLOW_UNSAFE_STAGING_SETTINGS is refused against real AWS: real money never runs with unsafe settings', () => {
    const env = { ...UNSAFE_ON_REAL_AWS, ALLOW_UNSAFE_STAGING_SETTINGS: 'true' };
    expect(productionGuard(env, 'api').waived).toBe(false);
    expect(() => enforceProductionGuard(env, 'api', () => undefined)).toThrow(/ALLOW_UNSAFE_STAGING_SETTINGS[\s\S]*real AWS/);
  });
});

/** Runs a built program to its exit (it must exit on its own) and returns its exit code and output. */
function runToExit(role: ServiceRole, env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  const script = join(root, 'dist', scripts[role]);
  if (!existsSync(script)) throw new Error(`dist/${scripts[role]} is missing: run \`npm run build\` (infra/test.sh does)`);
  return new Promise((resolve, reject) => {
    // Only what is given: no test-server variables leak in, and nothing reaches AWS before the guard.
    const child = spawn(node, [script], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} did not exit within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('issue 12 point 9: production guard (the real processes)', () => {
  jest.setTimeout(120_000);
  // Nothing listens here: a process that got past the guard would fail on the store instead, without the names.
  const unreachableStore = { MONGODB_URI: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500', TEMPORAL_ADDRESS: '127.0.0.1:9' };

  it.each(['api', 'worker', 'poller'] as const)('%s refuses to start with unsafe settings against real AWS, naming each', async (role) => {
    const { code, output } = await runToExit(role, { ...UNSAFE_ON_REAL_AWS, ...unreachableStore });
    expect(code).not.toBe(0);
    const expected = role === 'api' ? [...UNSAFE_NAMES, 'PUBLIC_BASE_URL'] : UNSAFE_NAMES;
    for (const name of expected) expect(output).toContain(name);
    expect(output).not.toContain('changeme');
  });

  it('the api refuses demo accounts behind an https URL even with local AWS endpoints', async () => {
    const { code, output } = await runToExit('api', { ...local, ...unreachableStore, PUBLIC_BASE_URL: 'https://billing.example.com', DEMO_ACCOUNTS: 'true', SESSION_SIGNING_KEY: STRONG_KEY });
    expect(code).not.toBe(0);
    expect(output).toMatch(/PUBLIC_BASE_URL is https/);
    expect(output).toContain('DEMO_ACCOUNTS');
  });

  describe("the local stack's settings (infra/local.env)", () => {
    const running: ManagedProcess[] = [];
    afterAll(async () => {
      for (const p of running.reverse()) await p.stop();
    });

    it('still start the api, the worker and the poller', async () => {
      const [apiPort, pollerMetrics, workerMetrics, sandboxPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      const temporal = testServers.temporal(uniqueName('guard'));
      // The file as the stack reads it, pointed at this run's servers the way the local-stack test does.
      const fileEnv = localEnvValues(readFileSync(join(root, 'infra', 'local.env'), 'utf8'), {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        TEMPORAL_TASK_QUEUE: temporal.taskQueue,
        MONGODB_URI: testServers.mongoUri(),
        MONGODB_DATABASE: uniqueName('guard'),
        AWS_ENDPOINT_URL_SQS: testServers.awsEndpoint(),
        AWS_ENDPOINT_URL_SNS: testServers.awsEndpoint(),
        SANDBOX_PORT: String(sandboxPort),
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: `http://127.0.0.1:${sandboxPort}`,
        API_PORT: String(apiPort),
        POLLER_METRICS_PORT: String(pollerMetrics),
        WORKER_METRICS_PORT: String(workerMetrics),
        SQS_QUEUE_NAME: uniqueName('guard-queue'),
      });
      expect(fileEnv.DEMO_ACCOUNTS).toBe('true');
      const resources = await ensureLocalAwsResources({
        endpoint: fileEnv.AWS_ENDPOINT_URL_SQS!,
        region: fileEnv.AWS_REGION!,
        queueName: fileEnv.SQS_QUEUE_NAME!,
        productCode: fileEnv.SANDBOX_PRODUCT_CODE!,
      });
      const env = {
        ...stackServiceEnv({ localEnv: fileEnv, environment: {}, resources, dataDir: join(process.env[TEST_ENV.runDir]!, 'guard'), sessionKey: () => STRONG_KEY }),
        // Schedules are namespace-wide: this run must not replace the ones other tests create.
        METERING_SCHEDULE: 'false',
        RETENTION_SCHEDULE: 'false',
        LOG_LEVEL: 'warn',
      };
      const logDir = join(process.env[TEST_ENV.runDir]!, 'logs');
      const start = (role: ServiceRole, ready: () => Promise<boolean>) =>
        startProcess({ name: `guard-${role}`, command: node, args: [join(root, 'dist', scripts[role])], env, logFile: join(logDir, `guard-${role}.log`), ready, readyTimeoutMs: 60_000 });
      running.push(await start('worker', () => portOpen(workerMetrics)));
      running.push(await start('poller', () => portOpen(pollerMetrics)));
      running.push(await start('api', () => portOpen(apiPort)));
      const ready = await fetch(`http://127.0.0.1:${apiPort}/ready`);
      expect(await ready.json()).toEqual({ status: 'ok', checks: { mongodb: 'ok', temporal: 'ok' } });
      for (const p of running) expect(p.child.exitCode).toBeNull();
    });
  });
});
