/**
 * The subscription workflow's store side: where a run starts from, what it
 * saves, and the link decisions returned as answers (a refusal is an expected
 * outcome, not a failure: no stack trace, never retried).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from 'mongodb';
import { deploymentsOf } from '../../lib/store/accounts';
import {
  cancellationsOf,
  customerKey,
  marketplaceCustomersOf,
  marketplaceLinksOf,
  notificationsOf,
  type MarketplaceLinkDoc,
  type NotificationDoc,
} from '../../lib/store/marketplace';
import { saveSubscriptionState, subscriptionsOf } from '../../lib/store/subscriptions';
import { UNKNOWN, type AwsView } from '../../domain/aws-ordering';
import { isLinkRefusal, type LinkRefusal } from '../../domain/link-model';
import { licenseIdOf, sameLicense, type SubscriptionRef } from '../../domain/subscription-identity';
import type { SubscriptionEvent, SubscriptionPhase, SubscriptionSnapshot } from '../../domain/subscription-model';
import type { createLinkingActivities } from './linking';

export interface SubscriptionDeps {
  db: Db;
  linking: ReturnType<typeof createLinkingActivities>;
}

/** How many recorded notifications a starting run reads: redeliveries older than these are stale by AWS time anyway. */
const RECORDED_LIMIT = 200;

async function refusalOf(step: () => Promise<unknown>): Promise<LinkRefusal | undefined> {
  try {
    await step();
    return undefined;
  } catch (error) {
    if (error instanceof ApplicationFailure && isLinkRefusal(error.type)) return error.type;
    throw error;
  }
}

/** The phase the workflows this one replaced (linkAccount, cancelSubscription) left a subscription in. */
function legacyPhase(link: MarketplaceLinkDoc | null, cancellationPhase: string | undefined): SubscriptionPhase {
  switch (link?.state) {
    case undefined:
      return 'registered';
    case 'reserved':
      return 'awaiting-aws';
    case 'active':
      return 'active';
    case 'unsubscribe-pending':
      return 'awaiting-unsubscribe-success';
    case 'cancelled':
      // A stop that was under way is done again under the same mark: what it had stopped stays ours to delete.
      if (cancellationPhase === 'stopping') return 'stopping';
      if (cancellationPhase === 'grace-period' || cancellationPhase === 'deleting') return 'grace-period';
      return cancellationPhase === 'deleted' ? 'deleted' : 'cancelled';
  }
}

const AWS_STATUS_OF_LINK: Partial<Record<MarketplaceLinkDoc['state'], AwsView['status']>> = {
  active: 'subscribed',
  'unsubscribe-pending': 'leaving',
  cancelled: 'unsubscribed',
};

export function createSubscriptionActivities({ db, linking }: SubscriptionDeps) {
  /** The notifications recorded for this subscription, oldest first (by AWS time). */
  async function recordedEvents(ref: SubscriptionRef, customerIdentifier?: string): Promise<SubscriptionEvent[]> {
    const byName: object[] = [];
    // AWS spells one license several ways (ResolveCustomer `…:license/l-…`, EventBridge `…:l-…`); the id is what they share.
    if (ref.licenseArn) byName.push({ licenseId: licenseIdOf(ref.licenseArn) }, { licenseArn: ref.licenseArn });
    // SNS messages carry no license: they belong to a licensed subscription only when it is the account's one purchase of the product.
    // One read of the account's customers answers both questions below (each read scans on the embedded store).
    const ofAccount = await marketplaceCustomersOf(db)
      .find({ awsAccountId: ref.awsAccountId }, { projection: { productCode: 1 } })
      .toArray();
    const siblings = ref.productCode ? ofAccount.filter((c) => c.productCode === ref.productCode).length : 0;
    if (ref.productCode && (!ref.licenseArn || siblings <= 1)) {
      byName.push({ licenseArn: { $exists: false }, productCode: ref.productCode, awsAccountId: ref.awsAccountId });
      if (customerIdentifier)
        byName.push({ licenseArn: { $exists: false }, productCode: ref.productCode, customerIdentifier });
    }
    // Agreement events that name only the buyer's account, when it has only this subscription with us.
    if (ofAccount.length <= 1) {
      byName.push({ licenseArn: { $exists: false }, productCode: { $exists: false }, awsAccountId: ref.awsAccountId });
    }
    const docs = await notificationsOf(db)
      .find({ $or: byName })
      .sort({ sentAt: -1 })
      .limit(RECORDED_LIMIT * 4)
      .toArray();
    return docs
      .filter((doc) => !doc.licenseArn || (ref.licenseArn !== undefined && sameLicense(doc.licenseArn, ref.licenseArn)))
      .slice(0, RECORDED_LIMIT)
      .reverse()
      .map(toEvent);
  }

  return {
    /** Where a new run starts: its own saved state, else what the replaced workflows left; plus the recorded notifications. */
    async loadSubscription(
      ref: SubscriptionRef,
      legacyStoppedBy?: string,
    ): Promise<{ snapshot?: SubscriptionSnapshot; recorded: SubscriptionEvent[] }> {
      const key = customerKey(ref);
      const [saved, known] = await Promise.all([
        subscriptionsOf(db).findOne({ _id: key }),
        marketplaceCustomersOf(db).findOne({ _id: key }),
      ]);
      // The key never changes: a customer stored under its account and product keeps that key, license or not.
      const full: SubscriptionRef = {
        awsAccountId: ref.awsAccountId || known?.awsAccountId || '',
        productCode: ref.productCode || known?.productCode || '',
        ...(ref.licenseArn ? { licenseArn: ref.licenseArn } : {}),
      };
      const recorded = await recordedEvents(full, known?.customerIdentifier);
      if (saved) return { snapshot: { ...saved.state, ref: { ...saved.state.ref, ...full } }, recorded };
      const [link, cancellation] = await Promise.all([
        marketplaceLinksOf(db).findOne({ _id: key }),
        cancellationsOf(db).findOne({ _id: key }),
      ]);
      const phase = legacyPhase(link, cancellation?.phase);
      const status = link ? AWS_STATUS_OF_LINK[link.state] : undefined;
      const stoppedIds = cancellation?.stopped.map((d) => d.id) ?? [];
      // The replaced cancellation marked its stops on the deployments (`cancel:<account>:<product>@<runId>`, which the
      // migration knows); its deletion must use the same mark. Without it, the mark found on the stopped deployments.
      const stoppedBy =
        legacyStoppedBy ??
        (cancellation?.stoppedBy ||
          (stoppedIds.length > 0
            ? ((await deploymentsOf(db).findOne({ _id: { $in: stoppedIds }, stoppedBy: /^cancel:/ }))?.stoppedBy ?? '')
            : ''));
      const snapshot: SubscriptionSnapshot = {
        ref: full,
        ...(known?.customerIdentifier ? { customerIdentifier: known.customerIdentifier } : {}),
        phase,
        ...(link ? { owner: link.accountId } : {}),
        aws: status ? { status } : UNKNOWN,
        seen: [],
        ...(cancellation && (phase === 'stopping' || phase === 'grace-period' || phase === 'deleted')
          ? {
              cancellation: {
                stoppedBy,
                stopped: cancellation.stopped.map((d) => ({ ...d, outcome: 'stopped' as const })),
                keptRunning: [],
                deleted: cancellation.deleted.map((id) => ({ id, outcome: 'deleted' })),
                ...(cancellation.deletionDueAt && phase === 'grace-period'
                  ? { deletionDueAt: cancellation.deletionDueAt.toISOString() }
                  : {}),
              },
            }
          : {}),
        history: [],
      };
      return { snapshot, recorded };
    },

    async saveSubscription(input: { snapshot: SubscriptionSnapshot; version: number }): Promise<void> {
      const { snapshot } = input;
      const key = customerKey(snapshot.ref);
      await saveSubscriptionState(db, key, snapshot, input.version);
      const record = snapshot.cancellation;
      if (!record || !snapshot.owner) return;
      // What the Billing page shows of the cancellation.
      await cancellationsOf(db).replaceOne(
        { _id: key },
        {
          accountId: snapshot.owner,
          phase: snapshot.phase === 'unsubscribe-pending' ? 'final-metering' : snapshot.phase,
          ...(record.deletionDueAt ? { deletionDueAt: new Date(record.deletionDueAt) } : {}),
          stopped: record.stopped.filter((d) => d.outcome === 'stopped').map(({ id, name }) => ({ id, name })),
          deleted: record.deleted.filter((d) => d.outcome === 'deleted').map((d) => d.id),
          stoppedBy: record.stoppedBy,
          updatedAt: new Date(),
        },
        { upsert: true },
      );
    },

    /** The platform's rules, then the reservation; a refusal is returned. */
    claimSubscription(input: { customer: SubscriptionRef; accountId: string }): Promise<LinkRefusal | undefined> {
      return refusalOf(async () => {
        await linking.checkEligibility(input);
        await linking.reserveLink(input);
      });
    },

    /** AWS confirmed: the account pays through AWS Marketplace, if the rules still allow it; a refusal is returned. */
    activateSubscription(input: { customer: SubscriptionRef; accountId: string }): Promise<LinkRefusal | undefined> {
      return refusalOf(() => linking.activateMarketplaceBilling(input));
    },
  };
}

function toEvent(doc: NotificationDoc): SubscriptionEvent {
  return {
    id: doc._id,
    action: doc.action,
    sentAt: (doc.sentAt ?? doc.receivedAt).toISOString(),
    ...((doc as { amendment?: boolean }).amendment ? { amendment: true } : {}),
    ...(doc.productCode ? { productCode: doc.productCode } : {}),
    ...(doc.licenseArn ? { licenseArn: doc.licenseArn } : {}),
    ...(doc.customerIdentifier ? { customerIdentifier: doc.customerIdentifier } : {}),
  };
}
