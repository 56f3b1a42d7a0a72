/**
 * The sandbox signs the SNS envelopes it delivers exactly as SNS does, with a
 * local certificate it serves itself, so the poller's signature verification
 * runs for real when it is told to trust that certificate's URL.
 */
import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringToSign, type SnsEnvelope } from '../lib/sns-envelope';

export const SIGNING_CERT_PATH = '/sns/signing-certificate.pem';

export type SignatureVersion = '1' | '2';

export interface SnsSigningKey {
  privateKeyPem: string;
  certificatePem: string;
}

/** A self-signed RSA key and certificate, made with openssl (also for the tests' own keys and TLS servers). */
export function selfSignedCertificate(options: {
  keyFile: string;
  certFile: string;
  subject: string;
  days: number;
  extensions?: string[];
}): SnsSigningKey {
  mkdirSync(dirname(options.keyFile), { recursive: true });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      String(options.days),
      '-subj',
      options.subject,
      ...(options.extensions ?? []).flatMap((extension) => ['-addext', extension]),
      '-keyout',
      options.keyFile,
      '-out',
      options.certFile,
    ],
    { stdio: 'ignore' },
  );
  return {
    privateKeyPem: readFileSync(options.keyFile, 'utf8'),
    certificatePem: readFileSync(options.certFile, 'utf8'),
  };
}

/** A self-signed RSA certificate in `dir`, made once with openssl and reused while valid. */
export function ensureSigningKey(dir: string): SnsSigningKey & { keyFile: string; certFile: string } {
  const keyFile = join(dir, 'sns-signing-key.pem');
  const certFile = join(dir, 'sns-signing-cert.pem');
  const stillValid = () => {
    try {
      return Date.parse(new X509Certificate(readFileSync(certFile)).validTo) > Date.now() + 86_400_000;
    } catch {
      return false;
    }
  };
  if (!existsSync(keyFile) || !stillValid())
    selfSignedCertificate({ keyFile, certFile, subject: '/CN=sns.sandbox.local', days: 365 });
  return {
    keyFile,
    certFile,
    privateKeyPem: readFileSync(keyFile, 'utf8'),
    certificatePem: readFileSync(certFile, 'utf8'),
  };
}

export function signEnvelope(envelope: SnsEnvelope, key: SnsSigningKey, version: SignatureVersion): string {
  const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  signer.update(stringToSign(envelope), 'utf8');
  return signer.sign(key.privateKeyPem, 'base64');
}

/** An SNS Notification envelope for `message`, signed with the sandbox's key. */
export function signedEnvelope(
  input: {
    topicArn: string;
    message: string;
    certUrl: string;
    version: SignatureVersion;
    messageId?: string;
    timestamp?: Date;
  },
  key: SnsSigningKey,
): SnsEnvelope {
  const envelope: SnsEnvelope = {
    Type: 'Notification',
    MessageId: input.messageId ?? randomUUID(),
    TopicArn: input.topicArn,
    Message: input.message,
    Timestamp: (input.timestamp ?? new Date()).toISOString(),
    SignatureVersion: input.version,
    SigningCertURL: input.certUrl,
    UnsubscribeURL: `${input.certUrl.replace(SIGNING_CERT_PATH, '')}/sns/unsubscribe`,
  };
  return { ...envelope, Signature: signEnvelope(envelope, key, input.version) };
}
