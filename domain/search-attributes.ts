/**
 * Custom search attributes let operators find workflows in the Temporal UI by
 * business key. The local dev server registers exactly these (see infra/servers.ts);
 * a production cluster needs them created once with `temporal operator search-attribute create`.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const AwsAccountId = defineSearchAttributeKey('AwsAccountId', SearchAttributeType.KEYWORD);
export const AwsCustomerIdentifier = defineSearchAttributeKey('AwsCustomerIdentifier', SearchAttributeType.KEYWORD);
export const AwsProductCode = defineSearchAttributeKey('AwsProductCode', SearchAttributeType.KEYWORD);
export const AwsLicenseArn = defineSearchAttributeKey('AwsLicenseArn', SearchAttributeType.KEYWORD);
export const PlatformAccountId = defineSearchAttributeKey('PlatformAccountId', SearchAttributeType.KEYWORD);
export const BillingStatus = defineSearchAttributeKey('BillingStatus', SearchAttributeType.KEYWORD);
export const MeteringHour = defineSearchAttributeKey('MeteringHour', SearchAttributeType.DATETIME);

export const customSearchAttributes = [
  AwsAccountId,
  AwsCustomerIdentifier,
  AwsProductCode,
  AwsLicenseArn,
  PlatformAccountId,
  BillingStatus,
  MeteringHour,
] as const;

const cliTypeNames: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  return customSearchAttributes.flatMap((key) => ['--search-attribute', `${key.name}=${cliTypeNames[key.type]}`]);
}
