/**
 * Each subscription's state as its workflow last saved it: what the pages show
 * and what a new run of the workflow starts from. Only the workflow writes it.
 */
import type { Db } from 'mongodb';
import type { SubscriptionSnapshot } from '../../domain/subscription-model';
import { collectionOf, isDuplicateKeyError } from '../mongo';

export interface SubscriptionDoc {
  /** The subscription key (subscription-identity.ts). */
  _id: string;
  state: SubscriptionSnapshot;
  /** Mirrors of the state, for lookups by the platform account and by the pages. */
  accountId?: string;
  phase: SubscriptionSnapshot['phase'];
  /** Grows with every save, so a late retry never overwrites a newer state. */
  version: number;
  updatedAt: Date;
}

export const subscriptionsOf = collectionOf<SubscriptionDoc>('subscriptions');

/** Writes `snapshot` unless a newer version is stored (then the upsert's insert meets the unique _id: nothing to do). */
export async function saveSubscriptionState(
  db: Db,
  key: string,
  snapshot: SubscriptionSnapshot,
  version: number,
): Promise<void> {
  try {
    await subscriptionsOf(db).updateOne(
      { _id: key, version: { $lt: version } },
      {
        $set: {
          state: snapshot,
          phase: snapshot.phase,
          version,
          updatedAt: new Date(),
          ...(snapshot.owner ? { accountId: snapshot.owner } : {}),
        },
        ...(snapshot.owner ? {} : { $unset: { accountId: '' } }),
      },
      { upsert: true },
    );
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}
