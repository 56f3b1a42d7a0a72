import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AwsConfig } from './config';

/*
 * With an endpoint configured (local moto or the sandbox) the clients talk to it
 * with dummy credentials unless real ones are in the environment; without one
 * they use real AWS and the default credential chain.
 */
function clientOptions(aws: AwsConfig, endpoint: string | undefined) {
  const local = endpoint !== undefined && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE;
  return {
    region: aws.region,
    endpoint,
    credentials: local ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
    // The SDK's adaptive mode adds client-side rate limiting on top of exponential backoff with jitter.
    retryMode: 'adaptive',
    maxAttempts: 5,
  };
}

export function createSqsClient(aws: AwsConfig): SQSClient {
  return new SQSClient(clientOptions(aws, aws.endpoints.sqs));
}

export function createSnsClient(aws: AwsConfig): SNSClient {
  return new SNSClient(clientOptions(aws, aws.endpoints.sns));
}

export function createMeteringClient(aws: AwsConfig): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient(clientOptions(aws, aws.endpoints.metering));
}

/**
 * BatchMeterUsage paces itself to the quota and retries throttling with its
 * own jittered backoff (activities/usage-sender.ts), so this client makes one
 * attempt per call: the SDK's adaptive limiter would fight our pacing, and
 * every call AWS sees is one we counted.
 */
export function createUsageMeteringClient(aws: AwsConfig): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient({
    ...clientOptions(aws, aws.endpoints.metering),
    retryMode: 'standard',
    maxAttempts: 1,
  });
}

/** A queue's URL from its ARN (`arn:aws:sqs:<region>:<account>:<name>`), as redrive policies and SNS subscriptions name it. */
export async function queueUrlOfArn(sqs: SQSClient, arn: string): Promise<string> {
  const [, , , , owner, name] = arn.split(':');
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: owner }));
  return QueueUrl!;
}
