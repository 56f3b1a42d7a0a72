import { MongoClient, type Db } from 'mongodb';

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/**
 * FerretDB (the local store) has no multi-document transactions and no change
 * streams, so nothing here may rely on them: single-document atomic updates and
 */
export async function connectMongo(uri: string, database: string, appName = 'marketplace-billing'): Promise<MongoHandle> {
  // A timeout given in the URI wins over our default.
  const timeout = /serverSelectionTimeoutMS=/i.test(uri) ? {} : { serverSelectionTimeoutMS: 10_000 };
  const client = new MongoClient(uri, { appName, ...timeout });
  await client.connect();
  return { client, db: client.db(database), close: () => client.close() };
}

/** MongoDB's duplicate-key error, which FerretDB reports with the same code. */
export function isDuplicateKeyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}
