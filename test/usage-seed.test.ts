/** The demo usage the local stack generates: realistic, deterministic, and never rewritten. */
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { deploymentsOf } from '../lib/store/accounts';
import { DEMO_ACCOUNTS, seedDemoAccounts } from '../lib/store/demo-accounts';
import { HOUR_MS, usageByAccount, usageOf } from '../lib/store/usage';
import { seedUsage } from '../lib/store/usage-generator';
import { testServers, uniqueName } from './helpers/test-env';

describe('demo usage', () => {
  let mongo: MongoHandle;
  const now = Date.UTC(2026, 10, 26, 15, 30);

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('usage'));
    await seedDemoAccounts(mongo.db);
  });
  afterAll(async () => {
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  it('records every running deployment for each hour, the same numbers when seeded twice', async () => {
    await deploymentsOf(mongo.db).updateOne({ _id: 'acct-bob-prod' }, { $set: { state: 'stopped' } });
    const running = await deploymentsOf(mongo.db).countDocuments({ state: 'running' });
    expect(await seedUsage(mongo.db, 6, now)).toBe(running * 7);
    const first = await usageOf(mongo.db).find({}).sort({ _id: 1 }).toArray();
    await seedUsage(mongo.db, 6, now);
    expect(await usageOf(mongo.db).find({}).sort({ _id: 1 }).toArray()).toEqual(first);
    expect(first.some((doc) => doc.deploymentId === 'acct-bob-prod')).toBe(false);
    expect(new Set(first.map((doc) => doc.accountId))).toEqual(new Set(DEMO_ACCOUNTS.map((a) => a._id)));
  });

  it('gives a production deployment more usage than a trial, with both metrics', async () => {
    const hour = new Date(Math.floor(now / HOUR_MS) * HOUR_MS - HOUR_MS);
    const [trial, prod] = await Promise.all(
      ['acct-alice-trial', 'acct-alice-prod'].map((id) => usageOf(mongo.db).findOne({ deploymentId: id, hour })),
    );
    expect(prod!.quantities.session_hours).toBeGreaterThan(trial!.quantities.session_hours!);
    expect(prod!.quantities.traffic_gb).toBeGreaterThan(0);
    const totals = await usageByAccount(mongo.db, ['acct-alice'], hour);
    expect(totals.get('acct-alice')!.session_hours).toBeCloseTo(
      prod!.quantities.session_hours! + trial!.quantities.session_hours!,
      5,
    );
  });
});
