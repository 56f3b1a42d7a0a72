/** The sandbox's own state, kept in the MongoDB-compatible store so that it survives a restart. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { insertNew } from '../lib/mongo';

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

/** How a usage record named its customer: AWS bills each separately, so one hour under both is billed twice. */
export type MeteredBy = 'customer-identifier' | 'license';

export interface UsageDoc {
  _id: string;
  customerId: string;
  meteredBy: MeteredBy;
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
  /** When the request arrived, as AWS's quota counts it; not when the sandbox finished it. */
  at: Date;
  outcome: string;
  records?: number;
  statuses?: Record<string, number>;
  unprocessed?: number;
}

const digits = (n: number) => Array.from(randomBytes(n), (b) => String(b % 10)).join('');
const alnum = (n: number) => Array.from(randomBytes(n), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[b % 36]).join('');

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

  /**
   * Customers by the keys metering records name them with, loaded once and kept
   * current by this store's own writes: FerretDB cannot use an index for the
   * `$in` lookups a BatchMeterUsage call needs, and AWS answers from memory too.
   */
  private lookup?: Promise<{ byAccount: Map<string, SandboxCustomer>; byIdentifier: Map<string, SandboxCustomer> }>;

  private remember(
    customer: SandboxCustomer,
    maps: { byAccount: Map<string, SandboxCustomer>; byIdentifier: Map<string, SandboxCustomer> },
  ): void {
    maps.byAccount.set(`${customer.customerAwsAccountId}|${customer.licenseArn}`, customer);
    if (customer.customerIdentifier)
      maps.byIdentifier.set(`${customer.customerIdentifier}|${customer.productCode}`, customer);
  }

  private customerLookup() {
    this.lookup ??= this.customers
      .find({})
      .toArray()
      .then((all) => {
        const maps = {
          byAccount: new Map<string, SandboxCustomer>(),
          byIdentifier: new Map<string, SandboxCustomer>(),
        };
        all.forEach((customer) => this.remember(customer, maps));
        return maps;
      });
    return this.lookup;
  }

  private async refresh(customer: SandboxCustomer | null): Promise<void> {
    if (customer && this.lookup) this.remember(customer, await this.lookup);
  }

  /** The customer a usage record names: by account and LicenseArn, or by CustomerIdentifier and the call's ProductCode. */
  async customerFor(
    record: { CustomerIdentifier?: string; CustomerAWSAccountId?: string; LicenseArn?: string },
    productCode?: string,
  ) {
    const { byAccount, byIdentifier } = await this.customerLookup();
    return record.CustomerIdentifier
      ? byIdentifier.get(`${record.CustomerIdentifier}|${productCode}`)
      : byAccount.get(`${record.CustomerAWSAccountId}|${record.LicenseArn}`);
  }

  async ensureIndexes(): Promise<void> {
    await this.customers.createIndex({ customerIdentifier: 1 }, { unique: true, sparse: true });
    await this.customers.createIndex({ customerAwsAccountId: 1, licenseArn: 1 }, { unique: true });
    await this.usage.createIndex({ customerId: 1, hour: 1 });
    await this.calls.createIndex({ at: 1 });
  }

  /** A given `customerAwsAccountId` adds a purchase to that account: concurrent agreements, each with its own license. */
  async createCustomer(input: {
    productCode: string;
    model: CustomerModel;
    freeTrial: boolean;
    customerAwsAccountId?: string;
  }): Promise<SandboxCustomer> {
    const customerAwsAccountId = input.customerAwsAccountId ?? digits(12);
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
    await this.refresh(customer);
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
    const customer = await this.customers.findOneAndUpdate(
      { _id: id },
      { $set: { status } },
      { returnDocument: 'after' },
    );
    await this.refresh(customer);
    return customer;
  }

  /**
   * Records usage "first write wins": an identical record returns the stored
   * MeteringRecordId, a different quantity for the same customer, dimension and
   * hour is a duplicate. The unique _id keeps this atomic without transactions.
   * A record by CustomerIdentifier and one by LicenseArn are different records,
   * as at AWS: the same customer and hour under both is billed twice.
   */
  async recordUsage(
    records: Array<Omit<UsageDoc, '_id' | 'meteringRecordId' | 'receivedAt'>>,
  ): Promise<Array<{ status: 'Success' | 'DuplicateRecord'; meteringRecordId?: string }>> {
    if (records.length === 0) return [];
    const now = new Date();
    const docs = records.map((record) => ({
      ...record,
      _id: `${record.customerId}|${record.meteredBy}|${record.dimension}|${record.hour.toISOString()}`,
      meteringRecordId: randomUUID(),
      receivedAt: now,
    }));
    // Inserts, not upserts: the unique _id makes the first write win; only keys that existed are read back.
    const existing = [...(await insertNew(this.usage, docs))];
    const stored = new Map<string, UsageDoc>(docs.map((doc) => [doc._id, doc]));
    if (existing.length > 0)
      for (const doc of await this.usage.find({ _id: { $in: existing } }).toArray()) stored.set(doc._id, doc);
    return docs.map((doc) => {
      const existing = stored.get(doc._id);
      if (!existing) throw new Error(`usage record ${doc._id} was not stored`);
      return existing.quantity === doc.quantity
        ? { status: 'Success' as const, meteringRecordId: existing.meteringRecordId }
        : { status: 'DuplicateRecord' as const };
    });
  }

  async logCall(call: Omit<CallDoc, '_id'>): Promise<void> {
    await this.calls.insertOne(call);
  }

  async reset(): Promise<void> {
    this.lookup = undefined;
    await Promise.all([
      this.customers.deleteMany({}),
      this.tokens.deleteMany({}),
      this.usage.deleteMany({}),
      this.calls.deleteMany({}),
    ]);
  }
}
