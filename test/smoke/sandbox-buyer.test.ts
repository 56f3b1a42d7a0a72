/** The buyer's side of the sandbox: the subscribe journey's form POST, and notifications through real SNS/SQS. */
import { ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ensureLocalAwsResources, type LocalAwsResources } from '../../infra/servers';
import { createSnsClient, createSqsClient } from '../../lib/aws';
import { parsePage } from '../helpers/html';
import { startSandbox, type RunningSandbox } from '../helpers/sandbox';
import { testServers, uniqueName } from '../helpers/test-env';

describe('AWS Marketplace sandbox: buyer side', () => {
  const aws = testServers.aws();
  const sqs = createSqsClient(aws);
  const sns = createSnsClient(aws);
  let resources: LocalAwsResources;
  let sandbox: RunningSandbox;
  const productCode = uniqueName('prod');

  beforeAll(async () => {
    resources = await ensureLocalAwsResources({
      endpoint: testServers.awsEndpoint(),
      region: aws.region,
      queueName: uniqueName('q'),
      productCode,
    });
    sandbox = await startSandbox({
      productCode,
      sns,
      snsTopicArn: resources.topicArn,
      sqs,
      eventBridgeQueueUrl: resources.eventBridgeQueueUrl,
      registrationUrl: 'http://seller.example/marketplace/register',
    });
  });
  afterAll(async () => {
    await sandbox.close();
    sqs.destroy();
    sns.destroy();
  });

  async function receiveBodies(queueUrl = resources.queueUrl): Promise<unknown[]> {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }),
    );
    return (Messages ?? []).map((m) => JSON.parse(m.Body!) as unknown);
  }

  it('"subscribe" posts the browser to the registration URL with a token that resolves', async () => {
    const response = await fetch(`${sandbox.url}/buyer/subscribe`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'model=account&freeTrial=true',
    });
    expect(response.status).toBe(200);
    const page = parsePage(await response.text());
    expect(page.byId('register')?.attrs.action).toBe('http://seller.example/marketplace/register');
    const field = (name: string) => page.elements.find((element) => element.attrs.name === name)?.attrs.value;
    expect(field('x-amzn-marketplace-offer-type')).toBe('free-trial');
    const token = field('x-amzn-marketplace-token');
    expect(token).toBeDefined();
    const resolved = await sandbox.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    expect(resolved.ProductCode).toBe(productCode);

    const index = await (await fetch(`${sandbox.url}/`)).text();
    expect(index).toContain(resolved.CustomerAWSAccountId!);
  });

  it('publishes subscribe-success through SNS, arriving in SQS in the SNS envelope', async () => {
    const { body } = await sandbox.control<{
      customer: { _id: string; customerAwsAccountId: string; offerId: string };
    }>('POST', '/control/customers', {
      model: 'legacy',
    });
    const published = await sandbox.control<{ messageId: string }>(
      'POST',
      `/control/customers/${body.customer._id}/notifications`,
      {
        action: 'subscribe-success',
      },
    );
    expect(published.status).toBe(202);
    const [envelope] = (await receiveBodies()) as Array<Record<string, string>>;
    expect(envelope).toMatchObject({
      Type: 'Notification',
      TopicArn: resources.topicArn,
      MessageId: published.body.messageId,
    });
    expect(JSON.parse(envelope!.Message!)).toMatchObject({
      action: 'subscribe-success',
      'product-code': productCode,
      'offer-identifier': body.customer.offerId,
      isFreeTrialTermPresent: 'false',
    });
    const after = await sandbox.control<{ status: string }>('GET', `/control/customers/${body.customer._id}`);
    expect(after.body.status).toBe('subscribed');
  });

  it('sends unsubscribe actions without an offer identifier', async () => {
    const { body } = await sandbox.control<{ customer: { _id: string } }>('POST', '/control/customers', {
      subscribed: true,
    });
    await sandbox.control('POST', `/control/customers/${body.customer._id}/notifications`, {
      action: 'unsubscribe-pending',
    });
    const [envelope] = (await receiveBodies()) as Array<Record<string, string>>;
    const message = JSON.parse(envelope!.Message!) as Record<string, string>;
    expect(message.action).toBe('unsubscribe-pending');
    expect(message).not.toHaveProperty('offer-identifier');
  });

  it('sends EventBridge agreement events as the bare event JSON, to the queue an EventBridge rule targets', async () => {
    const { body } = await sandbox.control<{
      customer: { _id: string; customerAwsAccountId: string; licenseArn: string };
    }>('POST', '/control/customers', {});
    const sent = await sandbox.control<{ eventId: string }>('POST', `/control/customers/${body.customer._id}/events`, {
      detailType: 'Purchase Agreement Ended - Manufacturer',
    });
    const [event] = (await receiveBodies(resources.eventBridgeQueueUrl)) as Array<Record<string, unknown>>;
    expect(event).toMatchObject({
      id: sent.body.eventId,
      source: 'aws.agreement-marketplace',
      'detail-type': 'Purchase Agreement Ended - Manufacturer',
      detail: {
        agreement: { status: 'CANCELLED', endTime: expect.any(String) },
        acceptor: { accountId: body.customer.customerAwsAccountId },
        product: { code: productCode },
        // AWS's event samples print the license ARN without the leading `arn:` that ResolveCustomer returns.
        license: { arn: body.customer.licenseArn.replace(/^arn:/, '') },
      },
    });
  });

  it('refuses unknown actions and customers with a 4xx and publishes nothing', async () => {
    const { body } = await sandbox.control<{ customer: { _id: string } }>('POST', '/control/customers', {});
    const badAction = await sandbox.control('POST', `/control/customers/${body.customer._id}/notifications`, {
      action: 'subscribe-maybe',
    });
    expect(badAction.status).toBe(400);
    const noCustomer = await sandbox.control('POST', '/control/customers/nope/notifications', {
      action: 'subscribe-success',
    });
    expect(noCustomer.status).toBe(404);
    expect(await receiveBodies()).toEqual([]);
  });
});

describe('AWS Marketplace sandbox: buyer page buttons', () => {
  it('a button on the buyer page publishes and returns to the page; an unknown one is a 400', async () => {
    const aws = testServers.aws();
    const sqs = createSqsClient(aws);
    const sns = createSnsClient(aws);
    const productCode = uniqueName('prod');
    const resources = await ensureLocalAwsResources({
      endpoint: testServers.awsEndpoint(),
      region: aws.region,
      queueName: uniqueName('q'),
      productCode,
    });
    const sandbox = await startSandbox({
      productCode,
      sns,
      snsTopicArn: resources.topicArn,
      sqs,
      eventBridgeQueueUrl: resources.eventBridgeQueueUrl,
    });
    try {
      const { body } = await sandbox.control<{ customer: { _id: string } }>('POST', '/control/customers', {});
      const form = (fields: string) =>
        fetch(`${sandbox.url}/buyer/customers/${body.customer._id}/notify`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: fields,
          redirect: 'manual',
        });
      const pressed = await form('action=subscribe-success');
      expect(pressed.status).toBe(303);
      expect(pressed.headers.get('location')).toBe('/');
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: resources.queueUrl, WaitTimeSeconds: 5 }),
      );
      const envelope = JSON.parse(Messages![0]!.Body!) as { Message: string };
      expect((JSON.parse(envelope.Message) as { action: string }).action).toBe('subscribe-success');
      expect((await form('action=delete-everything')).status).toBe(400);
    } finally {
      await sandbox.close();
      sqs.destroy();
      sns.destroy();
    }
  });
});
