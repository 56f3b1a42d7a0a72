/**
 * Issue 12, point 8 (third bullet): the signing-certificate URL must be an SNS
 * regional endpoint and nothing that merely resembles one. AWS's own pattern,
 * `sns.<anything>.amazonaws.com`, also matches S3 virtual-host buckets such as
 * `sns.s3-external-1.amazonaws.com`, where anyone can publish a certificate.
 */
import { SnsSignatureVerifier } from '../../../poller/sns-signature';
import { signedEnvelope } from '../../../sandbox/sns-signing';
import { snsSigningKey } from '../helpers/sns-signing-key';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:aws-mp-subscription-notification-product';
const PEM = 'SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem';

function verifierCountingFetches() {
  const fetched: string[] = [];
  const fetchImpl = (async (url: string) => (
    fetched.push(url),
    new Response(snsSigningKey().certificatePem)
  )) as unknown as typeof fetch;
  return { fetched, verifier: new SnsSignatureVerifier({ fetchImpl }) };
}

const envelopeWith = (certUrl: string, topicArn = TOPIC) =>
  signedEnvelope({ topicArn, message: '{"action":"unsubscribe-success"}', certUrl, version: '2' }, snsSigningKey());

describe('issue 12 point 8: the signing certificate comes only from an SNS regional endpoint', () => {
  it.each([
    // S3 virtual hosts and website endpoints: anyone can name a bucket "sns".
    `https://sns.s3-external-1.amazonaws.com/${PEM}`,
    `https://sns.s3.amazonaws.com/${PEM}`,
    `https://sns.s3.us-east-1.amazonaws.com/${PEM}`,
    `https://sns.s3-website-us-east-1.amazonaws.com/${PEM}`,
    `https://sns.execute-api.amazonaws.com/${PEM}`,
    // Another region than the topic's.
    `https://sns.eu-west-1.amazonaws.com/${PEM}`,
    // The China domain for a region outside China, and the other way round.
    `https://sns.us-east-1.amazonaws.com.cn/${PEM}`,
    // Not the certificate path SNS serves, or a path that only resolves to it.
    'https://sns.us-east-1.amazonaws.com/cert.pem',
    `https://sns.us-east-1.amazonaws.com/bucket/${PEM}`,
    `https://sns.us-east-1.amazonaws.com/x/../${PEM}`,
    `https://sns.us-east-1.amazonaws.com/%2e/${PEM}`,
    `https://sns.us-east-1.amazonaws.com/${PEM}?x=1`,
    `https://sns.us-east-1.amazonaws.com/${PEM}#x`,
    `https://SNS.US-EAST-1.AMAZONAWS.COM/${PEM}`,
    `https://sns.us-east-1.amazonaws.com./${PEM}`,
    `http://sns.us-east-1.amazonaws.com/${PEM}`,
    `https://sns.us-east-1.amazonaws.com:443/${PEM}`,
    `https://a:b@sns.us-east-1.amazonaws.com/${PEM}`,
  ])('refuses %s for good, without fetching it', async (certUrl) => {
    const { fetched, verifier } = verifierCountingFetches();
    expect(verifier.isAllowedCertUrl(certUrl, TOPIC)).toBe(false);
    expect(await verifier.verify(envelopeWith(certUrl))).toMatchObject({
      ok: false,
      retryable: false,
      reason: expect.stringMatching(/^SigningCertURL is not an AWS SNS certificate URL/),
    });
    expect(fetched).toEqual([]);
  });

  it.each([
    [`https://sns.us-east-1.amazonaws.com/${PEM}`, TOPIC],
    [`https://sns.ap-southeast-2.amazonaws.com/${PEM}`, 'arn:aws:sns:ap-southeast-2:123456789012:topic'],
    [`https://sns.us-gov-west-1.amazonaws.com/${PEM}`, 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:topic'],
    [`https://sns.cn-northwest-1.amazonaws.com.cn/${PEM}`, 'arn:aws-cn:sns:cn-northwest-1:123456789012:topic'],
  ])('fetches the certificate of a genuine SNS endpoint: %s', async (certUrl, topicArn) => {
    const { fetched, verifier } = verifierCountingFetches();
    expect(await verifier.verify(envelopeWith(certUrl, topicArn))).toEqual({ ok: true });
    expect(fetched).toEqual([certUrl]);
  });
});
