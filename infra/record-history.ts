/**
 * Records workflow histories for the replay tests (test/workflow-replay.test.ts):
 *
 *   node dist/infra/record-history.js <workflowId> <name>
 *     writes test/histories/<name>.json from a running stack (reads
 *     TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE like the services);
 *
 *   node dist/infra/record-history.js --subscription-states [state…]
 *     self-contained: starts FerretDB, a Temporal dev server and the AWS
 *     sandbox in a temporary directory, drives the subscription workflow with
 *     its real activities into each state it waits in, and writes
 *     test/histories/subscription-<state>.json for each (all states, or the
 *     ones named). Re-run it (after `npm run build`) whenever the workflow
 *     changes on purpose.
 *
 * Files are protobuf's own JSON form, which the replay test turns back into a
 * History; worker identities, sticky queue names and stack traces are blanked.
 */
import { historyIsQuiet } from './history-quiet';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createUsageMeteringClient } from '../lib/aws';
import { loadMeteringConfig, loadTemporalConfig } from '../lib/config';
import { connectMongo } from '../lib/mongo';
import { accountsOf, deploymentsOf } from '../lib/store/accounts';
import { ensureIndexes } from '../lib/store/indexes';
import { customerKey, saveResolvedCustomer } from '../lib/store/marketplace';
import { subscriptionsOf } from '../lib/store/subscriptions';
import { requestLink, signalAwsEvent, type SubscriptionTarget } from '../clients/subscription-client';
import { connectClient } from '../lib/temporal';
import { buildSandbox } from '../sandbox/app';
import type { AwsAction } from '../domain/aws-ordering';
import type { subscription } from '../workflows/subscription/subscription';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import { abortDeletionUpdate, extendGracePeriodUpdate, subscriptionStateQuery } from '../domain/subscription-messages';
import type { SubscriptionPhase, SubscriptionSettings } from '../domain/subscription-model';
import { repoRoot } from './paths';
import { freePort, type ManagedProcess } from './processes';
import { startFerretDb, startTemporalDevServer } from './servers';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

const historiesDir = join(repoRoot, 'test', 'histories');

/** Writes `history` as test/histories/<name>.json, without what names the recording machine. */
function writeHistory(history: History, name: string): void {
  const json = temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.create(history), {
    longs: String,
    enums: String,
    bytes: String,
  });
  // Worker identities, sticky queue names and failure stack traces name the recording machine; replay needs neither.
  const text = JSON.stringify(json, null, 1)
    .replace(/"identity": "[^"]*"/g, '"identity": "recorded-worker"')
    .replace(/"name": "\d+@[^"]*"/g, '"name": "recorded-sticky-queue"')
    .replace(/"stackTrace": "(?:[^"\\]|\\.)*"/g, '"stackTrace": ""');
  const file = join(historiesDir, `${name}.json`);
  writeFileSync(file, `${text}\n`);
  console.log(
    `wrote ${file} (${(json.events as unknown[] | undefined)?.length ?? 0} events, ${Math.round(text.length / 1024)} KB)`,
  );
}

async function recordOne(workflowId: string, name: string): Promise<void> {
  const client = await connectClient(loadTemporalConfig());
  try {
    writeHistory(await client.workflow.getHandle(workflowId).fetchHistory(), name);
  } finally {
    await client.connection.close();
  }
}

// --- The subscription workflow, in each state it waits in. ---

const HOUR_MS = 3_600_000;

interface Drive {
  target: SubscriptionTarget;
  ref: SubscriptionRef;
  /** An eligible account with a running trial and a running production deployment. */
  alice: string;
  bob: string;
  handle: WorkflowHandle<typeof subscription>;
  /** An AWS event, its send time `minute` minutes into this subscription's life. */
  send(action: AwsAction, minute: number): Promise<void>;
  waitsIn(phase: SubscriptionPhase): Promise<void>;
}

interface Scenario {
  /** The file is subscription-<state>.json. */
  state: string;
  phase: SubscriptionPhase;
  settings?: Partial<SubscriptionSettings>;
  drive(d: Drive): Promise<void>;
}

async function linked(d: Drive): Promise<void> {
  await requestLink(d.target, d.ref, d.alice);
  await d.send('subscribe-success', 0);
  await d.waitsIn('active');
}

async function inGracePeriod(d: Drive): Promise<void> {
  await linked(d);
  await d.send('unsubscribe-pending', 60);
  await d.waitsIn('awaiting-unsubscribe-success');
  await d.send('unsubscribe-success', 61);
  await d.waitsIn('grace-period');
}

const SCENARIOS: Scenario[] = [
  // AWS spoke first; nobody asked to link yet.
  { state: 'registered', phase: 'registered', drive: (d) => d.send('subscribe-success', 0) },
  {
    state: 'awaiting-aws',
    phase: 'awaiting-aws',
    drive: (d) => requestLink(d.target, d.ref, d.alice).then(() => undefined),
  },
  {
    state: 'sync-timed-out',
    phase: 'sync-timed-out',
    settings: { syncTimeoutMs: 1500 },
    drive: async (d) => {
      await requestLink(d.target, d.ref, d.alice);
      await d.send('subscribe-fail', 0);
    },
  },
  {
    state: 'active',
    phase: 'active',
    drive: async (d) => {
      await linked(d);
      // A second account is refused.
      await requestLink(d.target, d.ref, d.bob);
    },
  },
  {
    state: 'awaiting-unsubscribe-success',
    phase: 'awaiting-unsubscribe-success',
    drive: async (d) => {
      await linked(d);
      await d.send('unsubscribe-pending', 60);
    },
  },
  {
    state: 'grace-period',
    phase: 'grace-period',
    drive: async (d) => {
      await inGracePeriod(d);
      await d.handle.executeUpdate(extendGracePeriodUpdate, { args: [{ hours: 24 }] });
    },
  },
  // The grace period's timer fires and the stopped deployment is deleted.
  { state: 'deleted', phase: 'deleted', settings: { gracePeriodMs: 2000 }, drive: inGracePeriod },
  // An operator keeps the stopped deployments.
  {
    state: 'cancelled',
    phase: 'cancelled',
    drive: async (d) => {
      await inGracePeriod(d);
      await d.handle.executeUpdate(abortDeletionUpdate);
    },
  },
  // AWS ended it while the link was only reserved.
  {
    state: 'cancelled-before-billing',
    phase: 'cancelled',
    drive: async (d) => {
      await requestLink(d.target, d.ref, d.alice);
      await d.waitsIn('awaiting-aws');
      await d.send('unsubscribe-success', 60);
    },
  },
  // A run started by continue-as-new (from a snapshot, after the activation), which then meters for the last time.
  {
    state: 'continued-as-new',
    phase: 'awaiting-unsubscribe-success',
    settings: { maxHistoryEvents: 50 },
    drive: async (d) => {
      await linked(d);
      await d.send('unsubscribe-pending', 60);
    },
  },
];

async function recordSubscriptionStates(only: string[]): Promise<void> {
  const scenarios = only.length > 0 ? SCENARIOS.filter((s) => only.includes(s.state)) : SCENARIOS;
  const unknown = only.filter((name) => !SCENARIOS.some((s) => s.state === name));
  if (unknown.length > 0)
    throw new Error(`unknown states ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.state).join(', ')}`);

  const runDir = mkdtempSync(join(tmpdir(), 'record-histories-'));
  const logDir = join(runDir, 'logs');
  const processes: ManagedProcess[] = [];
  const closing: Array<() => Promise<unknown>> = [];
  try {
    const [mongoPort, temporalPort] = await Promise.all([freePort(), freePort()]);
    processes.push(
      ...(await Promise.all([
        startFerretDb({ port: mongoPort, dataDir: join(runDir, 'ferretdb'), logDir }),
        startTemporalDevServer({
          port: temporalPort,
          dbFile: join(runDir, 'temporal.sqlite'),
          namespace: 'record',
          logDir,
        }),
      ])),
    );
    const mongoUri = `mongodb://127.0.0.1:${mongoPort}/`;
    const mongo = await connectMongo(mongoUri, 'record');
    closing.push(() => mongo.close());
    await ensureIndexes(mongo.db);

    // The AWS sandbox, so final metering is really sent (and accepted).
    const sandboxMongo = await connectMongo(mongoUri, 'record-sandbox');
    closing.push(() => sandboxMongo.close());
    const productCode = 'recorded-product';
    const sandbox = await buildSandbox({
      db: sandboxMongo.db,
      productCode,
      registrationUrl: 'http://127.0.0.1:9/marketplace/register',
      quotaRps: 1000,
      tokenTtlSeconds: 3600,
      region: 'us-east-1',
    });
    const sandboxUrl = await sandbox.app.listen({ host: '127.0.0.1', port: 0 });
    closing.push(() => sandbox.app.close());
    const metering = createUsageMeteringClient({ region: 'us-east-1', endpoints: { metering: sandboxUrl } });
    closing.push(async () => metering.destroy());

    const config = { address: `127.0.0.1:${temporalPort}`, namespace: 'record', taskQueue: 'marketplace-billing' };
    const connection = await NativeConnection.connect({ address: config.address });
    closing.push(() => connection.close());
    const client = await connectClient(config);
    closing.push(() => client.connection.close());
    const worker = await Worker.create({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities({
        db: mongo.db,
        metering,
        usageMetering: metering,
        meteringConfig: loadMeteringConfig({}),
      }),
    });

    await worker.runUntil(async () => {
      for (const [index, scenario] of scenarios.entries()) {
        const customer = await sandbox.store.createCustomer({ productCode, model: 'account', freeTrial: false });
        await sandbox.store.setStatus(customer._id, 'subscribed');
        const ref: SubscriptionRef = {
          awsAccountId: customer.customerAwsAccountId,
          productCode,
          licenseArn: customer.licenseArn,
        };
        await saveResolvedCustomer(mongo.db, { ...ref, offerType: 'standard' });
        const [alice, bob] = [`acct-recorded-${index}-a`, `acct-recorded-${index}-b`];
        const now = new Date();
        for (const accountId of [alice, bob]) {
          await accountsOf(mongo.db).insertOne({
            _id: accountId,
            email: `${accountId}@example.com`,
            name: accountId,
            paymentMethod: 'none',
            createdAt: now,
          });
          await deploymentsOf(mongo.db).insertMany([
            {
              _id: `${accountId}-trial`,
              accountId,
              name: 'trial',
              plan: 'trial',
              state: 'running',
              trialEndsAt: new Date(now.getTime() + 7 * 24 * HOUR_MS),
              createdAt: now,
            },
            { _id: `${accountId}-prod`, accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
          ]);
        }
        const target: SubscriptionTarget = {
          temporal: client,
          taskQueue: config.taskQueue,
          settings: { syncTimeoutMs: HOUR_MS, gracePeriodMs: 3 * 24 * HOUR_MS, ...scenario.settings },
        };
        const handle = client.workflow.getHandle<typeof subscription>(subscriptionWorkflowId(ref));
        const epoch = Date.now() - 24 * HOUR_MS;
        let sent = 0;
        const drive: Drive = {
          target,
          ref,
          alice,
          bob,
          handle,
          send: async (action, minute) => {
            sent += 1;
            await signalAwsEvent(target, ref, {
              id: `recorded-${index}-${sent}-${action}`,
              action,
              sentAt: new Date(epoch + minute * 60_000).toISOString(),
            });
          },
          waitsIn: (phase) =>
            waitsIn(
              handle,
              () =>
                subscriptionsOf(mongo.db)
                  .findOne({ _id: customerKey(ref) })
                  .then((d) => d?.phase),
              phase,
            ),
        };
        await scenario.drive(drive);
        await drive.waitsIn(scenario.phase);
        const history = await handle.fetchHistory();
        const continued = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
        if (scenario.state === 'continued-as-new' && !continued)
          throw new Error('the recorded run was not started by continue-as-new');
        writeHistory(history, `subscription-${scenario.state}`);
      }
    });
  } finally {
    for (const close of closing.reverse()) await close().catch(() => undefined);
    for (const process of processes.reverse()) await process.stop().catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Until the latest run waits in `phase`: no workflow task or activity open, the query and the store agree. */
async function waitsIn(
  handle: WorkflowHandle<typeof subscription>,
  saved: () => Promise<string | undefined>,
  phase: SubscriptionPhase,
): Promise<void> {
  let last = '';
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const [view, { events }, savedPhase] = await Promise.all([
      handle.query(subscriptionStateQuery),
      handle.fetchHistory(),
      saved(),
    ]);
    const quiet = historyIsQuiet(events!);
    if (quiet && view.phase === phase && savedPhase === phase && view.pendingRequests === 0) return;
    last = `phase ${view.phase}, saved ${savedPhase}, ${quiet ? 'nothing' : 'something'} in flight, ${view.pendingRequests} pending requests`;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${handle.workflowId} did not come to wait in ${phase}: ${last}`);
}

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--subscription-states') return recordSubscriptionStates(rest);
  const [workflowId, name] = [first, rest[0]];
  if (!workflowId || !name)
    throw new Error('usage: record-history <workflowId> <name> | record-history --subscription-states [state…]');
  await recordOne(workflowId, name);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
