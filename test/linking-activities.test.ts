/**
 * The reservation's atomicity lives in the store, not in the workflow: these
 * races run the real activities concurrently against FerretDB.
 */
import { randomInt } from 'node:crypto';
import { createLinkingActivities } from '../activities/subscription/linking';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { accountsOf } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { testServers, uniqueName } from './helpers/test-env';

describe('linking activities on the store', () => {
  let mongo: MongoHandle;
  let activities: ReturnType<typeof createLinkingActivities>;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('link-acts'));
    await ensureIndexes(mongo.db);
    activities = createLinkingActivities({ db: mongo.db });
  });
  afterAll(async () => {
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  const customer = () => ({ awsAccountId: String(randomInt(1e11, 1e12 - 1)), productCode: 'race' });
  const refusalOf = (outcome: PromiseSettledResult<unknown>) =>
    outcome.status === 'rejected' ? (outcome.reason as { type?: string }).type : 'reserved';

  it('lets exactly one of ten accounts reserve one AWS customer at the same moment', async () => {
    const target = customer();
    const accounts = Array.from({ length: 10 }, () => uniqueName('acct'));
    const outcomes = await Promise.allSettled(
      accounts.map((accountId) => activities.reserveLink({ customer: target, accountId })),
    );
    const results = outcomes.map(refusalOf);
    expect(results.filter((r) => r === 'reserved')).toHaveLength(1);
    expect(new Set(results.filter((r) => r !== 'reserved'))).toEqual(new Set(['CustomerLinkedToAnotherAccount']));
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ awsAccountId: target.awsAccountId })).toBe(1);
  });

  it('lets one account reserve only one of ten AWS customers at the same moment', async () => {
    const accountId = uniqueName('acct');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => activities.reserveLink({ customer: customer(), accountId })),
    );
    const results = outcomes.map(refusalOf);
    expect(results.filter((r) => r === 'reserved')).toHaveLength(1);
    expect(new Set(results.filter((r) => r !== 'reserved'))).toEqual(new Set(['AccountLinkPending']));
    expect(await marketplaceLinksOf(mongo.db).countDocuments({ accountId })).toBe(1);
  });

  it('repeats a reservation for the same pair as a no-op, and releases only reservations', async () => {
    const target = customer();
    const accountId = uniqueName('acct');
    await activities.reserveLink({ customer: target, accountId });
    await activities.reserveLink({ customer: target, accountId });
    await accountsOf(mongo.db).insertOne({
      _id: accountId,
      email: `${accountId}@example.com`,
      name: accountId,
      paymentMethod: 'none',
      createdAt: new Date(),
    });
    await activities.activateMarketplaceBilling({ customer: target, accountId });
    await activities.releaseLink({ customer: target, accountId });
    expect(await marketplaceLinksOf(mongo.db).findOne({ accountId })).toMatchObject({ state: 'active' });
  });

  it('counts only the notifications since the last unsubscribe-success', async () => {
    const target = customer();
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 26, 10, minute));
    const base = { productCode: target.productCode, awsAccountId: target.awsAccountId };
    await notificationsOf(mongo.db).insertMany([
      { _id: uniqueName('m'), ...base, action: 'subscribe-success', sentAt: at(1), receivedAt: at(1) },
      { _id: uniqueName('m'), ...base, action: 'unsubscribe-success', sentAt: at(2), receivedAt: at(2) },
      { _id: uniqueName('m'), ...base, action: 'subscribe-fail', sentAt: at(3), receivedAt: at(3) },
    ]);
    const record = await activities.loadLinkRecord(target);
    expect(record.notifications.map((n) => n.action)).toEqual(['subscribe-fail']);
  });
});
