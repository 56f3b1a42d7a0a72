/** Entry point of the AWS Marketplace sandbox: configuration, store, listen, graceful shutdown. */
import { loadSandboxConfig } from '../lib/config';
import { createSnsClient, createSqsClient } from '../lib/aws';
import { exitWithError } from '../lib/logger';
import { connectMongo } from '../lib/mongo';
import { onShutdown } from '../lib/shutdown';
import { buildSandbox } from './app';
import { ensureSigningKey } from './sns-signing';

async function main(): Promise<void> {
  const config = loadSandboxConfig();
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'marketplace-sandbox');
  const { app } = await buildSandbox({
    db: mongo.db,
    productCode: config.productCode,
    registrationUrl: config.registrationUrl,
    quotaRps: config.quotaRps,
    tokenTtlSeconds: config.tokenTtlSeconds,
    region: config.aws.region,
    sns: config.aws.endpoints.sns || config.snsTopicArn ? createSnsClient(config.aws) : undefined,
    snsTopicArn: config.snsTopicArn,
    sqs: createSqsClient(config.aws),
    eventBridgeQueueUrl: config.eventBridgeQueueUrl,
    snsSigning: config.snsSigning && {
      key: ensureSigningKey(config.snsSigning.dir),
      version: config.snsSigning.version,
      certUrl: config.snsSigning.certUrl,
    },
    publicUrl: config.publicUrl,
    logLevel: config.logLevel,
  });
  app.addHook('onClose', () => mongo.close());
  await app.listen({ host: config.host, port: config.port });
  onShutdown(() => app.close(), app.log);
}

main().catch(exitWithError('sandbox'));
