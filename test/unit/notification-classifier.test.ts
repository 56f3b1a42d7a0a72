/**
 * What the poller makes of one SQS body (poller/messages.ts `classifyMessage`
 * and the SNS format in poller/formats/sns.ts), without a queue: what each
 * queue accepts, envelopes checked for topic and signature, forged and
 * hostile bodies untrusted, and trusted bodies that break AWS's schema
 * poison. EventBridge events have their own suite (eventbridge-format).
 */
import { classifyMessage, type Received, type TrustPolicy } from '../../poller/messages';
import { classifySubscriptionMessage } from '../../poller/formats/sns';
import { SnsSignatureVerifier } from '../../poller/sns-signature';
import {
  eventBridgeBody,
  rawMessageBody,
  snsEnvelopeBody,
  syntheticCustomer,
  type SnsSigner,
} from '../../sandbox/notification-bodies';
import { signedEnvelope } from '../../sandbox/sns-signing';
import { snsSigningKey } from './helpers/sns-signing-key';

const TOPIC = 'arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prodcode7';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6209c161c6221fdf56ec1eb5c821d112.pem';
const customer = syntheticCustomer(7, 'prodcode7');
const signer = (): SnsSigner => ({ key: snsSigningKey(), certUrl: CERT_URL, topicArn: TOPIC });

/** A verifier that is served our key's certificate, counting fetches; `status` other than 200 makes it unavailable. */
function verifier(status = 200) {
  const fetched: string[] = [];
  const fetchImpl = (async (url: string) => (
    fetched.push(url),
    new Response(snsSigningKey().certificatePem, { status })
  )) as unknown as typeof fetch;
  return { fetched, verifier: new SnsSignatureVerifier({ fetchImpl }) };
}

const snsQueue = (overrides: Partial<TrustPolicy> = {}): TrustPolicy => ({
  formats: ['sns'],
  topicArns: [TOPIC],
  verifier: verifier().verifier,
  ...overrides,
});
const classify = (body: string, trust: TrustPolicy = snsQueue()) => classifyMessage(body, 'sqs-message-1', trust);
const untrusted = (check: string, reason: string | RegExp, retryable = false) => ({
  kind: 'untrusted',
  check,
  reason: typeof reason === 'string' ? reason : expect.stringMatching(reason),
  retryable,
});

/** An envelope around any message, genuinely signed: its signature holds whatever it carries. */
const signedAround = (message: string) =>
  JSON.stringify(signedEnvelope({ topicArn: TOPIC, message, certUrl: CERT_URL, version: '2' }, snsSigningKey()));

describe('classifyMessage: what each queue accepts', () => {
  it('hands over a signed envelope from a configured topic, under its SNS MessageId and send time', async () => {
    const body = snsEnvelopeBody(
      customer,
      'unsubscribe-pending',
      signer(),
      'sns-id-1',
      new Date('2026-11-26T10:00:00Z'),
    );
    expect(await classify(body)).toEqual({
      kind: 'event',
      notification: {
        messageId: 'sns-id-1',
        format: 'sns',
        action: 'unsubscribe-pending',
        productCode: 'prodcode7',
        customerIdentifier: customer.customerAwsAccountId,
        awsAccountId: customer.customerAwsAccountId,
        freeTrial: false,
        sentAt: new Date('2026-11-26T10:00:00Z'),
      },
    });
  });

  it('refuses raw deliveries and EventBridge events on a queue that carries only envelopes (the default)', async () => {
    expect(await classify(rawMessageBody(customer, 'unsubscribe-success'))).toEqual(
      untrusted('format', 'a sns-raw body is not accepted on this queue, which carries only sns'),
    );
    expect(await classify(eventBridgeBody(customer, 'License Deprovisioned - Manufacturer').body)).toEqual(
      untrusted('format', 'a eventbridge body is not accepted on this queue, which carries only sns'),
    );
  });

  it('takes a raw delivery only where the queue carries sns-raw, keyed by the SQS message id', async () => {
    const received = await classify(
      rawMessageBody(customer, 'subscribe-success'),
      snsQueue({ formats: ['sns', 'sns-raw'] }),
    );
    expect(received).toMatchObject({
      kind: 'event',
      notification: { messageId: 'sqs-message-1', format: 'sns-raw', action: 'subscribe-success' },
    });
  });

  it('takes an EventBridge event on the events queue, and an envelope there is untrusted', async () => {
    const events: TrustPolicy = { formats: ['eventbridge'], topicArns: [] };
    const { id, body } = eventBridgeBody(customer, 'Purchase Agreement Created - Manufacturer');
    expect(await classify(body, events)).toMatchObject({
      kind: 'event',
      notification: { messageId: id, format: 'eventbridge', action: 'subscribe-success' },
    });
    expect(await classify(snsEnvelopeBody(customer, 'subscribe-success', signer()), events)).toMatchObject({
      kind: 'untrusted',
      check: 'format',
    });
  });
});

describe('classifyMessage: envelopes are believed only from our topic, with SNS signature', () => {
  it('refuses an envelope from another topic without fetching any certificate', async () => {
    const { fetched, verifier: v } = verifier();
    const body = snsEnvelopeBody(customer, 'unsubscribe-success', {
      ...signer(),
      topicArn: 'arn:aws:sns:us-east-1:999999999999:attacker',
    });
    expect(await classify(body, snsQueue({ verifier: v }))).toEqual(
      untrusted('topic', /^TopicArn arn:aws:sns:us-east-1:999999999999:attacker is not a configured topic/),
    );
    expect(fetched).toEqual([]);
  });

  it('with no topic configured, refuses every envelope', async () => {
    expect(
      await classify(snsEnvelopeBody(customer, 'subscribe-success', signer()), snsQueue({ topicArns: [] })),
    ).toMatchObject({ kind: 'untrusted', check: 'topic' });
  });

  it('refuses a changed message, and an envelope with Type removed (still an envelope claim, not raw)', async () => {
    const genuine = JSON.parse(snsEnvelopeBody(customer, 'subscribe-success', signer())) as Record<string, string>;
    const changed = { ...genuine, Message: genuine.Message!.replace('subscribe-success', 'unsubscribe-success') };
    expect(await classify(JSON.stringify(changed))).toEqual(
      untrusted('signature', 'the signature does not match the message'),
    );
    const withoutType: Record<string, string> = { ...genuine };
    delete withoutType.Type;
    const received = await classify(JSON.stringify(withoutType), snsQueue({ formats: ['sns', 'sns-raw'] }));
    expect(received).toEqual(untrusted('signature', /^SNS envelope: /));
  });

  it('an envelope whose certificate cannot be fetched now is untrusted but retryable: not forged, not yet verified', async () => {
    const { verifier: unavailable } = verifier(503);
    expect(
      await classify(snsEnvelopeBody(customer, 'subscribe-success', signer()), snsQueue({ verifier: unavailable })),
    ).toEqual(untrusted('signature', 'signing certificate: fetching it answered 503', true));
  });

  it('without a verifier (emulators that cannot sign) believes the topic alone', async () => {
    const genuine = JSON.parse(snsEnvelopeBody(customer, 'subscribe-success', signer())) as Record<string, string>;
    const unsigned = { ...genuine, Signature: 'not-a-signature' };
    expect(await classify(JSON.stringify(unsigned), snsQueue({ verifier: undefined }))).toMatchObject({
      kind: 'event',
    });
  });

  it('a signed envelope whose message is not what AWS sends is poison: trusted, but never deliverable', async () => {
    expect(await classify(signedAround('not json'))).toEqual({ kind: 'poison', reason: 'SNS message is not JSON' });
    expect(await classify(signedAround(JSON.stringify({ action: 'subscribe-success', 'product-code': 'p' })))).toEqual({
      kind: 'poison',
      reason: 'sns message names no customer (customer-identifier or customer-aws-account-id)',
    });
    expect(
      await classify(
        signedAround(
          JSON.stringify({ action: 'subscribe-success', 'product-code': 'p', 'customer-aws-account-id': '12345' }),
        ),
      ),
    ).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/^sns message: \/customer-aws-account-id /),
    });
  });
});

describe('classifyMessage: hostile bodies never throw and are untrusted', () => {
  it.each([
    ['not JSON', 'not json'],
    ['a JSON string', '"subscribe-success"'],
    ['a JSON number', '42'],
    ['null', 'null'],
    ['an array', '[{"action":"subscribe-success"}]'],
    ['empty', ''],
  ])('%s is not a JSON object', async (_case, body) => {
    expect(await classify(body, snsQueue({ formats: ['sns', 'sns-raw', 'eventbridge'] }))).toEqual(
      untrusted('format', 'the body is not a JSON object'),
    );
  });

  it('a body nested 100,000 levels deep is untrusted at once', async () => {
    const body = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    expect(await classify(body)).toEqual(untrusted('format', 'the body nests deeper than 32 levels'));
  });

  it('the depth limit sits at 32 levels: a trusted format nested 31 deep still passes', async () => {
    const nested = (levels: number) => {
      const message = JSON.parse(rawMessageBody(customer, 'subscribe-success')) as Record<string, unknown>;
      let inner: Record<string, unknown> = {};
      message.extra = inner;
      for (let i = 1; i < levels; i++) inner = inner.x = {};
      return JSON.stringify(message);
    };
    const raw = snsQueue({ formats: ['sns-raw'] });
    expect(await classify(nested(31), raw)).toMatchObject({ kind: 'event' });
    expect(await classify(nested(32), raw)).toEqual(untrusted('format', 'the body nests deeper than 32 levels'));
  });

  it.each([
    ['__proto__', '{"__proto__":{"action":"subscribe-success"},"constructor":{"prototype":{}}}'],
    ['toString', '{"toString":"x","valueOf":"y","hasOwnProperty":"z"}'],
  ])('prototype names (%s) are plain data: neither format, untrusted', async (_case, body) => {
    expect(await classify(body, snsQueue({ formats: ['sns', 'sns-raw', 'eventbridge'] }))).toMatchObject({
      kind: 'untrusted',
      check: 'format',
    });
  });

  it('an unknown action on a trusted raw queue is ignored (recorded, acknowledged), a prototype name included', async () => {
    const raw = snsQueue({ formats: ['sns-raw'] });
    for (const action of ['subscribe-renewed', '__proto__', 'constructor']) {
      const body = JSON.stringify({ ...JSON.parse(rawMessageBody(customer, 'subscribe-success')), action });
      expect(await classify(body, raw)).toMatchObject({
        kind: 'ignored',
        reason: `unknown action "${action}"`,
        awsAccountId: customer.customerAwsAccountId,
      });
    }
  });

  it('an action string of 200 KB is cut in the reason', async () => {
    const body = JSON.stringify({
      ...JSON.parse(rawMessageBody(customer, 'subscribe-success')),
      action: 'x'.repeat(200_000),
    });
    const received = (await classify(body, snsQueue({ formats: ['sns-raw'] }))) as Extract<
      Received,
      { kind: 'ignored' }
    >;
    expect(received.kind).toBe('ignored');
    expect(received.reason.length).toBeLessThan(120);
  });
});

describe('the SNS subscription message', () => {
  const base = { action: 'subscribe-success', 'product-code': 'prod', 'customer-aws-account-id': '123456789012' };

  it("reads AWS's free-trial flag, which AWS sends as a string (a JSON boolean is converted), and nothing else", () => {
    const read = (flag: unknown) =>
      classifySubscriptionMessage({ ...base, isFreeTrialTermPresent: flag }, 'm1', 'sns', undefined);
    expect(read('true')).toMatchObject({ kind: 'event', notification: { freeTrial: true } });
    expect(read('false')).toMatchObject({ kind: 'event', notification: { freeTrial: false } });
    expect(read(true)).toMatchObject({ kind: 'event', notification: { freeTrial: true } });
    expect(read('yes')).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/^sns message: \/isFreeTrialTermPresent /),
    });
    expect(read({ toString: 'true' })).toMatchObject({ kind: 'poison' });
  });

  it('names the customer by identifier alone (legacy listings) or by AWS account', () => {
    const legacy = classifySubscriptionMessage(
      { action: 'unsubscribe-success', 'product-code': 'prod', 'customer-identifier': 'cust-1' },
      'm1',
      'sns',
      undefined,
    );
    expect(legacy).toEqual({
      kind: 'event',
      notification: {
        messageId: 'm1',
        format: 'sns',
        action: 'unsubscribe-success',
        productCode: 'prod',
        customerIdentifier: 'cust-1',
      },
    });
  });

  it('is poison without a product code, with an empty action, or with an account id that is not 12 digits', () => {
    for (const message of [
      { ...base, 'product-code': undefined },
      { ...base, action: '' },
      { ...base, 'customer-aws-account-id': '12345678901x' },
    ]) {
      expect(classifySubscriptionMessage(JSON.parse(JSON.stringify(message)), 'm1', 'sns', undefined)).toMatchObject({
        kind: 'poison',
      });
    }
  });
});
