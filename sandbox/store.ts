/** The sandbox's own state, kept in the MongoDB-compatible store so that it survives a restart. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';

export type CustomerModel = 'legacy' | 'account';
export type SubscriptionStatus = 'subscribing' | 'subscribed' | 'unsubscribe-pending' | 'unsubscribed';

export interface SandboxCustomer {
  _id: string;
  model: CustomerModel;
  /** Only legacy customers have one; AWS omits it for new products. */
  customerIdentifier?: string;
  customerAwsAccountId: string;
  productCode: string;
  licenseArn: string;
  offerId: string;
  freeTrial: boolean;
  status: SubscriptionStatus;
  createdAt: Date;
}

interface TokenDoc {
  _id: string;
  customerId: string;
  expiresAt: Date;
}

export interface UsageDoc {
  _id: string;
  customerId: string;
  dimension: string;
  hour: Date;
  timestamp: Date;
  quantity: number;
  meteringRecordId: string;
  receivedAt: Date;
  allocations?: unknown;
}

export interface CallDoc {
  _id?: unknown;
  operation: string;
  at: Date;
  outcome: string;
  records?: number;
  statuses?: Record<string, number>;
  unprocessed?: number;
}

const digits = (n: number) => Array.from(randomBytes(n), (b) => String(b % 10)).join('');
const alnum = (n: number) =>
  Array.from(randomBytes(n), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[b % 36]).join('');

export function hourOf(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 3_600_000) * 3_600_000);
}

export class SandboxStore {
  readonly customers: Collection<SandboxCustomer>;
  readonly tokens: Collection<TokenDoc>;
  readonly usage: Collection<UsageDoc>;
  readonly calls: Collection<CallDoc>;

  constructor(db: Db) {
    this.customers = db.collection('customers');
    this.tokens = db.collection('tokens');
    this.usage = db.collection('usage');
    this.calls = db.collection('calls');
  }

  async ensureIndexes(): Promise<void> {
    await this.customers.createIndex({ customerIdentifier: 1 }, { unique: true, sparse: true });
    await this.customers.createIndex({ customerAwsAccountId: 1, licenseArn: 1 }, { unique: true });
    await this.usage.createIndex({ customerId: 1, hour: 1 });
    await this.calls.createIndex({ at: 1 });
  }

  async createCustomer(input: { productCode: string; model: CustomerModel; freeTrial: boolean }): Promise<SandboxCustomer> {
    const customerAwsAccountId = digits(12);
    const customer: SandboxCustomer = {
      _id: randomUUID(),
      model: input.model,
      ...(input.model === 'legacy' ? { customerIdentifier: alnum(11) } : {}),
      customerAwsAccountId,
      productCode: input.productCode,
      licenseArn: `arn:aws:license-manager::${digits(12)}:license:l-${alnum(32).toLowerCase()}`,
      offerId: `offer-${alnum(13).toLowerCase()}`,
      freeTrial: input.freeTrial,
      status: 'subscribing',
      createdAt: new Date(),
    };
    await this.customers.insertOne(customer);
    return customer;
  }

  async issueToken(customerId: string, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
    // Real tokens are long opaque strings; ours carry no information either.
    const token = randomBytes(64).toString('base64');
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    await this.tokens.insertOne({ _id: token, customerId, expiresAt });
    return { token, expiresAt };
  }

  async redeemToken(token: string): Promise<{ customer?: SandboxCustomer; expired: boolean }> {
    const doc = await this.tokens.findOne({ _id: token });
    if (!doc) return { expired: false };
    if (doc.expiresAt.getTime() <= Date.now()) return { expired: true };
    const customer = (await this.customers.findOne({ _id: doc.customerId })) ?? undefined;
    return { customer, expired: false };
  }

  getCustomer(id: string): Promise<SandboxCustomer | null> {
    return this.customers.findOne({ _id: id });
  }

  async setStatus(id: string, status: SubscriptionStatus): Promise<SandboxCustomer | null> {
    return this.customers.findOneAndUpdate({ _id: id }, { $set: { status } }, { returnDocument: 'after' });
  }

  /**
   * Records usage "first write wins": an identical record returns the stored
   * MeteringRecordId, a different quantity for the same customer, dimension and
   * hour is a duplicate. Single-document upserts keep this atomic without transactions.
   */
  async recordUsage(
    records: Array<Omit<UsageDoc, '_id' | 'meteringRecordId' | 'receivedAt'>>,
  ): Promise<Array<{ status: 'Success' | 'DuplicateRecord'; meteringRecordId?: string }>> {
    if (records.length === 0) return [];
    const now = new Date();
    const docs = records.map((record) => ({
      ...record,
      _id: `${record.customerId}|${record.dimension}|${record.hour.toISOString()}`,
      meteringRecordId: randomUUID(),
      receivedAt: now,
    }));
    await this.usage
      .bulkWrite(
        docs.map((doc) => ({ updateOne: { filter: { _id: doc._id }, update: { $setOnInsert: doc }, upsert: true } })),
        { ordered: false },
      )
      .catch((error: unknown) => {
        // Concurrent upserts of one key can race to a duplicate-key error; the stored document still decides.
        if ((error as { code?: number }).code !== 11000) throw error;
      });
    const stored = new Map(
      (await this.usage.find({ _id: { $in: docs.map((doc) => doc._id) } }).toArray()).map((doc) => [doc._id, doc]),
    );
    return docs.map((doc) => {
      const existing = stored.get(doc._id);
      if (!existing) throw new Error(`usage record ${doc._id} was not stored`);
      return existing.quantity === doc.quantity
        ? { status: 'Success' as const, meteringRecordId: existing.meteringRecordId }
        : { status: 'DuplicateRecord' as const };
    });
  }

  async logCall(call: Omit<CallDoc, '_id' | 'at'>): Promise<void> {
    await this.calls.insertOne({ ...call, at: new Date() });
  }

  async reset(): Promise<void> {
    await Promise.all([
      this.customers.deleteMany({}),
      this.tokens.deleteMany({}),
      this.usage.deleteMany({}),
      this.calls.deleteMany({}),
    ]);
  }
}
