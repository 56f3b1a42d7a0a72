/**
 * One workflow per AWS customer (id `link:<awsAccount>:<product>`): a platform
 * account claims the customer, AWS confirms the subscription, and the account
 * starts paying through AWS Marketplace. The API starts it with a link request
 * and the poller with an AWS notification, both through signalWithStart, so
 * either may come first.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BillingStatus, PlatformAccountId } from '../lib/search-attributes';
import { isLinkRefusal, type AwsCustomer, type AwsSyncNotification, type BillingStatus as Status, type LinkRequest } from './link-model';
import { LinkProgress, type LinkState } from './link-progress';

export const requestLinkSignal = defineSignal<[LinkRequest]>('requestLink');
export const awsNotificationSignal = defineSignal<[AwsSyncNotification]>('awsNotification');
export const linkStateQuery = defineQuery<LinkState>('linkState');
/** Operator action after a sync timeout: wait for AWS again for another full timeout. */
export const retrySyncUpdate = defineUpdate<LinkState, []>('retrySync');

export interface LinkAccountInput {
  customer: AwsCustomer;
  /** How long to wait for subscribe-success once an account has claimed the customer. */
  syncTimeoutMs: number;
  /** How long a run started by an AWS notification waits for the buyer to link an account. */
  claimTimeoutMs?: number;
}

export interface LinkOutcome {
  status: Status;
  accountId?: string;
}

const DEFAULT_CLAIM_TIMEOUT_MS = 30 * 24 * 3_600_000;

const { loadLinkRecord, checkEligibility, reserveLink, publishLinkStatus, activateMarketplaceBilling } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export async function linkAccount(input: LinkAccountInput): Promise<LinkOutcome> {
  const link = new LinkProgress(input.customer, input.syncTimeoutMs, () => Date.now());
  setHandler(requestLinkSignal, (request) => link.enqueue(request));
  setHandler(awsNotificationSignal, (notification) => void link.notify(notification));
  setHandler(linkStateQuery, () => link.snapshot());
  setHandler(retrySyncUpdate, () => (link.retrySync(), link.snapshot()), { validator: () => link.assertCanRetrySync() });

  link.restore(await loadLinkRecord(input.customer));

  // 1. A platform account claims this AWS customer.
  while (!link.owner) {
    const requested = await condition(() => link.hasRequests, input.claimTimeoutMs ?? DEFAULT_CLAIM_TIMEOUT_MS);
    if (!requested) return finish(link, 'abandoned');
    await decide(link, link.nextRequest()!);
    if (!link.owner && !link.hasRequests) return finish(link, 'refused');
  }

  // 2. AWS confirms the subscription; subscribe-success may have arrived long ago.
  while (!link.synced) {
    const timeLeft = link.syncTimeLeft();
    const wake = () => link.synced || link.hasRequests || link.hasUnpublished;
    const woke = timeLeft === undefined ? (await condition(wake), true) : timeLeft > 0 && (await condition(wake, timeLeft));
    if (!woke) link.markSyncTimedOut();
    await answerRequests(link);
    await publish(link);
  }

  // 3. The account pays through AWS Marketplace from now on.
  await activateMarketplaceBilling({ customer: input.customer, accountId: link.owner });
  link.markLinked();
  await answerRequests(link);
  return finish(link, 'linked');
}

/** Checks and reserves for the first claimant; everyone after the owner is refused. */
async function decide(link: LinkProgress, request: LinkRequest): Promise<void> {
  const { accountId } = request;
  if (link.owner === accountId) return;
  if (link.owner) return link.refuse(accountId, 'CustomerLinkedToAnotherAccount');
  link.checking(accountId);
  await publish(link);
  try {
    await checkEligibility({ customer: link.customer, accountId });
    await reserveLink({ customer: link.customer, accountId });
    link.claim(accountId);
  } catch (error) {
    const refusal = error instanceof ActivityFailure && error.cause instanceof ApplicationFailure ? error.cause.type : undefined;
    if (!isLinkRefusal(refusal)) throw error;
    link.refuse(accountId, refusal);
  }
  await publish(link);
}

async function answerRequests(link: LinkProgress): Promise<void> {
  for (let request = link.nextRequest(); request; request = link.nextRequest()) await decide(link, request);
  await publish(link);
}

/** Persists changed statuses for the pages and keeps the operator's search attributes current. */
async function publish(link: LinkProgress): Promise<void> {
  upsertSearchAttributes([
    { key: BillingStatus, value: link.status() },
    ...(link.owner ? [{ key: PlatformAccountId, value: link.owner }] : []),
  ]);
  for (const status of link.takeUnpublished()) await publishLinkStatus(status);
}

async function finish(link: LinkProgress, status: Status): Promise<LinkOutcome> {
  await publish(link);
  upsertSearchAttributes([{ key: BillingStatus, value: status }]);
  return { status, accountId: link.owner };
}
