/**
 * The embedded store answers reads by a field through its indexes
 * (infra/ferretdb/sqlite-pushdown.patch), and still answers exactly what
 * MongoDB would: the patch may only narrow what SQLite reads, never what a
 * query matches.
 */
import type { Collection, Document } from 'mongodb';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { testServers, uniqueName } from '../helpers/test-env';

interface Doc {
  _id: string;
  account?: unknown;
  product?: string;
  tags?: unknown;
  n?: number;
}

const DOCS: Doc[] = [
  { _id: 'a1', account: '111111111111', product: 'p1', n: 1 },
  { _id: 'a2', account: '111111111111', product: 'p2', n: 2 },
  { _id: 'b1', account: '222222222222', product: 'p1', n: 3 },
  // Equality with a string matches an array that holds it, as MongoDB does.
  { _id: 'c1', account: ['333333333333', '111111111111'], product: 'p3', n: 4 },
  // A number that spells the same digits is not the string.
  { _id: 'd1', account: 111111111111, product: 'p1', n: 5 },
  // Strings that JSON escapes or that need quoting.
  { _id: 'e1', account: 'quo"te', product: 'p<1>', n: 6 },
  { _id: 'e2', account: 'ünïcode', product: 'p1', n: 7 },
  { _id: 'f1', product: 'p1', n: 8 },
  { _id: 'g1', account: { nested: '111111111111' }, product: 'p1', n: 9 },
];

const ids = (docs: Doc[]) => docs.map((d) => d._id).sort();

describe('FerretDB store: reads by a field use the indexes and match like MongoDB', () => {
  let mongo: MongoHandle;
  let docs: Collection<Doc>;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('db'));
    docs = mongo.db.collection<Doc>('docs');
    await docs.createIndex({ account: 1, product: 1 });
    await docs.createIndex({ product: 1 });
    await docs.insertMany(DOCS);
    // Enough rows that a scan and an index search differ in plan.
    await docs.insertMany(
      Array.from({ length: 500 }, (_, i) => ({
        _id: `z${i}`,
        account: `9${String(i).padStart(11, '0')}`,
        product: 'pz',
      })),
    );
  });
  afterAll(async () => {
    await mongo.db.dropDatabase();
    await mongo.close();
  });

  async function plan(filter: Document): Promise<string> {
    const explained = await docs.find(filter).explain();
    return JSON.stringify(explained.queryPlanner);
  }

  it.each<[string, Document, string[]]>([
    ['a string field', { account: '111111111111' }, ['a1', 'a2', 'c1']],
    ['two string fields', { account: '111111111111', product: 'p1' }, ['a1']],
    [
      'a string field and an operator the store does not push down',
      { account: '111111111111', n: { $gt: 1 } },
      ['a2', 'c1'],
    ],
    ['a string that JSON escapes', { account: 'quo"te' }, ['e1']],
    ['a non-ASCII string', { account: 'ünïcode' }, ['e2']],
    ['a number', { account: 111111111111 }, ['d1']],
    ['a string no row has', { account: '000000000000' }, []],
    ['_id in a list', { _id: { $in: ['a1', 'b1', 'nope'] } }, ['a1', 'b1']],
    ['_id in a list with a number', { _id: { $in: ['a1', 7] } }, ['a1']],
    ['an $or of indexed branches', { $or: [{ account: '222222222222' }, { product: 'p3' }] }, ['b1', 'c1']],
    [
      'an $or with a branch the store cannot narrow',
      { $or: [{ account: '222222222222' }, { n: { $gte: 8 } }] },
      ['b1', 'f1', 'g1'],
    ],
    [
      'an $or beside a field',
      { product: 'p1', $or: [{ account: '111111111111' }, { account: '222222222222' }] },
      ['a1', 'b1'],
    ],
    ['$exists beside a field', { product: 'p1', account: { $exists: false } }, ['f1']],
    ['a dotted path', { 'account.nested': '111111111111' }, ['g1']],
  ])('finds exactly what MongoDB finds: %s', async (_name, filter, expected) => {
    expect(ids(await docs.find(filter).toArray())).toEqual(expected);
  });

  it('answers a read by an indexed field with an index search, not a scan', async () => {
    expect(await plan({ account: '111111111111' })).toMatch(/USING INDEX/);
    expect(await plan({ account: '111111111111' })).not.toMatch(/SCAN/);
    expect(await plan({ $or: [{ account: '222222222222' }, { product: 'p3' }] })).not.toMatch(/SCAN/);
    expect(await plan({ _id: { $in: ['a1', 'b1'] } })).not.toMatch(/SCAN/);
  });

  it('still scans what it cannot narrow exactly, rather than answer wrongly', async () => {
    expect(await plan({ account: 'quo"te' })).toMatch(/SCAN/);
    expect(await plan({ $or: [{ account: '222222222222' }, { n: { $gte: 8 } }] })).toMatch(/SCAN/);
  });

  it('keeps the order of insertion when several rows match, so an unsorted deleteOne picks the same document', async () => {
    const found = await docs.find({ product: 'p1' }).toArray();
    expect(found.map((d) => d._id)).toEqual(['a1', 'b1', 'd1', 'e2', 'f1', 'g1']);
    // An index would list the two strings before the array; the first inserted is still the first found.
    const tagged = mongo.db.collection<Doc>('tagged');
    await tagged.createIndex({ tags: 1 });
    await tagged.insertMany([
      { _id: 'z1', tags: ['x'] },
      { _id: 'b2', tags: 'x' },
      { _id: 'm3', tags: 'x' },
    ]);
    expect(ids(await tagged.find({ _id: { $in: ['m3', 'z1'] }, tags: 'x' }).toArray())).toEqual(['m3', 'z1']);
    expect((await tagged.find({ tags: 'x' }).toArray()).map((d) => d._id)).toEqual(['z1', 'b2', 'm3']);
    expect((await tagged.find({ _id: { $in: ['m3', 'b2', 'z1'] } }).toArray()).map((d) => d._id)).toEqual([
      'z1',
      'b2',
      'm3',
    ]);
    await tagged.deleteOne({ tags: 'x' });
    expect((await tagged.find({}).toArray()).map((d) => d._id)).toEqual(['b2', 'm3']);
  });

  it('answers filters past the limits of a pushed-down query: deep $or nesting, thousands of values', async () => {
    let nested: Document = { account: '222222222222' };
    for (let i = 0; i < 40; i++) nested = { $or: [nested, { product: `never-${i}` }] };
    expect(ids(await docs.find(nested).toArray())).toEqual(['b1']);
    const many = Array.from({ length: 1000 }, (_, i) => `z${i}`);
    const huge = { _id: { $in: many }, $or: Array.from({ length: 32 }, () => ({ _id: { $in: many } })) };
    expect(await docs.countDocuments(huge)).toBe(500);
  });

  it('updates and deletes only the rows the whole filter matches', async () => {
    const updated = await docs.updateMany({ account: '111111111111', n: { $lt: 4 } }, { $set: { tags: 'seen' } });
    expect(updated.modifiedCount).toBe(2);
    expect(ids(await docs.find({ tags: 'seen' }).toArray())).toEqual(['a1', 'a2']);
    const deleted = await docs.deleteMany({ $or: [{ tags: 'seen', product: 'p2' }, { account: 'ünïcode' }] });
    expect(deleted.deletedCount).toBe(2);
    expect(await docs.countDocuments({ _id: { $in: ['a2', 'e2'] } })).toBe(0);
    expect(await docs.countDocuments({})).toBe(DOCS.length + 500 - 2);
  });
});
