/**
 * EventBridge agreement events, classified without any server: AWS's own
 * samples (from the Seller Guide's "Amazon EventBridge events" page), and the
 * sandbox's events for every detail type in both roles.
 */
import { classifyEventBridgeEvent } from '../../poller/formats/eventbridge';
import type { Classified } from '../../poller/formats/classified';
import { eventBridgeBody, syntheticCustomer } from '../../sandbox/notification-bodies';
import type { EventBodyOptions } from '../../sandbox/notifications';

const customer = syntheticCustomer(7, 'prodcode7example');
/** The sandbox's event as the rule delivers it; `detail` only as far as these tests read it. */
interface SandboxEvent {
  detail: { agreement: Record<string, unknown>; license?: { arn: string } };
}
const sandboxEvent = (detailType: string, options?: EventBodyOptions) =>
  JSON.parse(eventBridgeBody(customer, detailType, 'us-east-1', options).body) as SandboxEvent;

/** AWS's sample of "Purchase Agreement Created - Proposer": no `detail.product`, no `detail.license`. */
const awsCreatedProposer = {
  version: '0',
  id: '12345678-1234-1234-1234-123456789012',
  'detail-type': 'Purchase Agreement Created - Proposer',
  source: 'aws.agreement-marketplace',
  account: '123456512334',
  time: '2024-08-30T21:36:03Z',
  region: 'us-east-1',
  resources: ['arn:aws:aws-marketplace::aws:agreement:agmt-4mwg1nevbokzw95eca5797ixs'],
  detail: {
    requestId: '3d4c9f9b-b809-4f5e-9fac-a9ae98b05cbb',
    catalog: 'AWSMarketplace',
    agreement: {
      id: 'agmt-4mwg1nevbokzw95eca5797ixs',
      intent: 'NEW',
      status: 'ACTIVE',
      acceptanceTime: '2024-06-26T21:36:03Z',
      startTime: '2024-08-30T21:36:03Z',
      endTime: '2025-05-30T21:36:03Z',
    },
    resaleAuthorization: { id: 'resaleauthz-yaxjqxiskysxa' },
    acceptor: { accountId: '845735284135' },
    proposer: { accountId: '123456512334' },
    offer: { id: 'offer-1234567890123' },
  },
};

/** AWS's sample of "License Deprovisioned - Manufacturer": the license ARN printed without `arn:`. */
const awsLicenseDeprovisioned = {
  ...awsCreatedProposer,
  'detail-type': 'License Deprovisioned - Manufacturer',
  detail: {
    requestId: '3d4c9f9b-b809-4f5e-9fac-a9ae98b05cbb',
    catalog: 'AWSMarketplace',
    agreement: { id: 'agmt-4mwg1nevbokzw95eca5797ixs' },
    product: { code: 'aw4fgf5tyo5w2ap6fEXAMPLE', id: 'prod-qtwveEXAMPLE' },
    license: { arn: 'aws:license-manager:us-east-1:123456789012:l-e52ca6f38bf84d0fafb8802ca15ac11x' },
    acceptor: { accountId: '845735284135' },
    proposer: { accountId: '123456512334' },
    offer: { id: '8kkr91jo647j3qxlcjhlqce7y' },
  },
};

/** AWS's sample of a cancellation-request event: the buyer is named inside the agreement, there is no acceptor. */
const awsCancellationRequest = {
  ...awsCreatedProposer,
  'detail-type': 'Agreement Cancellation Request Pending Approval - Proposer',
  resources: [],
  detail: {
    requestId: '3d4c9f9b-b809-4f5e-9fac-a9ae98b05cbb',
    catalog: 'AWSMarketplace',
    agreement: {
      id: 'agmt-abcdexampleid',
      acceptorId: '123465789012',
      productId: 'prod-exampleid',
      offerId: 'offer-exampleid',
    },
    agreementCancellationRequest: {
      id: 'acr-abcdexampleid',
      reasonCode: 'INCORRECT_TERMS_ACCEPTED',
      statusCode: 'PENDING_APPROVAL',
    },
  },
};

function withDetail(event: { detail: object }, detail: object) {
  return { ...event, detail: { ...event.detail, ...detail } };
}

function notificationOf(classified: Classified) {
  if (classified.kind !== 'event') throw new Error(`expected an event, got ${JSON.stringify(classified)}`);
  return classified.notification;
}

type Expected = { action: string; amendment?: true } | { ignored: string };

const EVENTS: Array<[string, Expected]> = [
  ['Purchase Agreement Created', { action: 'subscribe-success' }],
  ['Purchase Agreement Amended', { action: 'subscribe-success', amendment: true }],
  ['Purchase Agreement Ended', { action: 'unsubscribe-pending' }],
  ['License Deprovisioned', { action: 'unsubscribe-success' }],
  ['License Updated', { ignored: 'no subscription change' }],
  ['Purchase Agreement Ending', { ignored: 'a reminder before the agreement ends' }],
  ['Agreement Cancellation Request Pending Approval', { ignored: 'a cancellation request' }],
  ['Agreement Cancellation Request Approved', { ignored: 'a cancellation request' }],
  ['Purchase Agreement Billing Adjustment Completed', { ignored: 'a billing adjustment' }],
  ['Purchase Agreement Billing Adjustment Failed', { ignored: 'a billing adjustment' }],
  ['Purchase Agreement Advisory Issued', { ignored: 'no subscription change' }],
  ['Purchase Agreement Renewal Upcoming', { ignored: 'renewal terms' }],
];

const TABLE = EVENTS.flatMap(([event, expected]) =>
  (['Manufacturer', 'Proposer'] as const).map((role) => [`${event} - ${role}`, expected] as const),
);

describe('EventBridge agreement events', () => {
  it.each(TABLE)('%s', (detailType, expected) => {
    const classified = classifyEventBridgeEvent(sandboxEvent(detailType));
    if ('ignored' in expected) {
      expect(classified).toMatchObject({
        kind: 'ignored',
        format: 'eventbridge',
        detailType,
        awsAccountId: customer.customerAwsAccountId,
      });
      expect(classified).toMatchObject({
        reason: expect.stringMatching(new RegExp(`^${detailType}: ${expected.ignored}`)),
      });
      return;
    }
    const notification = notificationOf(classified);
    expect(notification).toMatchObject({
      format: 'eventbridge',
      detailType,
      action: expected.action,
      awsAccountId: customer.customerAwsAccountId,
      productCode: customer.productCode,
      licenseArn: customer.licenseArn,
      agreementId: expect.stringMatching(/^agmt-/),
      offerIdentifier: customer.offerId,
      sentAt: expect.any(Date),
    });
    expect(notification.amendment).toBe(expected.amendment);
  });

  it('acts on AWS’s own sample of an agreement event, which has no product and no license', () => {
    const notification = notificationOf(classifyEventBridgeEvent(awsCreatedProposer));
    expect(notification).toEqual({
      messageId: '12345678-1234-1234-1234-123456789012',
      format: 'eventbridge',
      detailType: 'Purchase Agreement Created - Proposer',
      sentAt: new Date('2024-08-30T21:36:03Z'),
      action: 'subscribe-success',
      awsAccountId: '845735284135',
      agreementId: 'agmt-4mwg1nevbokzw95eca5797ixs',
      offerIdentifier: 'offer-1234567890123',
      intent: 'NEW',
    });
  });

  it('acts on AWS’s sample of License Deprovisioned, restoring the `arn:` AWS prints without', () => {
    expect(notificationOf(classifyEventBridgeEvent(awsLicenseDeprovisioned))).toMatchObject({
      action: 'unsubscribe-success',
      productCode: 'aw4fgf5tyo5w2ap6fEXAMPLE',
      licenseArn: 'arn:aws:license-manager:us-east-1:123456789012:l-e52ca6f38bf84d0fafb8802ca15ac11x',
      agreementId: 'agmt-4mwg1nevbokzw95eca5797ixs',
    });
  });

  it.each([
    ['without the leading arn:', 'aws:license-manager::111122223333:license/l-abc123'],
    ['with it', 'arn:aws:license-manager::111122223333:license/l-abc123'],
    ['with surrounding blanks', '  arn:aws:license-manager::111122223333:license/l-abc123 '],
  ])('normalizes a license ARN %s', (_, arn) => {
    const event = withDetail(awsLicenseDeprovisioned, { license: { arn } });
    expect(notificationOf(classifyEventBridgeEvent(event)).licenseArn).toBe(
      'arn:aws:license-manager::111122223333:license/l-abc123',
    );
  });

  it('correlates by the license alone, or by the product alone', () => {
    const byLicense = withDetail(awsLicenseDeprovisioned, { agreement: null, product: null });
    expect(notificationOf(classifyEventBridgeEvent(byLicense))).toMatchObject({
      licenseArn: expect.stringMatching(/^arn:aws:license-manager/),
    });
    const byProduct = withDetail(awsLicenseDeprovisioned, {
      agreement: {},
      license: undefined,
      product: { code: 'onlyproduct' },
    });
    const notification = notificationOf(classifyEventBridgeEvent(byProduct));
    expect(notification).toMatchObject({ productCode: 'onlyproduct' });
    expect(notification).not.toHaveProperty('licenseArn');
    expect(notification).not.toHaveProperty('agreementId');
  });

  it('dead-letters an event that names no product, license or agreement: it cannot be correlated', () => {
    const nameless = withDetail(awsCreatedProposer, {
      agreement: { intent: 'NEW', status: 'ACTIVE' },
      product: { id: 'prod-x', title: 'no code' },
    });
    expect(classifyEventBridgeEvent(nameless)).toEqual({
      kind: 'poison',
      reason:
        'EventBridge Purchase Agreement Created - Proposer cannot be correlated: no product code, license ARN or agreement id',
    });
  });

  it('dead-letters an event to act on that names no buyer account', () => {
    const detail: Partial<typeof awsCreatedProposer.detail> = { ...awsCreatedProposer.detail };
    delete detail.acceptor;
    const classified = classifyEventBridgeEvent({ ...awsCreatedProposer, detail });
    expect(classified).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/^EventBridge event: .*acceptor/),
    });
  });

  it('marks an amendment, and a Created event whose intent is AMEND, as not a new subscription', () => {
    const amended = notificationOf(classifyEventBridgeEvent(sandboxEvent('Purchase Agreement Amended - Proposer')));
    expect(amended).toMatchObject({ action: 'subscribe-success', amendment: true, intent: 'AMEND' });
    const createdAmend = notificationOf(
      classifyEventBridgeEvent(withDetail(awsCreatedProposer, { agreement: { id: 'agmt-1', intent: 'AMEND' } })),
    );
    expect(createdAmend).toMatchObject({ action: 'subscribe-success', amendment: true, intent: 'AMEND' });
    const renewed = notificationOf(
      classifyEventBridgeEvent(sandboxEvent('Purchase Agreement Created - Manufacturer', { intent: 'RENEW' })),
    );
    expect(renewed).toMatchObject({ action: 'subscribe-success', intent: 'RENEW' });
    expect(renewed).not.toHaveProperty('amendment');
  });

  it('records and acknowledges AWS’s cancellation-request sample, naming the buyer from the agreement', () => {
    expect(classifyEventBridgeEvent(awsCancellationRequest)).toMatchObject({
      kind: 'ignored',
      awsAccountId: '123465789012',
      reason:
        'Agreement Cancellation Request Pending Approval - Proposer: a cancellation request; an approved one ends with Purchase Agreement Ended',
    });
  });

  it('ignores buyer-side events, unknown detail types, and other sources', () => {
    expect(
      classifyEventBridgeEvent({ ...awsCreatedProposer, 'detail-type': 'Purchase Agreement Created - Acceptor' }),
    ).toMatchObject({
      kind: 'ignored',
      reason: 'Purchase Agreement Created - Acceptor: sent to the buyer, not the seller',
    });
    expect(
      classifyEventBridgeEvent({ ...awsCreatedProposer, 'detail-type': 'Purchase Agreement Renewed - Manufacturer' }),
    ).toMatchObject({
      kind: 'ignored',
      reason: 'unknown detail type "Purchase Agreement Renewed - Manufacturer"',
    });
    expect(
      classifyEventBridgeEvent({ ...awsCreatedProposer, 'detail-type': 'Purchase Agreement Created' }),
    ).toMatchObject({
      kind: 'ignored',
      reason: 'unknown detail type "Purchase Agreement Created"',
    });
    const foreign = {
      version: '0',
      id: 'ev-1',
      'detail-type': 'EC2 Instance State-change Notification',
      source: 'aws.ec2',
      detail: { 'instance-id': 'i-1' },
    };
    expect(classifyEventBridgeEvent(foreign)).toMatchObject({
      kind: 'ignored',
      messageId: 'ev-1',
      reason: 'event source "aws.ec2" is not aws.agreement-marketplace',
    });
    // Even a foreign event we cannot read as an event is someone else's, not poison.
    expect(classifyEventBridgeEvent({ id: 'ev-2', source: 'aws.ec2', 'detail-type': 7 })).toMatchObject({
      kind: 'ignored',
      messageId: 'ev-2',
    });
  });

  it('dead-letters a body of our source that is not an event', () => {
    expect(
      classifyEventBridgeEvent({
        source: 'aws.agreement-marketplace',
        'detail-type': 'Purchase Agreement Created - Proposer',
      }),
    ).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/^EventBridge event: .*id/),
    });
  });
});

describe('the sandbox’s EventBridge events', () => {
  it('prints the license ARN as AWS does, without the leading arn:', () => {
    expect(sandboxEvent('License Updated - Manufacturer').detail.license?.arn).toBe(
      customer.licenseArn.replace(/^arn:/, ''),
    );
  });

  it('shapes an agreement event like AWS’s sample, without product or license', () => {
    const event = sandboxEvent('Purchase Agreement Created - Proposer', { shape: 'aws-sample' });
    expect(event.detail).not.toHaveProperty('product');
    expect(event.detail).not.toHaveProperty('license');
    expect(event.detail.agreement).toMatchObject({
      id: expect.stringMatching(/^agmt-/),
      intent: 'NEW',
      status: 'ACTIVE',
    });
    expect(notificationOf(classifyEventBridgeEvent(event))).not.toHaveProperty('productCode');
    const ended = sandboxEvent('Purchase Agreement Ended - Proposer', { shape: 'aws-sample' });
    expect(Object.keys(ended.detail.agreement).sort()).toEqual(['id', 'status']);
  });

  it('keeps product and license on a License event shaped like AWS’s sample', () => {
    const event = sandboxEvent('License Deprovisioned - Manufacturer', { shape: 'aws-sample' });
    expect(event.detail).toMatchObject({
      product: { code: customer.productCode },
      license: { arn: expect.any(String) },
    });
    expect(Object.keys(event.detail.agreement)).toEqual(['id']);
  });
});
