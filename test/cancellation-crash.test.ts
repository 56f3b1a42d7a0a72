/**
 * The cancellation survives what production throws at it: a worker killed
 * between the stop and the deletion (a real worker process, SIGKILLed), and a
 * restart of the Temporal server while the grace-period timer is pending (a
 * dev server of its own, persisted to a file, stopped and started again).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import { freePort, type ManagedProcess } from '../infra/processes';
import { startTemporalDevServer } from '../infra/servers';
import { createUsageMeteringClient } from '../lib/aws';
import { loadMeteringConfig } from '../lib/config';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { accountsOf, deploymentsOf } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { marketplaceLinksOf } from '../lib/store/marketplace';
import { signalAwsEvent } from '../clients/subscription-client';
import { connectClient } from '../lib/temporal';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import { createWorker } from '../worker/create-worker';
import { eventuallyState } from './helpers/subscription';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

describe('cancellation through crashes', () => {
  let mongo: MongoHandle;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('cancel-crash'));
    await ensureIndexes(mongo.db);
  });
  afterAll(async () => {
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  /**
   * A linked buyer with one running production deployment, as the store holds one linked before the subscription
   * workflow (the workflow starts from that state); returns its AWS customer.
   */
  async function linkedBuyer() {
    const accountId = uniqueName('acct');
    const customer: SubscriptionRef = {
      awsAccountId: String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999)),
      productCode: 'crash-test',
    };
    await accountsOf(mongo.db).insertOne({
      _id: accountId,
      email: `${accountId}@example.com`,
      name: accountId,
      paymentMethod: 'aws-marketplace',
      createdAt: new Date(),
      marketplace: { ...customer, licenseArn: 'arn:test', linkedAt: new Date() },
    });
    await marketplaceLinksOf(mongo.db).insertOne({
      _id: `${customer.awsAccountId}:${customer.productCode}`,
      ...customer,
      accountId,
      state: 'active',
      licenseArn: 'arn:test',
      reservedAt: new Date(Date.now() - 60_000),
      activatedAt: new Date(Date.now() - 60_000),
    });
    await deploymentsOf(mongo.db).insertOne({
      _id: `${accountId}-prod`,
      accountId,
      name: 'prod',
      plan: 'standard',
      state: 'running',
      createdAt: new Date(),
    });
    return { accountId, customer };
  }

  /** AWS's unsubscribe-success, as the poller hands it to the subscription's workflow (starting it when needed). */
  function unsubscribed(temporal: Client, taskQueue: string, customer: SubscriptionRef, gracePeriodMs: number) {
    const event = { id: uniqueName('m'), action: 'unsubscribe-success' as const, sentAt: new Date().toISOString() };
    return signalAwsEvent({ temporal, taskQueue, settings: { syncTimeoutMs: 60_000, gracePeriodMs } }, customer, event);
  }

  it('deletes exactly once, stopping nothing twice, when the worker is killed between the stop and the deletion', async () => {
    const script = join(__dirname, '..', 'dist', 'worker', 'main.js');
    if (!existsSync(script))
      throw new Error('dist/worker/main.js is missing: run `npm run build` (infra/test.sh does)');
    const temporal = testServers.temporal();
    const startWorker = (): ChildProcess =>
      spawn(join(__dirname, '..', 'node_modules', '.bin', 'node'), [script], {
        env: {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: temporal.address,
          TEMPORAL_NAMESPACE: temporal.namespace,
          TEMPORAL_TASK_QUEUE: temporal.taskQueue,
          MONGODB_URI: testServers.mongoUri(),
          MONGODB_DATABASE: mongo.db.databaseName,
          AWS_ENDPOINT_URL_MARKETPLACE_METERING: 'http://127.0.0.1:9',
          METERING_SCHEDULE: 'false',
        },
        stdio: 'ignore',
      });
    const client = await connectClient(temporal);
    let worker = startWorker();
    try {
      const { accountId, customer } = await linkedBuyer();
      await unsubscribed(client, temporal.taskQueue, customer, 8000);
      const stopped = await eventually(
        () => deploymentsOf(mongo.db).findOne({ _id: `${accountId}-prod` }),
        (d) => d?.state === 'stopped',
        400,
      );
      worker.kill('SIGKILL');
      worker = startWorker();
      const done = await eventuallyState(
        client.workflow.getHandle(subscriptionWorkflowId(customer)),
        (s) => s.phase === 'deleted',
        1200,
      );
      expect(done.cancellation).toMatchObject({
        stopped: [{ name: 'prod', outcome: 'stopped' }],
        deleted: [{ outcome: 'deleted' }],
      });
      const after = await deploymentsOf(mongo.db).findOne({ _id: `${accountId}-prod` });
      expect(after).toMatchObject({ state: 'deleted', stoppedAt: stopped!.stoppedAt });
    } finally {
      worker.kill('SIGKILL');
      await client.connection.close();
    }
  }, 90_000);

  it('fires the grace-period timer after the Temporal server restarts', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'temporal-restart-'));
    const port = await freePort();
    const serverOptions = { port, dbFile: join(runDir, 'temporal.sqlite'), namespace: 'restart', logDir: runDir };
    let server: ManagedProcess = await startTemporalDevServer(serverOptions);
    const config = { address: `127.0.0.1:${port}`, namespace: 'restart', taskQueue: uniqueName('restart') };
    const metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: 'http://127.0.0.1:9' } });
    const meteringConfig = loadMeteringConfig({});
    const workers = await createWorker({
      temporal: config,
      activities: createActivities({ db: mongo.db, metering, usageMetering: metering, meteringConfig }),
      meteringCalls: meteringConfig,
    });
    const running = workers.run();
    let client: Client | undefined = await connectClient(config);
    try {
      const { accountId, customer } = await linkedBuyer();
      await unsubscribed(client, config.taskQueue, customer, 15_000);
      const handle = client.workflow.getHandle(subscriptionWorkflowId(customer));
      await eventuallyState(handle, (s) => s.phase === 'grace-period');
      await client.connection.close();
      client = undefined;

      await server.stop();
      server = await startTemporalDevServer(serverOptions);
      client = await connectClient(config);
      const done = await eventuallyState(
        client.workflow.getHandle(subscriptionWorkflowId(customer)),
        (s) => s.phase === 'deleted',
        1200,
      );
      expect(done.cancellation!.deleted).toEqual([{ id: `${accountId}-prod`, outcome: 'deleted' }]);
      expect(await deploymentsOf(mongo.db).findOne({ _id: `${accountId}-prod` })).toMatchObject({ state: 'deleted' });
    } finally {
      await client?.connection.close();
      workers.shutdown();
      await running.catch(() => undefined);
      await workers.connection.close();
      metering.destroy();
      await server.stop();
    }
  }, 120_000);
});
