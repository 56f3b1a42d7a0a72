/** The MongoDB-compatible store (FerretDB on SQLite) through the project's own connection helper. */
import { connectMongo, isDuplicateKeyError, type MongoHandle } from '../../lib/mongo';
import { testServers, uniqueName } from '../helpers/test-env';

describe('FerretDB store', () => {
  let mongo: MongoHandle;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('db'));
  });
  afterAll(async () => {
    await mongo.db.dropDatabase();
    await mongo.close();
  });

  it('round-trips a document with dates and nested fields', async () => {
    const accounts = mongo.db.collection<{ _id: string; createdAt: Date; billing: { method: string } }>('accounts');
    const createdAt = new Date('2026-11-26T10:00:00Z');
    await accounts.insertOne({ _id: 'acct-1', createdAt, billing: { method: 'none' } });
    const updated = await accounts.findOneAndUpdate(
      { _id: 'acct-1' },
      { $set: { 'billing.method': 'aws-marketplace' } },
      { returnDocument: 'after' },
    );
    expect(updated).toEqual({ _id: 'acct-1', createdAt, billing: { method: 'aws-marketplace' } });
  });

  it('enforces a unique index, and the violation is recognised as a duplicate key', async () => {
    const links = mongo.db.collection('links');
    await links.createIndex({ awsAccountId: 1, productCode: 1 }, { unique: true });
    await links.insertOne({ awsAccountId: '111122223333', productCode: 'p', accountId: 'a' });
    const second = await links
      .insertOne({ awsAccountId: '111122223333', productCode: 'p', accountId: 'b' })
      .catch((e: unknown) => e);
    expect(isDuplicateKeyError(second)).toBe(true);
    expect(await links.countDocuments({ awsAccountId: '111122223333' })).toBe(1);
    expect(isDuplicateKeyError(new Error('other'))).toBe(false);
  });

  it('lets exactly one of many racing inserts of one key win: the atomic primitive the design relies on', async () => {
    // FerretDB's SQLite backend does not make conditional updates or $inc atomic under
    // concurrency (see README, "Consistency without transactions"); a unique key does hold.
    const reservations = mongo.db.collection<{ _id: string; owner: number }>('reservations');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, owner) => reservations.insertOne({ _id: 'aws-1|prod', owner })),
    );
    const winners = outcomes.filter((o) => o.status === 'fulfilled');
    const losers = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(winners).toHaveLength(1);
    expect(losers.every((o) => isDuplicateKeyError(o.reason))).toBe(true);
    expect(await reservations.countDocuments({ _id: 'aws-1|prod' })).toBe(1);
  });

  it('fails fast with a clear error when the store is unreachable', async () => {
    await expect(connectMongo('mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500', 'x')).rejects.toThrow(
      /ECONNREFUSED|connect/i,
    );
  });
});
