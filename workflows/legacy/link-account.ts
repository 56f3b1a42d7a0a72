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
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { BillingStatus, PlatformAccountId } from '../../domain/search-attributes';
import {
  isLinkRefusal,
  type AwsCustomer,
  type AwsSyncNotification,
  type BillingStatus as Status,
  type LinkRefusal,
  type LinkRequest,
} from '../../domain/link-model';
import { LinkProgress, type LinkState } from './link-progress';

export const requestLinkSignal = defineSignal<[LinkRequest]>('requestLink');
export const awsNotificationSignal = defineSignal<[AwsSyncNotification]>('awsNotification');
export const linkStateQuery = defineQuery<LinkState>('linkState');
/** Operator action after a sync timeout: wait for AWS again for another full timeout. */
export const retrySyncUpdate = defineUpdate<LinkState, []>('retrySync');
/** Operator action on a link that will not complete: release the reservation so the account can link elsewhere. */
export const cancelLinkUpdate = defineUpdate<LinkState, []>('cancelLink');

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

const { loadLinkRecord, checkEligibility, reserveLink, releaseLink, publishLinkStatus, activateMarketplaceBilling } =
  proxyActivities<Activities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });

export async function linkAccount(input: LinkAccountInput): Promise<LinkOutcome> {
  const link = new LinkProgress(input.customer, input.syncTimeoutMs, () => Date.now());
  setHandler(requestLinkSignal, (request) => link.enqueue(request));
  setHandler(awsNotificationSignal, (notification) => void link.notify(notification));
  setHandler(linkStateQuery, () => link.snapshot());
  setHandler(retrySyncUpdate, () => (link.retrySync(), link.snapshot()), {
    validator: () => link.assertCanRetrySync(),
  });
  setHandler(cancelLinkUpdate, () => (link.requestCancel(), link.snapshot()), {
    validator: () => link.assertCanCancel(),
  });

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
    const wake = () => link.synced || link.hasRequests || link.hasUnpublished || link.cancelRequested;
    const woke =
      timeLeft === undefined ? (await condition(wake), true) : timeLeft > 0 && (await condition(wake, timeLeft));
    if (link.cancelRequested) return release(link, 'LinkCancelled', 'cancelled');
    if (!woke) link.markSyncTimedOut();
    await answerRequests(link);
    await publish(link);
  }

  // 3. The account pays through AWS Marketplace from now on, if it still may.
  const refusal = await refusalOf(() =>
    activateMarketplaceBilling({ customer: input.customer, accountId: link.owner! }),
  );
  if (refusal) return release(link, refusal, 'refused');
  link.markLinked();
  await answerRequests(link);
  return finish(link, 'linked');
}

/** Runs `step`; a refusal comes back as its reason, any other failure propagates. */
async function refusalOf(step: () => Promise<unknown>): Promise<LinkRefusal | undefined> {
  try {
    await step();
    return undefined;
  } catch (error) {
    const type =
      error instanceof ActivityFailure && error.cause instanceof ApplicationFailure ? error.cause.type : undefined;
    if (isLinkRefusal(type)) return type;
    throw error;
  }
}

/** Ends the owner's claim without a link and frees its reservation. */
async function release(link: LinkProgress, refusal: LinkRefusal, status: Status): Promise<LinkOutcome> {
  const accountId = link.owner!;
  await releaseLink({ customer: link.customer, accountId });
  link.dropOwner(refusal);
  await answerRequests(link);
  return finish(link, status, accountId);
}

/** Checks and reserves for the first claimant; everyone after the owner is refused. */
async function decide(link: LinkProgress, request: LinkRequest): Promise<void> {
  const { accountId } = request;
  if (link.owner === accountId) return;
  if (link.owner) return link.refuse(accountId, 'CustomerLinkedToAnotherAccount');
  link.checking(accountId);
  await publish(link);
  const refusal = await refusalOf(async () => {
    await checkEligibility({ customer: link.customer, accountId });
    await reserveLink({ customer: link.customer, accountId });
  });
  if (refusal) link.refuse(accountId, refusal);
  else link.claim(accountId);
  await publish(link);
}

async function answerRequests(link: LinkProgress): Promise<void> {
  for (let request = link.nextRequest(); request; request = link.nextRequest()) await decide(link, request);
  await publish(link);
}

/** Persists changed statuses for the pages and keeps the operator's search attributes current. */
async function publish(link: LinkProgress, status: Status = link.status()): Promise<void> {
  const owner = link.owner ?? '';
  const shown = workflowInfo().typedSearchAttributes;
  // Only real changes reach the history.
  if (shown.get(BillingStatus) !== status || (owner && shown.get(PlatformAccountId) !== owner)) {
    upsertSearchAttributes([
      { key: BillingStatus, value: status },
      ...(owner ? [{ key: PlatformAccountId, value: owner }] : []),
    ]);
  }
  for (const changed of link.takeUnpublished()) await publishLinkStatus(changed);
}

async function finish(link: LinkProgress, status: Status, accountId = link.owner): Promise<LinkOutcome> {
  await publish(link, status);
  return { status, ...(accountId ? { accountId } : {}) };
}
