import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { installErrorHandler } from '../lib/error-handler';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Db } from 'mongodb';
import { registerBuyerPages } from './buyer-pages';
import { registerControlApi, type ControlApiDeps } from './control-api';
import { FaultInjector, RequestQuota } from './faults';
import { meteringApi, type MeteringRules } from './metering-api';
import { NotificationPublisher } from './notifications';
import { SIGNING_CERT_PATH, type SignatureVersion, type SnsSigningKey } from './sns-signing';
import { SandboxStore } from './store';

export interface SandboxOptions {
  db: Db;
  productCode: string;
  registrationUrl: string;
  quotaRps: number;
  tokenTtlSeconds: number;
  region: string;
  dimensions?: readonly string[];
  maxUsageAgeMs?: number;
  sns?: SNSClient;
  snsTopicArn?: string;
  sqs?: SQSClient;
  /** Where EventBridge agreement events go (a queue of their own, as an EventBridge rule's target). */
  eventBridgeQueueUrl?: string;
  /** Sign SNS envelopes with this key (served at SIGNING_CERT_PATH); absent: publish through the SNS emulator. */
  snsSigning?: {
    key: SnsSigningKey;
    version: SignatureVersion;
    /** Default: the public URL's SIGNING_CERT_PATH. */ certUrl?: string;
  };
  /** Where buyers and the poller reach the sandbox; settable later when it listens on a random port. */
  publicUrl?: string;
  logLevel?: string;
}

export const DEFAULT_SANDBOX_DIMENSIONS = ['session_hours', 'traffic_gb'] as const;

export interface Sandbox {
  app: FastifyInstance;
  store: SandboxStore;
  faults: FaultInjector;
  /** The URL the signing certificate is served under, once known. */
  setPublicUrl(url: string): void;
}

export async function buildSandbox(options: SandboxOptions): Promise<Sandbox> {
  const app = Fastify({ logger: { level: options.logLevel ?? 'warn' }, bodyLimit: 1024 * 1024 });
  const store = new SandboxStore(options.db);
  await store.ensureIndexes();
  const faults = new FaultInjector();
  const quota = {
    ResolveCustomer: new RequestQuota(options.quotaRps),
    BatchMeterUsage: new RequestQuota(options.quotaRps),
  };
  const rules: MeteringRules = {
    dimensions: options.dimensions ?? DEFAULT_SANDBOX_DIMENSIONS,
    maxAgeMs: options.maxUsageAgeMs ?? 6 * 3_600_000,
    maxFutureMs: 5 * 60_000,
  };
  let publicUrl = options.publicUrl ?? '';
  const signing = options.snsSigning;
  const publisher = new NotificationPublisher({
    sns: options.sns,
    topicArn: options.snsTopicArn,
    sqs: options.sqs,
    eventBridgeQueueUrl: options.eventBridgeQueueUrl,
    region: options.region,
    signing: signing && {
      key: signing.key,
      version: signing.version,
      certUrl: () => signing.certUrl ?? `${publicUrl}${SIGNING_CERT_PATH}`,
    },
  });
  const control: ControlApiDeps = {
    store,
    faults,
    quota,
    publisher,
    productCode: options.productCode,
    tokenTtlSeconds: options.tokenTtlSeconds,
    registrationUrl: options.registrationUrl,
  };

  installErrorHandler(app);
  await app.register(formbody);
  await app.register(meteringApi, { store, faults, quota, rules });
  registerControlApi(app, control);
  await registerBuyerPages(app, control);
  app.get('/health', async () => ({ status: 'ok' }));
  if (signing) {
    app.get(SIGNING_CERT_PATH, async (_request, reply) =>
      reply.type('application/x-pem-file').send(signing.key.certificatePem),
    );
  }
  return { app, store, faults, setPublicUrl: (url) => (publicUrl = url.replace(/\/$/, '')) };
}
