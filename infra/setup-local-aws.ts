/** One-shot: creates the SQS queue, its dead-letter queue and the SNS topic on an emulator (used by docker-compose). */
import { ensureLocalAwsResources } from './servers';

const endpoint = process.env.AWS_ENDPOINT_URL_SQS;
if (!endpoint) {
  console.error('AWS_ENDPOINT_URL_SQS must point at the SQS/SNS emulator');
  process.exit(1);
}
ensureLocalAwsResources({
  endpoint,
  region: process.env.AWS_REGION ?? 'us-east-1',
  queueName: process.env.SQS_QUEUE_NAME ?? 'marketplace-notifications',
  productCode: process.env.SANDBOX_PRODUCT_CODE ?? 'demo-paygo-product',
}).then(
  (resources) => console.log(JSON.stringify(resources)),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
