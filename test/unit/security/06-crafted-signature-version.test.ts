/**
 * Issue 12, point 6 (the verifier's verdict): a crafted `SignatureVersion`
 * such as "constructor" or "__proto__" is simply unsupported, for good, and no
 * certificate is fetched for it. test/security/ runs the same bodies through
 * the queue and the poller.
 */
import { SnsSignatureVerifier } from '../../../poller/sns-signature';
import { signedEnvelope } from '../../../sandbox/sns-signing';
import { CRAFTED_SIGNATURE_VERSIONS } from '../../fixtures/crafted-signature-versions';
import { snsSigningKey } from '../helpers/sns-signing-key';

const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem';

describe('issue 12 point 6: crafted SignatureVersion', () => {
  it.each(CRAFTED_SIGNATURE_VERSIONS)(
    'refuses SignatureVersion "%s" as unsupported, for good, without fetching anything',
    async (version) => {
      const fetched: string[] = [];
      const fetchImpl = (async (url: string) => (
        fetched.push(url),
        new Response(snsSigningKey().certificatePem)
      )) as unknown as typeof fetch;
      const genuine = signedEnvelope(
        {
          topicArn: 'arn:aws:sns:us-east-1:123456789012:topic',
          message: '{"action":"unsubscribe-success"}',
          certUrl: CERT_URL,
          version: '1',
        },
        snsSigningKey(),
      );
      const verdict = await new SnsSignatureVerifier({ fetchImpl }).verify({ ...genuine, SignatureVersion: version });
      expect(verdict).toEqual({ ok: false, reason: `unsupported SignatureVersion "${version}"`, retryable: false });
      expect(fetched).toEqual([]);
    },
  );
});
