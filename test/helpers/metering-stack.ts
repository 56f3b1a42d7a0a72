/**
 * Metering on real servers: the Marketplace sandbox, a worker on the Temporal
 * dev server, and FerretDB. Customers are created subscribed in the sandbox
 * and linked in our store, with usage for the hours a test chooses.
 */
import type { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createUsageMeteringClient } from '../../lib/aws';
import { loadMeteringConfig, type MeteringConfig } from '../../lib/config';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { ensureIndexes } from '../../lib/store/indexes';
import { customerKey, marketplaceLinksOf, type MarketplaceLinkDoc } from '../../lib/store/marketplace';
import { markHoursMetered } from '../../lib/store/metering-ledger';
import { HOUR_MS, hourStart, usageOf } from '../../lib/store/usage';
import { connectClient, connectionOptions } from '../../lib/temporal';
import { hourlyMetering, type HourlyMeteringInput } from '../../workflows/metering/hourly-metering';
import { createWorker } from '../../worker/create-worker';
import { createMeteringCallsWorker, runTogether } from '../../worker/metering-calls-worker';
import { startSandbox, type RunningSandbox } from './sandbox';
import { testServers, uniqueName } from './test-env';

export interface SandboxCustomerView {
  _id: string;
  customerAwsAccountId: string;
  customerIdentifier?: string;
  licenseArn: string;
  productCode: string;
}

export type MeteredBy = 'license' | 'customer-identifier';

export interface MeteringStack {
  mongo: MongoHandle;
  sandbox: RunningSandbox;
  temporal: Client;
  taskQueue: string;
  config: MeteringConfig;
  /** The hour that closed last: what an hourly run meters. */
  lastHour: Date;
  /**
   * Creates subscribed customers in the sandbox and links each to its own
   * platform account. `awsAccountId` makes them purchases of one buyer account
   * (concurrent agreements); `linkBy` chooses what the link meters them by
   * (default: the license for `account` customers, the CustomerIdentifier for
   * `legacy` ones, which have both).
   */
  addCustomers(
    count: number,
    options?: {
      model?: 'account' | 'legacy';
      usage?: (index: number) => Record<string, number> | undefined;
      hour?: Date;
      awsAccountId?: string;
      linkBy?: MeteredBy;
    },
  ): Promise<SandboxCustomerView[]>;
  /** Replaces a customer's link with one that meters it by the other model, as a migration does: the link's key changes with it. */
  relink(customer: SandboxCustomerView, by: MeteredBy): Promise<void>;
  /** Marks every hour of the window complete except `keep`, so a run meters only those. */
  onlyDue(...keep: Date[]): Promise<void>;
  run(input?: HourlyMeteringInput): Promise<ReturnType<typeof hourlyMetering> extends Promise<infer R> ? R : never>;
  batchCalls(): Promise<{ calls: number; outcomes: Record<string, number>; statuses: Record<string, number> }>;
  usage(): Promise<
    Array<{ customerId: string; meteredBy: MeteredBy; dimension: string; hour: string; quantity: number }>
  >;
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMeteringStack(
  options: {
    config?: Partial<MeteringConfig>;
    startWorker?: boolean;
    /** The sandbox's BatchMeterUsage quota (default 1000 a second: out of the way). */
    quotaRps?: number;
    /** Worker processes of the metering calls' queue, as a fleet would have (default 1). */
    callWorkers?: number;
  } = {},
): Promise<MeteringStack> {
  const productCode = uniqueName('meter-prod');
  const mongo = await connectMongo(testServers.mongoUri(), uniqueName('metering'));
  await ensureIndexes(mongo.db);
  const sandbox = await startSandbox({ productCode, quotaRps: options.quotaRps ?? 1000 });
  const temporalConfig = testServers.temporal();
  const temporal = await connectClient(temporalConfig);
  const config: MeteringConfig = {
    ...loadMeteringConfig({}),
    ratePerSecond: 100,
    schedule: { enabled: false, offsetMinutes: 5 },
    ...options.config,
  };
  const metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: sandbox.url } });
  const lastHour = hourStart(Date.now() - HOUR_MS);
  const linkOf = (c: SandboxCustomerView, by: MeteredBy, hour: Date): MarketplaceLinkDoc => {
    const identifiers =
      by === 'license'
        ? { licenseArn: c.licenseArn }
        : c.customerIdentifier
          ? { customerIdentifier: c.customerIdentifier }
          : {};
    const ref = { awsAccountId: c.customerAwsAccountId, productCode: c.productCode, ...identifiers };
    return {
      _id: customerKey(ref),
      ...ref,
      accountId: `acct-${c._id}`,
      state: 'active',
      reservedAt: new Date(hour.getTime() - 2 * HOUR_MS),
      activatedAt: new Date(hour.getTime() - HOUR_MS),
    };
  };
  let worker: { workers: Worker[]; connection: { close(): Promise<void> }; running: Promise<void> } | undefined;

  const stack: MeteringStack = {
    mongo,
    sandbox,
    temporal,
    taskQueue: temporalConfig.taskQueue,
    config,
    lastHour,
    async addCustomers(
      count,
      {
        model = 'account',
        usage,
        hour = lastHour,
        awsAccountId,
        linkBy = model === 'account' ? 'license' : 'customer-identifier',
      } = {},
    ) {
      const customers: SandboxCustomerView[] = [];
      for (let i = 0; i < count; i += 1) {
        const created = await sandbox.control<{ customer: SandboxCustomerView }>('POST', '/control/customers', {
          model,
          subscribed: true,
          ...(awsAccountId ? { customerAwsAccountId: awsAccountId } : {}),
        });
        customers.push(created.body.customer);
      }
      await marketplaceLinksOf(mongo.db).insertMany(customers.map((c) => linkOf(c, linkBy, hour)));
      const usageDocs = customers.flatMap((c, i) => {
        const quantities = usage?.(i);
        return quantities
          ? [
              {
                _id: `dep-${c._id}|${hour.toISOString()}`,
                accountId: `acct-${c._id}`,
                deploymentId: `dep-${c._id}`,
                hour,
                quantities,
              },
            ]
          : [];
      });
      if (usageDocs.length > 0) await usageOf(mongo.db).insertMany(usageDocs);
      return customers;
    },
    async relink(customer, by) {
      const links = marketplaceLinksOf(mongo.db);
      const current = await links.findOne({ accountId: `acct-${customer._id}` });
      if (!current) throw new Error(`customer ${customer._id} is not linked`);
      // One link per platform account (unique index): the old one goes before the new one comes.
      await links.deleteOne({ _id: current._id });
      await links.insertOne({
        ...linkOf(customer, by, lastHour),
        reservedAt: current.reservedAt,
        activatedAt: current.activatedAt,
      });
    },
    async onlyDue(...keep) {
      const kept = new Set(keep.map((h) => h.toISOString()));
      // The next hours too: one that closes while the test runs would be due as well (seen at 15:00 exactly).
      const hours = Array.from({ length: 33 }, (_, i) =>
        new Date(lastHour.getTime() - (i - 3) * HOUR_MS).toISOString(),
      ).filter((h) => !kept.has(h));
      await markHoursMetered(mongo.db, hours);
    },
    run(input = {}) {
      return temporal.workflow.execute(hourlyMetering, {
        taskQueue: temporalConfig.taskQueue,
        workflowId: uniqueName('metering'),
        args: [input],
      });
    },
    async batchCalls() {
      const summary = await sandbox.control<
        Record<string, { calls: number; outcomes: Record<string, number>; statuses: Record<string, number> }>
      >('GET', '/control/calls/summary');
      return summary.body.BatchMeterUsage ?? { calls: 0, outcomes: {}, statuses: {} };
    },
    async usage() {
      return (
        await sandbox.control<
          Array<{ customerId: string; meteredBy: MeteredBy; dimension: string; hour: string; quantity: number }>
        >('GET', '/control/usage?limit=100000')
      ).body;
    },
    async startWorker() {
      const activities = createActivities({ db: mongo.db, metering, usageMetering: metering, meteringConfig: config });
      const created = await createWorker({ temporal: temporalConfig, activities, meteringCalls: config });
      // Each further calls worker on its own connection, as separate processes would be.
      const extra = await Promise.all(
        Array.from({ length: (options.callWorkers ?? 1) - 1 }, () =>
          NativeConnection.connect(connectionOptions(temporalConfig)),
        ),
      );
      const calls = await Promise.all(
        extra.map((connection) =>
          createMeteringCallsWorker({ connection, temporal: temporalConfig, activities, settings: config }),
        ),
      );
      const workers = [created.worker, created.meteringCalls!, ...calls];
      worker = {
        workers,
        connection: {
          close: async () => void (await Promise.all([created.connection, ...extra].map((c) => c.close()))),
        },
        running: runTogether(workers),
      };
    },
    async stopWorker() {
      if (!worker) return;
      worker.workers.forEach((w) => w.shutdown());
      await worker.running;
      await worker.connection.close();
      worker = undefined;
    },
    async stop() {
      await stack.stopWorker();
      metering.destroy();
      await sandbox.close();
      await temporal.connection.close();
      await mongo.db.dropDatabase();
      await mongo.close();
    },
  };
  if (options.startWorker !== false) await stack.startWorker();
  return stack;
}
