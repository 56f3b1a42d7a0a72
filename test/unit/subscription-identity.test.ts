/**
 * Which subscription an event names (workflows/subscription-identity.ts): AWS
 * spells one license ARN several ways, and every spelling must lead to the
 * same workflow.
 */
import {
  licenseIdOf,
  normalizeLicenseArn,
  parseSubscriptionWorkflowId,
  sameLicense,
  subscriptionKey,
  subscriptionWorkflowId,
} from '../../domain/subscription-identity';

/** One license as ResolveCustomer, EventBridge's license events and AWS's pages print it. */
const SPELLINGS = [
  'arn:aws:license-manager::111122223333:license/l-0abc123',
  'aws:license-manager::111122223333:license/l-0abc123',
  'arn:aws:license-manager:us-east-1:111122223333:l-0abc123',
  'aws:license-manager:us-east-1:111122223333:l-0abc123',
  '  arn:aws:license-manager::111122223333:license/l-0abc123 ',
];

describe('subscription identity', () => {
  it.each(SPELLINGS)('reads the license id out of %j', (arn) => {
    expect(licenseIdOf(arn)).toBe('l-0abc123');
  });

  it('adds the missing `arn:` prefix and leaves a full ARN as it is', () => {
    expect(normalizeLicenseArn('aws:license-manager::1:license/l-1')).toBe('arn:aws:license-manager::1:license/l-1');
    expect(normalizeLicenseArn('arn:aws:license-manager::1:license/l-1')).toBe(
      'arn:aws:license-manager::1:license/l-1',
    );
  });

  it('keys every spelling of one license to one workflow', () => {
    const ids = new Set(
      SPELLINGS.map((licenseArn) =>
        subscriptionWorkflowId({ awsAccountId: '111122223333', productCode: 'prod', licenseArn }),
      ),
    );
    expect([...ids]).toEqual(['subscription:license:l-0abc123']);
  });

  it('keys by AWS account and product when AWS named no license (legacy listings, SNS)', () => {
    expect(subscriptionKey({ awsAccountId: '111122223333', productCode: 'prod' })).toBe('111122223333:prod');
    expect(subscriptionKey({ awsAccountId: '111122223333', productCode: 'prod', licenseArn: '' })).toBe(
      '111122223333:prod',
    );
  });

  it('keeps two licenses of one account and product (concurrent agreements) apart', () => {
    const a = subscriptionKey({
      awsAccountId: '111122223333',
      productCode: 'prod',
      licenseArn: 'arn:aws:license-manager::1:license/l-a',
    });
    const b = subscriptionKey({
      awsAccountId: '111122223333',
      productCode: 'prod',
      licenseArn: 'arn:aws:license-manager::1:license/l-b',
    });
    expect(a).not.toBe(b);
  });

  it('compares licenses by id, and an unknown license is never the same as another', () => {
    expect(sameLicense(SPELLINGS[0], SPELLINGS[2])).toBe(true);
    expect(sameLicense('arn:aws:license-manager::1:license/l-a', 'arn:aws:license-manager::1:license/l-b')).toBe(false);
    expect(sameLicense(undefined, undefined)).toBe(false);
    expect(sameLicense(SPELLINGS[0], undefined)).toBe(false);
  });

  it('falls back to the whole ARN when it carries no `l-` id, so two such ARNs stay distinct', () => {
    expect(licenseIdOf('arn:aws:license-manager::1:license/odd-one')).toBe(
      'arn:aws:license-manager::1:license/odd-one',
    );
    expect(
      sameLicense('arn:aws:license-manager::1:license/odd-one', 'arn:aws:license-manager::1:license/odd-two'),
    ).toBe(false);
  });

  it('reads the key back from a workflow id, and nothing from any other id', () => {
    const ref = { awsAccountId: '111122223333', productCode: 'prod' };
    expect(parseSubscriptionWorkflowId(subscriptionWorkflowId(ref))).toBe(subscriptionKey(ref));
    expect(parseSubscriptionWorkflowId('link:111122223333:prod')).toBeUndefined();
    expect(parseSubscriptionWorkflowId('cancel:subscription:x')).toBeUndefined();
  });
});
