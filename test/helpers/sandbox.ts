import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { buildSandbox, type Sandbox } from '../../sandbox/app';
import { SIGNING_CERT_PATH, type SignatureVersion } from '../../sandbox/sns-signing';
import { testServers, uniqueName } from './test-env';

export interface RunningSandbox extends Sandbox {
  url: string;
  /** Where it serves its SNS signing certificate: the URL a poller must trust. */
  certUrl: string;
  mongo: MongoHandle;
  /** A metering client with the SDK's retries off, so each error is seen as AWS sent it. */
  metering: MarketplaceMeteringClient;
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** Calls the sandbox's control API (what a test does in AWS's place) at `url`: a sandbox of this process or a built one. */
export function sandboxControl(url: string): RunningSandbox['control'] {
  return async (method, path, body) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
}

export async function startSandbox(
  options: {
    quotaRps?: number;
    productCode?: string;
    sns?: SNSClient;
    snsTopicArn?: string;
    sqs?: SQSClient;
    eventBridgeQueueUrl?: string;
    registrationUrl?: string;
    /** Sign SNS envelopes with the run's local certificate (default) or publish unsigned through moto. */
    signSns?: false | SignatureVersion;
  } = {},
): Promise<RunningSandbox> {
  const mongo = await connectMongo(testServers.mongoUri(), uniqueName('sandbox'));
  const sandbox = await buildSandbox({
    db: mongo.db,
    productCode: options.productCode ?? 'test-product',
    registrationUrl: options.registrationUrl ?? 'http://127.0.0.1:9/marketplace/register',
    quotaRps: options.quotaRps ?? 1000,
    tokenTtlSeconds: 3600,
    region: 'us-east-1',
    sns: options.sns,
    snsTopicArn: options.snsTopicArn,
    sqs: options.sqs,
    eventBridgeQueueUrl: options.eventBridgeQueueUrl,
    snsSigning:
      options.signSns === false ? undefined : { key: testServers.snsSigningKey(), version: options.signSns ?? '1' },
  });
  const url = await sandbox.app.listen({ host: '127.0.0.1', port: 0 });
  sandbox.setPublicUrl(url);
  const metering = new MarketplaceMeteringClient({
    region: 'us-east-1',
    endpoint: url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  return {
    ...sandbox,
    url,
    certUrl: `${url}${SIGNING_CERT_PATH}`,
    mongo,
    metering,
    control: sandboxControl(url),
    async close() {
      metering.destroy();
      await sandbox.app.close();
      await mongo.db.dropDatabase();
      await mongo.close();
    },
  };
}
