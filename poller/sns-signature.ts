/**
 * Verifies that an SNS envelope was signed by SNS: the signing certificate
 * comes only from an `sns.<region>.amazonaws.com` https URL (or a URL the
 * operator trusts explicitly, such as the local sandbox's), is fetched once and
 * cached, and must cover the canonical string SNS signed (SHA1withRSA for
 * SignatureVersion 1, SHA256withRSA for 2).
 */
import { createVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { stringToSign, type SnsEnvelope } from '../lib/sns-envelope';

export type Verdict = { ok: true } | { ok: false; reason: string; retryable: boolean };

/**
 * An SNS regional endpoint and nothing else: `sns.<region>.amazonaws.com`
 * (`.com.cn` in China), where a region is letters, dashes and a number
 * (us-east-1, us-gov-west-1, cn-north-1). AWS's own validators accept any
 * `sns.<anything>.amazonaws.com`, which also matches S3 virtual hosts such as
 * `sns.s3-external-1.amazonaws.com`, where anyone can publish a certificate.
 */
const AWS_SNS_HOST = /^sns\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(\.cn)?$/;
/** SNS serves its signing certificates at this path only. */
const AWS_SNS_CERT_PATH = /^\/SimpleNotificationService-[0-9a-f]{16,64}\.pem$/;

/** A Map, not an object: a crafted version such as "constructor" or "__proto__" must find nothing. */
const ALGORITHM = new Map([
  ['1', 'RSA-SHA1'],
  ['2', 'RSA-SHA256'],
]);

/** The region of an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>). */
const topicRegion = (topicArn: string): string | undefined => /^arn:[a-z-]+:sns:([a-z0-9-]+):/.exec(topicArn)?.[1];

export interface SignatureVerifierOptions {
  /** Exact certificate URLs trusted besides AWS's (the local sandbox's, for instance). */
  trustedCertUrls?: string[];
  cacheTtlMs?: number;
  fetchTimeoutMs?: number;
  fetchImpl?: typeof fetch;
  now?: () => number;
}

class Untrusted extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

const MAX_CACHED_CERTIFICATES = 64;

export class SnsSignatureVerifier {
  private readonly certificates = new Map<string, { key: Promise<KeyObject>; expiresAt: number }>();
  private readonly trusted: Set<string>;

  constructor(private readonly options: SignatureVerifierOptions = {}) {
    this.trusted = new Set(options.trustedCertUrls ?? []);
  }

  /**
   * Whether a certificate may be fetched from this URL at all: nothing else is
   * ever requested. An AWS URL must be the SNS endpoint of the topic's own
   * region, over https on the default port, with no credentials, query or fragment.
   */
  isAllowedCertUrl(url: string, topicArn?: string): boolean {
    if (this.trusted.has(url)) return true;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    const [, region, china] = AWS_SNS_HOST.exec(parsed.hostname) ?? [];
    return (
      parsed.protocol === 'https:' &&
      region !== undefined &&
      // The China partition's endpoints, and only they, end in .com.cn.
      region.startsWith('cn-') === (china !== undefined) &&
      (topicArn === undefined || topicRegion(topicArn) === region) &&
      !parsed.username &&
      !parsed.password &&
      !parsed.port &&
      !parsed.search &&
      !parsed.hash &&
      // new URL() resolves dot segments and %2e: the URL must already be in that form.
      parsed.href === url &&
      AWS_SNS_CERT_PATH.test(parsed.pathname)
    );
  }

  async verify(envelope: SnsEnvelope): Promise<Verdict> {
    const algorithm = ALGORITHM.get(envelope.SignatureVersion ?? '');
    if (!algorithm)
      return {
        ok: false,
        reason: `unsupported SignatureVersion "${(envelope.SignatureVersion ?? '').slice(0, 40)}"`,
        retryable: false,
      };
    const certUrl = envelope.SigningCertURL ?? '';
    if (!envelope.Signature) return { ok: false, reason: 'the envelope is not signed', retryable: false };
    if (!this.isAllowedCertUrl(certUrl, envelope.TopicArn)) {
      return {
        ok: false,
        reason: `SigningCertURL is not an AWS SNS certificate URL: ${certUrl.slice(0, 200)}`,
        retryable: false,
      };
    }
    let key: KeyObject;
    try {
      key = await this.certificateKey(certUrl);
    } catch (error) {
      const retryable = error instanceof Untrusted ? error.retryable : true;
      return { ok: false, reason: `signing certificate: ${(error as Error).message}`, retryable };
    }
    let valid = false;
    try {
      valid = createVerify(algorithm).update(stringToSign(envelope), 'utf8').verify(key, envelope.Signature, 'base64');
    } catch {
      // A malformed signature is a forged one; it must never look like an outage of ours.
    }
    return valid ? { ok: true } : { ok: false, reason: 'the signature does not match the message', retryable: false };
  }

  private certificateKey(url: string): Promise<KeyObject> {
    const now = Date.now();
    const cached = this.certificates.get(url);
    if (cached && cached.expiresAt > now) return cached.key;
    if (this.certificates.size >= MAX_CACHED_CERTIFICATES)
      this.certificates.delete(this.certificates.keys().next().value!);
    const key = this.fetchCertificate(url);
    this.certificates.set(url, { key, expiresAt: now + (this.options.cacheTtlMs ?? 3_600_000) });
    // A failed fetch is not cached: the next message tries again.
    key.catch(() => this.certificates.delete(url));
    return key;
  }

  private async fetchCertificate(url: string): Promise<KeyObject> {
    const fetchImpl = this.options.fetchImpl ?? fetch;
    const response = await fetchImpl(url, {
      redirect: 'error',
      signal: AbortSignal.timeout(this.options.fetchTimeoutMs ?? 5000),
    });
    if (!response.ok)
      throw new Untrusted(`fetching it answered ${response.status}`, response.status >= 500 || response.status === 429);
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(await response.text());
    } catch {
      throw new Untrusted('it is not a PEM certificate', false);
    }
    const now = (this.options.now ?? Date.now)();
    if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) {
      throw new Untrusted('it is outside its validity period', false);
    }
    return certificate.publicKey;
  }
}
