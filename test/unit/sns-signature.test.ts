/**
 * SNS signature verification against real RSA signatures: the sandbox's
 * signer and a second, unrelated key. Certificates are served by an injected
 * fetch so the test can count and refuse fetches.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnsSignatureVerifier } from '../../poller/sns-signature';
import {
  selfSignedCertificate,
  signedEnvelope,
  type SignatureVersion,
  type SnsSigningKey,
} from '../../sandbox/sns-signing';
import { snsSigningKey } from './helpers/sns-signing-key';

const AWS_CERT_URL =
  'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem';
const key = () => snsSigningKey();

function otherKey(days: number) {
  const dir = mkdtempSync(join(tmpdir(), 'sns-other-'));
  return selfSignedCertificate({ keyFile: join(dir, 'k'), certFile: join(dir, 'c'), subject: '/CN=other', days });
}

function servingCertificate(pem: string, status = 200) {
  const urls: string[] = [];
  const fetchImpl = (async (url: string) => {
    urls.push(url);
    return new Response(pem, { status });
  }) as unknown as typeof fetch;
  return { urls, fetchImpl };
}

const envelope = (version: SignatureVersion, certUrl = AWS_CERT_URL, signingKey: SnsSigningKey = key()) =>
  signedEnvelope(
    {
      topicArn: 'arn:aws:sns:us-east-1:123456789012:topic',
      message: '{"action":"subscribe-success"}',
      certUrl,
      version,
      timestamp: new Date('2026-11-26T10:00:00Z'),
    },
    signingKey,
  );

describe('SNS signature verification', () => {
  it.each(['1', '2'] as const)(
    'accepts SignatureVersion %s signed by the certificate at an AWS SNS URL, fetching it once',
    async (version) => {
      const served = servingCertificate(key().certificatePem);
      const verifier = new SnsSignatureVerifier({ fetchImpl: served.fetchImpl });
      for (let i = 0; i < 3; i++) expect(await verifier.verify(envelope(version))).toEqual({ ok: true });
      expect(served.urls).toEqual([AWS_CERT_URL]);
    },
  );

  it('refuses a message changed after signing, a signature by another key, and a version swap', async () => {
    const verifier = new SnsSignatureVerifier({ fetchImpl: servingCertificate(key().certificatePem).fetchImpl });
    const mismatch = { ok: false, reason: 'the signature does not match the message', retryable: false };
    const genuine = envelope('2');
    expect(await verifier.verify({ ...genuine, Message: '{"action":"unsubscribe-success"}' })).toEqual(mismatch);
    expect(await verifier.verify({ ...genuine, Timestamp: '2026-11-26T10:00:01Z' })).toEqual(mismatch);
    expect(await verifier.verify({ ...genuine, Subject: 'added' })).toEqual(mismatch);
    expect(await verifier.verify({ ...genuine, SignatureVersion: '1' })).toEqual(mismatch);
    expect(await verifier.verify(envelope('2', AWS_CERT_URL, otherKey(2)))).toEqual(mismatch);
    expect(await verifier.verify({ ...genuine, SignatureVersion: '3' })).toMatchObject({
      ok: false,
      reason: 'unsupported SignatureVersion "3"',
    });
  });

  it.each([
    'http://sns.us-east-1.amazonaws.com/cert.pem',
    'https://sns.us-east-1.amazonaws.com.evil.example/cert.pem',
    'https://evil.example/sns.us-east-1.amazonaws.com/cert.pem',
    'https://s3.amazonaws.com/cert.pem',
    'https://user@sns.us-east-1.amazonaws.com/cert.pem',
    'https://sns.us-east-1.amazonaws.com:8443/cert.pem',
    'not a url',
  ])('never fetches a certificate from %s', async (certUrl) => {
    const served = servingCertificate(key().certificatePem);
    const verdict = await new SnsSignatureVerifier({ fetchImpl: served.fetchImpl }).verify(envelope('1', certUrl));
    expect(verdict).toMatchObject({
      ok: false,
      retryable: false,
      reason: expect.stringMatching(/^SigningCertURL is not an AWS SNS certificate URL/),
    });
    expect(served.urls).toEqual([]);
  });

  it('accepts the China partition host and an explicitly trusted local URL', () => {
    const verifier = new SnsSignatureVerifier({
      trustedCertUrls: ['http://127.0.0.1:4580/sns/signing-certificate.pem'],
    });
    expect(
      verifier.isAllowedCertUrl(
        'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem',
        'arn:aws-cn:sns:cn-north-1:123456789012:topic',
      ),
    ).toBe(true);
    expect(
      verifier.isAllowedCertUrl(
        'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem',
        'arn:aws-us-gov:sns:us-gov-west-1:123456789012:topic',
      ),
    ).toBe(true);
    expect(verifier.isAllowedCertUrl('http://127.0.0.1:4580/sns/signing-certificate.pem')).toBe(true);
    expect(verifier.isAllowedCertUrl('http://127.0.0.1:4580/sns/other.pem')).toBe(false);
  });

  it('treats an unavailable certificate as retryable and does not cache the failure', async () => {
    let status = 503;
    const fetched: string[] = [];
    const fetchImpl = (async (url: string) => (
      fetched.push(url),
      new Response(key().certificatePem, { status })
    )) as unknown as typeof fetch;
    const verifier = new SnsSignatureVerifier({ fetchImpl });
    expect(await verifier.verify(envelope('1'))).toEqual({
      ok: false,
      reason: 'signing certificate: fetching it answered 503',
      retryable: true,
    });
    status = 200;
    expect(await verifier.verify(envelope('1'))).toEqual({ ok: true });
    expect(fetched).toHaveLength(2);
  });

  it('refuses a certificate that is not PEM or has expired, for good', async () => {
    const garbage = new SnsSignatureVerifier({ fetchImpl: servingCertificate('<html>hello</html>').fetchImpl });
    expect(await garbage.verify(envelope('1'))).toEqual({
      ok: false,
      reason: 'signing certificate: it is not a PEM certificate',
      retryable: false,
    });
    const expiredKey = otherKey(1);
    // Three days on, a one-day certificate has expired.
    const expired = new SnsSignatureVerifier({
      fetchImpl: servingCertificate(expiredKey.certificatePem).fetchImpl,
      now: () => Date.now() + 3 * 86_400_000,
    });
    expect(await expired.verify(envelope('1', AWS_CERT_URL, expiredKey))).toEqual({
      ok: false,
      reason: 'signing certificate: it is outside its validity period',
      retryable: false,
    });
  });
});
