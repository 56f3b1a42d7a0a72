/**
 * A raw SNS delivery carries no MessageId, and a redelivery by SNS is a new
 * SQS message with a new SQS MessageId. What stays the same is the body, so a
 * raw notification is keyed by the hash of its body and the window in which
 * SQS received it: copies within DUPLICATE_WINDOW_MS of each other are one
 * notification. Identical bodies further apart (a second cancellation cycle)
 * stay distinct. The SNS envelope, the default delivery, needs none of this.
 */
import { createHash } from 'node:crypto';
import type { Db } from 'mongodb';
import { notificationsOf } from '../lib/store/marketplace';

export const DUPLICATE_WINDOW_MS = 15 * 60_000;

/** `knownHere`: ids this poller handed off lately, which spare the store a read. */
export async function rawDeliveryId(
  db: Db,
  body: string,
  sentAtMs: number,
  knownHere: (id: string) => boolean = () => false,
): Promise<string> {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 32);
  const window = Math.floor(sentAtMs / DUPLICATE_WINDOW_MS);
  const currentId = `raw:${hash}:${window}`;
  if (knownHere(currentId)) return currentId;
  // A copy just across the window boundary belongs to the earlier one.
  const previousId = `raw:${hash}:${window - 1}`;
  if (knownHere(previousId)) return previousId;
  const previous = await notificationsOf(db).findOne({ _id: previousId }, { projection: { sentAt: 1 } });
  if (previous?.sentAt && sentAtMs - previous.sentAt.getTime() < DUPLICATE_WINDOW_MS) return previousId;
  return currentId;
}
