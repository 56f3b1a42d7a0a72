import { MongoClient, type AnyBulkWriteOperation, type Collection, type Db, type Document } from 'mongodb';

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/**
 * FerretDB (the local store) has no multi-document transactions and no change
 * streams, and its conditional updates are not atomic under concurrency, so
 * unique indexes carry consistency and Temporal carries the multi-step kind.
 */
export async function connectMongo(
  uri: string,
  database: string,
  appName = 'marketplace-billing',
): Promise<MongoHandle> {
  // A timeout given in the URI wins over our default.
  const timeout = /serverSelectionTimeoutMS=/i.test(uri) ? {} : { serverSelectionTimeoutMS: 10_000 };
  const client = new MongoClient(uri, { appName, ...timeout });
  await client.connect();
  return { client, db: client.db(database), close: () => client.close() };
}

/** A typed accessor for one collection, so each store module names its collections once. */
export function collectionOf<T extends Document>(name: string): (db: Db) => Collection<T> {
  return (db) => db.collection<T>(name);
}

/** MongoDB's duplicate-key error, which FerretDB reports with the same code. */
export function isDuplicateKeyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}

/**
 * FerretDB 1.24 never answers an update command of 100 or more statements (we
 * measured 99 ops: 127 ms; 100 ops: no answer, ordered or not), so bulk
 * writes go in chunks well below that. Real MongoDB is unaffected.
 */
export const BULK_CHUNK = 50;

export async function bulkWriteInChunks<T extends Document>(
  collection: Collection<T>,
  ops: AnyBulkWriteOperation<T>[],
): Promise<void> {
  for (let i = 0; i < ops.length; i += BULK_CHUNK)
    await collection.bulkWrite(ops.slice(i, i + BULK_CHUNK), { ordered: false });
}

/**
 * Inserts every document whose _id is new, in chunks, and returns the ids that
 * already existed. The common case costs inserts only, no reads: FerretDB
 * cannot use an index for `$in`, so reading back a batch scans the collection.
 */
export async function insertNew<T extends { _id: string }>(collection: Collection<T>, docs: T[]): Promise<Set<string>> {
  const existing = new Set<string>();
  for (let i = 0; i < docs.length; i += BULK_CHUNK) {
    const chunk = docs.slice(i, i + BULK_CHUNK);
    try {
      await collection.insertMany(chunk as never[], { ordered: false });
    } catch (error) {
      const writeErrors = (
        error as { writeErrors?: Array<{ code?: number; index: number }> | { code?: number; index: number } }
      ).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (list.length === 0 || list.some((e) => e.code !== 11000)) throw error;
      for (const e of list) existing.add(chunk[e.index]!._id);
    }
  }
  return existing;
}
