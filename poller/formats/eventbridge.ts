/**
 * EventBridge `aws.agreement-marketplace` events, which replace SNS for new
 * listings. An EventBridge rule targeting SQS puts the bare event in the body.
 * The events that change a subscription map onto the SNS action with the same
 * meaning, so the rest of the service sees one kind of event.
 *
 * What AWS documents (AWS Marketplace Seller Guide, "Managing SaaS subscription
 * events with Amazon EventBridge",
 * https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html,
 * and its event reference "Amazon EventBridge events", notifications-eventbridge.html):
 * - A detail type is "<event> - <role>". Purchase Agreement Created, Amended
 *   and Ended come as `- Manufacturer` and `- Proposer`; License Updated and
 *   License Deprovisioned as `- Manufacturer` only. Proposer-only: Purchase
 *   Agreement Ending (180 to 30 days before the end), Renewal Terms Finalized,
 *   Renewal Upcoming, Agreement Cancellation Request Pending Approval /
 *   Approved / Rejected / Cancelled / Validation Failed, and Purchase Agreement
 *   Billing Adjustment Completed / Failed. Purchase Agreement Advisory Issued /
 *   Resolved are `- Manufacturer`. `- Acceptor` events go to the buyer.
 * - An ISV selling its own public or private offer is both manufacturer and
 *   proposer; a channel partner's private offer makes it manufacturer only.
 *   "To avoid redundant messages, only the proposer purchase agreement event
 *   is sent when you are both the manufacturer and proposer."
 * - `detail`: agreement {id, intent (NEW, RENEW, REPLACE, AMEND), status,
 *   acceptanceTime, startTime, endTime} (Ended: id and status only),
 *   acceptor {accountId}, proposer {accountId}, offer {id}, and for a channel
 *   partner's offer resaleAuthorization {id}. The agreement samples carry no
 *   `product` and no `license`; newer ones carry product {id, title} without a
 *   code. The License samples carry product {code, id} and license {arn},
 *   printed without the leading `arn:`
 *   ("aws:license-manager:us-east-1:123456789012:l-…"). Cancellation-request
 *   and billing-adjustment events carry no acceptor.
 * - Ended opens the one-hour final-metering window; License Deprovisioned closes it.
 */
import { checkWith, Type, type SchemaIssue, type Static, type TSchema } from '../../lib/schema';
import type { NotificationAction } from '../../lib/store/marketplace';
import { normalizeLicenseArn } from '../../domain/subscription-identity';
import { describeIssues, type Classified, type EventFields, type IgnoredNotification } from './classified';

export const EVENT_SOURCE = 'aws.agreement-marketplace';

/** What an event means for a SaaS pay-as-you-go subscription: an action, or why there is none. */
type Meaning = { action: NotificationAction; amendment?: true } | { noChange: string };

const NO_SUBSCRIPTION_CHANGE: Meaning = { noChange: 'no subscription change' };

/**
 * By detail type without its role. We act on `- Manufacturer` and `- Proposer`
 * alike: a channel partner's offer reaches us as Manufacturer only, our own
 * offers (AWS says) as Proposer only. Should both variants of one change ever
 * arrive, they have different event ids: both are handed off, and the
 * workflow's ordering rules make the second a no-op.
 */
// A Map, not an object: a detail type such as "constructor - Manufacturer" must find nothing.
const MEANING_OF_EVENT = new Map<string, Meaning>([
  ['Purchase Agreement Created', { action: 'subscribe-success' }],
  // A changed agreement, not a new subscription: the workflow never (re)activates on it.
  ['Purchase Agreement Amended', { action: 'subscribe-success', amendment: true }],
  // Opens the one-hour final-metering window.
  ['Purchase Agreement Ended', { action: 'unsubscribe-pending' }],
  // Closes it.
  ['License Deprovisioned', { action: 'unsubscribe-success' }],
  // Entitlements matter to contracts; a pay-as-you-go subscription is unchanged.
  ['License Updated', NO_SUBSCRIPTION_CHANGE],
  [
    'Purchase Agreement Ending',
    {
      noChange: 'a reminder before the agreement ends (it may still renew); the end itself is Purchase Agreement Ended',
    },
  ],
]);

/** Families of events, by the start of their name. */
const MEANING_OF_FAMILY: ReadonlyArray<readonly [string, Meaning]> = [
  [
    'Agreement Cancellation Request',
    { noChange: 'a cancellation request; an approved one ends with Purchase Agreement Ended' },
  ],
  ['Purchase Agreement Billing Adjustment', { noChange: 'a billing adjustment (refund); no subscription change' }],
  ['Purchase Agreement Advisory', NO_SUBSCRIPTION_CHANGE],
  [
    'Purchase Agreement Renewal',
    { noChange: 'renewal terms; a renewal arrives as Purchase Agreement Created (intent RENEW)' },
  ],
];

const ROLE = / - (Manufacturer|Proposer|Acceptor)$/;

/** AWS prints null for some absent values (resaleAuthorization.id): treat null as absent. */
const Maybe = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** Enough to tell whose event it is and what it is about, before reading the detail. */
const EventHead = Type.Object({
  id: Type.String({ minLength: 1 }),
  'detail-type': Type.String({ minLength: 1 }),
  source: Type.String({ minLength: 1 }),
  time: Type.Optional(Type.String()),
});

/** The detail of an event we act on. */
const AgreementEvent = Type.Object({
  detail: Type.Object({
    agreement: Maybe(
      Type.Object({ id: Maybe(Type.String()), intent: Maybe(Type.String()), status: Maybe(Type.String()) }),
    ),
    acceptor: Type.Object({ accountId: Type.String({ pattern: '^[0-9]{12}$' }) }),
    offer: Maybe(Type.Object({ id: Maybe(Type.String()) })),
    // Absent from AWS's agreement samples, and without a code in the newer ones.
    product: Maybe(Type.Object({ code: Maybe(Type.String()), id: Maybe(Type.String()) })),
    license: Maybe(Type.Object({ arn: Maybe(Type.String()) })),
  }),
});
type AgreementDetail = Static<typeof AgreementEvent>['detail'];

export function looksLikeEventBridgeEvent(json: unknown): boolean {
  return (
    typeof json === 'object' && json !== null && Object.hasOwn(json, 'detail-type') && Object.hasOwn(json, 'source')
  );
}

export function classifyEventBridgeEvent(json: unknown): Classified {
  const head = checkWith(EventHead, json);
  if (!head.ok) return unreadableHead(json, head.issues);
  const { id: messageId, source, 'detail-type': detailType } = head.value;
  const common = { messageId, format: 'eventbridge' as const, detailType, ...sentAtOf(head.value.time) };
  // Someone else's event on our queue: understood enough to acknowledge, never ours to retry.
  if (source !== EVENT_SOURCE)
    return { kind: 'ignored', ...common, reason: `event source "${source.slice(0, 80)}" is not ${EVENT_SOURCE}` };
  const meaning = meaningOf(detailType);
  if ('noChange' in meaning)
    return { kind: 'ignored', ...common, ...looselyNamedCustomer(json), reason: meaning.noChange };
  const parsed = checkWith(AgreementEvent, json);
  if (!parsed.ok) return { kind: 'poison', reason: `EventBridge event: ${describeIssues(parsed.issues)}` };
  const { detail } = parsed.value;
  const subscription = subscriptionOf(detail);
  if (!subscription.productCode && !subscription.licenseArn && !subscription.agreementId) {
    return {
      kind: 'poison',
      reason: `EventBridge ${detailType.slice(0, 80)} cannot be correlated: no product code, license ARN or agreement id`,
    };
  }
  const intent = present(detail.agreement?.intent);
  const offerIdentifier = present(detail.offer?.id);
  const fields: EventFields = {
    action: meaning.action,
    awsAccountId: detail.acceptor.accountId,
    ...subscription,
    ...(offerIdentifier ? { offerIdentifier } : {}),
    ...(intent ? { intent } : {}),
    ...(meaning.amendment || intent?.toUpperCase() === 'AMEND' ? { amendment: true } : {}),
  };
  return { kind: 'event', notification: { ...common, ...fields } };
}

/** A body that is not even an event: someone else's when it names another source, else poison. */
function unreadableHead(json: unknown, issues: SchemaIssue[]): Classified {
  const head = json as { id?: unknown; source?: unknown };
  if (typeof head.id === 'string' && head.id && head.source !== EVENT_SOURCE) {
    return {
      kind: 'ignored',
      messageId: head.id,
      format: 'eventbridge',
      reason: `event source "${printable(head.source)}" is not ${EVENT_SOURCE}`,
    };
  }
  return { kind: 'poison', reason: `EventBridge event: ${describeIssues(issues)}` };
}

function meaningOf(detailType: string): Meaning {
  const role = ROLE.exec(detailType);
  if (!role) return { noChange: unknownDetailType(detailType) };
  // Our own account buying something: its buyer events are not about our customers.
  if (role[1] === 'Acceptor') return { noChange: `${detailType}: sent to the buyer, not the seller` };
  const event = detailType.slice(0, role.index);
  const meaning = MEANING_OF_EVENT.get(event) ?? MEANING_OF_FAMILY.find(([family]) => event.startsWith(family))?.[1];
  if (!meaning) return { noChange: unknownDetailType(detailType) };
  return 'noChange' in meaning ? { noChange: `${detailType}: ${meaning.noChange}` } : meaning;
}

const unknownDetailType = (detailType: string) => `unknown detail type "${detailType.slice(0, 80)}"`;

/** Every name AWS gave the subscription; the license ARN in the form ResolveCustomer returns it. */
function subscriptionOf(detail: AgreementDetail): Pick<EventFields, 'productCode' | 'licenseArn' | 'agreementId'> {
  const productCode = present(detail.product?.code);
  const licenseArn = present(detail.license?.arn);
  const agreementId = present(detail.agreement?.id);
  return {
    ...(productCode ? { productCode } : {}),
    ...(licenseArn ? { licenseArn: normalizeLicenseArn(licenseArn) } : {}),
    ...(agreementId ? { agreementId } : {}),
  };
}

/** For the record of an ignored event, whatever names the customer; never a reason to reject it. */
function looselyNamedCustomer(json: unknown): Pick<IgnoredNotification, 'productCode' | 'awsAccountId'> {
  const productCode = textAt(json, 'detail', 'product', 'code');
  // Cancellation-request events name the buyer inside the agreement.
  const awsAccountId =
    textAt(json, 'detail', 'acceptor', 'accountId') ?? textAt(json, 'detail', 'agreement', 'acceptorId');
  return {
    ...(productCode ? { productCode } : {}),
    ...(awsAccountId && /^[0-9]{12}$/.test(awsAccountId) ? { awsAccountId } : {}),
  };
}

function textAt(value: unknown, ...path: string[]): string | undefined {
  const found = path.reduce<unknown>(
    (node, key) => (typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined),
    value,
  );
  return typeof found === 'string' ? present(found) : undefined;
}

/** A value from an unchecked body, safe to print: objects can carry a toString of their own. */
const printable = (value: unknown): string =>
  typeof value === 'string' ? value.slice(0, 80) : `(${value === null ? 'null' : typeof value})`;

const present = (value: string | null | undefined): string | undefined => value?.trim() || undefined;

function sentAtOf(time: string | undefined): { sentAt?: Date } {
  const sentAt = time ? new Date(time) : undefined;
  return sentAt && !Number.isNaN(sentAt.getTime()) ? { sentAt } : {};
}
