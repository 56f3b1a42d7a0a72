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

/** The pattern AWS's own SNS message validators accept for SigningCertURL hosts. */
const AWS_SNS_HOST = /^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$/;

const ALGORITHM: Record<string, string> = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' };

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

  /** Whether a certificate may be fetched from this URL at all: nothing else is ever requested. */
  isAllowedCertUrl(url: string): boolean {
    if (this.trusted.has(url)) return true;
    try {
      const parsed = new URL(url);
      return parsed.protocol === 'https:' && AWS_SNS_HOST.test(parsed.hostname) && !parsed.username && !parsed.port;
    } catch {
      return false;
    }
  }

  async verify(envelope: SnsEnvelope): Promise<Verdict> {
    const algorithm = ALGORITHM[envelope.SignatureVersion ?? ''];
    if (!algorithm) return { ok: false, reason: `unsupported SignatureVersion "${envelope.SignatureVersion ?? ''}"`, retryable: false };
    const certUrl = envelope.SigningCertURL ?? '';
    if (!envelope.Signature) return { ok: false, reason: 'the envelope is not signed', retryable: false };
    if (!this.isAllowedCertUrl(certUrl)) {
      return { ok: false, reason: `SigningCertURL is not an AWS SNS certificate URL: ${certUrl.slice(0, 200)}`, retryable: false };
    }
    let key: KeyObject;
    try {
      key = await this.certificateKey(certUrl);
    } catch (error) {
      const retryable = error instanceof Untrusted ? error.retryable : true;
      return { ok: false, reason: `signing certificate: ${(error as Error).message}`, retryable };
    }
    const verifier = createVerify(algorithm);
    verifier.update(stringToSign(envelope), 'utf8');
    const valid = verifier.verify(key, envelope.Signature, 'base64');
    return valid ? { ok: true } : { ok: false, reason: 'the signature does not match the message', retryable: false };
  }

  private certificateKey(url: string): Promise<KeyObject> {
    const now = Date.now();
    const cached = this.certificates.get(url);
    if (cached && cached.expiresAt > now) return cached.key;
    if (this.certificates.size >= MAX_CACHED_CERTIFICATES) this.certificates.delete(this.certificates.keys().next().value!);
    const key = this.fetchCertificate(url);
    this.certificates.set(url, { key, expiresAt: now + (this.options.cacheTtlMs ?? 3_600_000) });
    // A failed fetch is not cached: the next message tries again.
    key.catch(() => this.certificates.delete(url));
    return key;
  }

  private async fetchCertificate(url: string): Promise<KeyObject> {
    const fetchImpl = this.options.fetchImpl ?? fetch;
    const response = await fetchImpl(url, { redirect: 'error', signal: AbortSignal.timeout(this.options.fetchTimeoutMs ?? 5000) });
    if (!response.ok) throw new Untrusted(`fetching it answered ${response.status}`, response.status >= 500 || response.status === 429);
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
