/**
 * Issue 12, point 11 (first bullet): infra/local.env promises that the
 * environment wins, yet the stack overwrote SNS_TRUSTED_CERT_URLS and
 * SNS_TOPIC_ARN with its own. An operator must be able to point the local
 * stack at a certificate or topic of their own.
 */
import { localEnvValues, stackServiceEnv } from '../../infra/stack-env';
import { loadPollerConfig } from '../../poller/config';

const FILE = [
  '# a comment',
  'API_PORT=3000',
  'SANDBOX_PORT=4580',
  'AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4566',
  'DEMO_ACCOUNTS=true',
  '',
].join('\n');
const resources = {
  queueUrl: 'http://127.0.0.1:4566/000000000000/marketplace-notifications',
  deadLetterQueueUrl: 'http://127.0.0.1:4566/000000000000/marketplace-notifications-dlq',
  topicArn: 'arn:aws:sns:us-east-1:000000000000:aws-mp-subscription-notification-demo',
  eventBridgeQueueUrl: 'http://127.0.0.1:4566/000000000000/marketplace-notifications-events',
};
const MY_CERT = 'https://certs.example.com/my-sns-signing.pem';
const MY_TOPIC = 'arn:aws:sns:us-east-1:111122223333:my-own-topic';

function stackEnv(environment: Record<string, string | undefined>) {
  let generated = 0;
  const env = stackServiceEnv({
    localEnv: localEnvValues(FILE, environment),
    environment,
    resources,
    dataDir: '/data',
    sessionKey: () => (generated++, 'generated-key-'.padEnd(48, 'x')),
  });
  return { env, generated };
}

describe('issue 12 point 11: the local stack lets the environment win', () => {
  it("reads infra/local.env's values, the environment's where it sets one", () => {
    expect(localEnvValues(FILE, {})).toEqual({
      API_PORT: '3000',
      SANDBOX_PORT: '4580',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566',
      DEMO_ACCOUNTS: 'true',
    });
    expect(localEnvValues(FILE, { API_PORT: '8080', DEMO_ACCOUNTS: '' })).toMatchObject({
      API_PORT: '8080',
      DEMO_ACCOUNTS: 'true',
    });
  });

  it("without an operator's values: the stack's topic and the sandbox's certificate", () => {
    const { env, generated } = stackEnv({});
    expect(env).toMatchObject({
      SNS_TOPIC_ARN: resources.topicArn,
      SNS_TRUSTED_CERT_URLS: 'http://localhost:4580/sns/signing-certificate.pem',
      SQS_QUEUE_URL: resources.queueUrl,
      SANDBOX_SNS_TOPIC_ARN: resources.topicArn,
      SESSION_SIGNING_KEY: expect.stringMatching(/^generated-key-/),
    });
    expect(generated).toBe(1);
  });

  it('SNS_TRUSTED_CERT_URLS and SNS_TOPIC_ARN set in the environment are the ones the processes get', () => {
    const { env } = stackEnv({ SNS_TRUSTED_CERT_URLS: MY_CERT, SNS_TOPIC_ARN: MY_TOPIC });
    expect(env.SNS_TRUSTED_CERT_URLS).toBe(MY_CERT);
    expect(env.SNS_TOPIC_ARN).toBe(MY_TOPIC);
    // What the poller then trusts, through the real configuration module.
    const poller = loadPollerConfig(env).poller;
    expect(poller.trustedCertUrls).toEqual([MY_CERT]);
    expect(poller.topicArns).toEqual([MY_TOPIC]);
  });

  it('every other value the stack computes yields to the environment too, and no key is generated when one is set', () => {
    const mine = {
      SQS_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/mine',
      SANDBOX_SNS_TOPIC_ARN: MY_TOPIC,
      SANDBOX_SNS_SIGNING_DIR: '/keys',
      SESSION_SIGNING_KEY: 'operator-key-'.padEnd(48, 'y'),
    };
    const { env, generated } = stackEnv(mine);
    expect(env).toMatchObject(mine);
    expect(generated).toBe(0);
  });

  it('an empty value counts as unset, as it does for the services', () => {
    const { env } = stackEnv({ SNS_TOPIC_ARN: ' ', SNS_TRUSTED_CERT_URLS: '' });
    expect(env.SNS_TOPIC_ARN).toBe(resources.topicArn);
    expect(env.SNS_TRUSTED_CERT_URLS).toBe('http://localhost:4580/sns/signing-certificate.pem');
  });
});
