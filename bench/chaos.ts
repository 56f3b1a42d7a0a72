/**
 * bench/chaos: a bounded-time chaos run of the cluster mode of the local stack
 * (`node dist/infra/stack.js --cluster`: the Temporal server on PostgreSQL,
 * FerretDB, moto, the sandbox, two replicas each of the worker, the poller and
 * the API behind the load balancer, every process supervised).
 *
 *   node dist/bench/chaos.js [--duration=240] [--kills=2] [--buyers=60] [--metered=400]
 *                            [--grace=60] [--poison=10] [--metering-rate=1] [--settle=300]
 *
 * (or CHAOS_DURATION_SECONDS, CHAOS_KILLS, CHAOS_BUYERS, CHAOS_METERED, CHAOS_GRACE_SECONDS,
 * CHAOS_POISON, CHAOS_METERING_RATE, CHAOS_SETTLE_SECONDS). The stack is started on free ports in
 * a temporary STACK_DIR (bench/chaos-stack.ts) with the grace period shortened
 * (CANCELLATION_GRACE_SECONDS), the worker pointed at a recording deployment
 * API in this process (DEPLOYMENTS_API_URL, bench/recording-platform.ts), the
 * hourly schedule off (the run meters its own hour), the per-client rate
 * limits raised (every buyer comes from 127.0.0.1) and BatchMeterUsage paced
 * at --metering-rate a second, so that the metering hour lasts long enough to
 * meet faults.
 *
 * For --duration seconds three workloads run at once:
 *  1. Buyer journeys through the load balancer (bench/chaos-buyer.ts): the
 *     sandbox mints a token, the buyer registers, signs in, links, and AWS's
 *     subscribe-success (the sandbox's control API, through the queue and a
 *     poller) makes the index page show `linked`. A failed request (429, 5xx,
 *     no answer) is retried a second later; the time from the start of a
 *     step's first failed request to its success is the buyer's stall (the
 *     ResolveCustomer ceiling's 503 "busy" counted apart, as load), and each
 *     step's slowest single request is kept.
 *  2. Notifications: a third of the buyers get unsubscribe-pending (final
 *     metering), then unsubscribe-success; a third unsubscribe-success alone;
 *     a third keep paying. Every fourth gets subscribe-success twice (two
 *     messages), every other one a signed envelope of its own delivered twice
 *     (one message id, two copies). Poison (bodies that are not JSON, and
 *     unsigned envelopes) goes on the queue at random moments. A sandbox call
 *     that sends a notification is not retried once sent: a lost answer's id
 *     is learnt from the store's records (its buyer and action).
 *     Each buyer has deployments on the platform: a trial, a production one,
 *     every other one a staging one, every third an old one somebody else
 *     stopped. A cancellation stops all but the trial and, after the grace
 *     period, deletes what it stopped.
 *     The leaving buyers have usage seeded in this hour and the next, for
 *     their final metering.
 *  3. A metering hour: --metered customers, subscribed in the sandbox and
 *     linked in the store, nine in ten with usage in the last closed hour, are
 *     metered by an hourlyMetering workflow started a quarter into the run.
 *
 * Meanwhile it injects faults: SIGKILL of a random replica of the api, the
 * worker and the poller, --kills times each (kills of one kind at least 45 s
 * apart; one worker kill a few seconds after the metering run started, so
 * that it meets the run in flight, the others at random moments); SIGKILL of
 * the Temporal server, timed from the metering run's start as well; the store
 * stopped for 30 s (SIGSTOP of FerretDB, then SIGCONT: a store that hangs
 * with its connections open, the harder case for clients, whose requests time
 * out instead of being refused; a killed FerretDB would just be restarted by
 * the supervisor within a second or two), verified by a ping on a connection
 * of its own that answers before, gets no answer within 2 s while frozen, and
 * answers after; and SIGINT of PostgreSQL (its fast shutdown), restarted by
 * the supervisor. A signal goes only to the supervisor's current pid for the
 * process, alive, in the stack's process group, running what it should. A
 * replica is killed only while the other one of its kind is up: otherwise the
 * kill is skipped, recorded, and the run fails.
 *
 * Then, once the faults are over, it waits (at most --settle seconds) for
 * every journey, the metering run (its result raced against that deadline),
 * every due deletion, an empty main queue and each buyer's workflow at its
 * expected phase (reported from the end of the last fault, and whether the
 * first look already found it so), and checks with exact counts:
 *  - the faults: 3·--kills + 3 injected, none skipped, each killed or
 *    restarted process reported back by the supervisor with a new pid, every
 *    supervised process exited and restarted exactly as often as the run
 *    faulted it (any other exit or restart, of any process, fails the run),
 *    the store's freeze seen by the ping, and the metering run in flight at a
 *    worker kill and at the Temporal server's kill (its own start and close
 *    times);
 *  - every buyer linked, each platform account linked exactly once, paying
 *    accounts on `aws-marketplace`, cancelled ones seen on `aws-marketplace`
 *    after their link and before their cancellation, then back to `none`;
 *  - every notification recorded once (one record per distinct message id,
 *    none else), and applied once by its workflow (its state's history holds
 *    each id exactly once); signals repeated by a poller killed between its
 *    signal and its record (docs/adr/0002) are reported, not failed;
 *  - every metering record accepted exactly once by the sandbox, with the
 *    quantity that was used; each leaving buyer's final metering exactly two
 *    records per hour from its activation to its final metering (both taken
 *    from the bench's own clock), each with the non-zero quantity seeded; 0
 *    DuplicateRecord and 0 CustomerNotSubscribed;
 *  - every deployment a cancellation stopped deleted exactly once, each at
 *    least --grace seconds after its stop (the platform's times), nothing
 *    else touched (trials, deployments somebody else stopped, any call at all
 *    on a paying customer's);
 *  - no message left in the main queue, and its dead-letter queue holding
 *    exactly the poison injected (the run sends no EventBridge events, so
 *    their queue is not checked).
 * It prints a JSON report (kills, outages with their times, each count
 * expected and actual, the longest stall with and without the ResolveCustomer
 * ceiling's, the slowest request of each step) and PASS or FAIL (exit code
 * 1). Ctrl-C or SIGTERM stops the stack (continuing a frozen store first)
 * and exits non-zero; the stack is stopped by its process group, its
 * replicas too should its own process have died.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListTopicsCommand } from '@aws-sdk/client-sns';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import { billableUnits } from '../activities/metering/metering';
import { subscriptionStateQuery } from '../domain/subscription-messages';
import { subscriptionWorkflowId, type SubscriptionRef } from '../domain/subscription-identity';
import type { SubscriptionEvent, SubscriptionView } from '../domain/subscription-model';
import { queueDepth } from '../infra/servers';
import { createSnsClient, createSqsClient } from '../lib/aws';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { hashPassword } from '../lib/passwords';
import { accountsOf } from '../lib/store/accounts';
import { DEMO_PASSWORD } from '../lib/store/demo-accounts';
import { customerKey, marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { markHoursMetered } from '../lib/store/metering-ledger';
import { subscriptionsOf } from '../lib/store/subscriptions';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { connectClient } from '../lib/temporal';
import { snsEnvelopeBody } from '../sandbox/notification-bodies';
import { snsMessage } from '../sandbox/notifications';
import { ensureSigningKey, SIGNING_CERT_PATH } from '../sandbox/sns-signing';
import type { SandboxCustomer } from '../sandbox/store';
import { hourlyMetering } from '../workflows/metering/hourly-metering';
import {
  buyerJourney,
  sendNotification,
  sandboxControl,
  type BuyerPlan,
  type JourneyResult,
  type StepFigures,
} from './chaos-buyer';
import { commandOf, isAlive, startClusterStack, type ClusterStack } from './chaos-stack';
import { startRecordingPlatform, typicalDeployments, type PlatformDeployment } from './recording-platform';

const NAMESPACE = 'marketplace';
const TASK_QUEUE = 'marketplace-billing';
const DATABASE = 'marketplace_billing';
const SANDBOX_DATABASE = 'marketplace_sandbox';
const REGION = 'us-east-1';
const STORE_OUTAGE_MS = 30_000;
/** What each replica runs: a signal goes only to a process whose command line says so. */
const SCRIPT_OF = { api: /api\/server\.js/, worker: /worker\/main\.js/, poller: /poller\/main\.js/ };

interface Options {
  durationS: number;
  kills: number;
  buyers: number;
  metered: number;
  graceS: number;
  poison: number;
  meteringRate: number;
  settleS: number;
}

function options(): Options {
  const arg = (name: string, env: string, fallback: number) => {
    const given = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[env];
    const value = given === undefined || given === '' ? fallback : Number(given);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} (${env}): a number ≥ 0, not ${given}`);
    return value;
  };
  return {
    durationS: arg('duration', 'CHAOS_DURATION_SECONDS', 240),
    kills: Math.floor(arg('kills', 'CHAOS_KILLS', 2)),
    buyers: Math.max(3, Math.floor(arg('buyers', 'CHAOS_BUYERS', 60))),
    metered: Math.floor(arg('metered', 'CHAOS_METERED', 400)),
    graceS: Math.max(1, Math.floor(arg('grace', 'CHAOS_GRACE_SECONDS', 60))),
    poison: Math.floor(arg('poison', 'CHAOS_POISON', 10)),
    meteringRate: arg('metering-rate', 'CHAOS_METERING_RATE', 1),
    settleS: arg('settle', 'CHAOS_SETTLE_SECONDS', 300),
  };
}

type Fate = 'pending-then-cancel' | 'cancel' | 'paying';
const fateOf = (i: number): Fate => (['pending-then-cancel', 'cancel', 'paying'] as const)[i % 3]!;
const isCancelled = (i: number) => fateOf(i) !== 'paying';

interface Buyer {
  plan: BuyerPlan;
  customer: SandboxCustomer;
  ref: SubscriptionRef;
  deployments: PlatformDeployment[];
  journey?: JourneyResult;
  /** Every distinct notification id sent about this buyer (not counting copies). */
  messageIds: string[];
  copiesSent: number;
  pendingSentAt?: number;
  finalMeteredSeenAt?: number;
  afterLinkError?: string;
  /** Seen on `aws-marketplace` (for this buyer's AWS account) after the link, before any cancellation was sent. */
  onMarketplaceBeforeCancel?: boolean;
  /** Notifications sent whose answer was lost (their id is learnt from the store's records at the end). */
  lostActions: string[];
  /** Usage seeded for this buyer's final metering, by hour (ISO). */
  finalUsage: Record<string, Record<string, number>>;
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
const random = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** The promise, or a rejection at `deadline` (epoch ms): a call that never answers cannot hang the run. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer by the deadline`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Retries a call to Temporal while the server is down or restarting; each attempt is bounded by `attemptMs`. */
async function withTemporal<T>(what: string, call: () => Promise<T>, deadline: number, attemptMs = 30_000): Promise<T> {
  for (;;) {
    try {
      return await beforeDeadline(call(), Math.min(deadline, Date.now() + attemptMs), what);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
      await sleep(1000);
    }
  }
}

interface FaultRecord {
  kind: 'kill' | 'temporal-restart' | 'store-stop' | 'postgresql-restart';
  target: string;
  pid: number;
  signal: string;
  atSeconds: number;
  atMs: number;
  /** The pid the supervisor reported for the restart that followed. */
  newPid?: number;
  /** When the fault was over (epoch ms): the restart reported, or the store resumed. */
  endMs?: number;
  /** Store freeze: a ping answered before the SIGSTOP, none answered within 2 s while frozen, one after the SIGCONT. */
  pingBefore?: string;
  pingFrozen?: string;
  pingAfterResumeMs?: number;
  /** When the store was resumed (SIGCONT), for the store's outage. */
  endSeconds?: number;
  /** When the supervisor reported it back, from the signal. */
  backAfterSeconds?: number;
  skipped?: string;
}

async function main(): Promise<void> {
  const opts = options();
  const wallStarted = Date.now();
  const durationMs = opts.durationS * 1000;
  const platformToken = randomBytes(24).toString('hex');
  const runTag = Date.now().toString(36);

  // The platform's accounts and deployments, known before the worker asks about them.
  const accountIds = Array.from({ length: opts.buyers }, (_, i) => `acct-chaos-${runTag}-${i}`);
  const allDeployments = accountIds.flatMap((id, i) => typicalDeployments(i, id));
  const platform = await startRecordingPlatform(allDeployments, platformToken);
  console.log(
    `chaos: ${opts.durationS} s, K=${opts.kills} kills per process, ${opts.buyers} buyers, ${opts.metered} metered customers, grace ${opts.graceS} s`,
  );
  // Ctrl-C or a SIGTERM stops the stack (its group, the store continued first) and fails the run.
  let started: ClusterStack | undefined;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    console.log(`${sig}: stopping the stack…`);
    void (async () => {
      await started?.stop(true).catch(() => undefined);
      if (started) console.log(`the run's logs and data are kept in ${started.dir}`);
      await platform.close().catch(() => undefined);
      console.log('FAIL: interrupted');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  console.log('starting the cluster stack…');
  const stack = await startClusterStack(
    {
      CANCELLATION_GRACE_SECONDS: String(opts.graceS),
      DEPLOYMENTS_API_URL: platform.url,
      DEPLOYMENTS_API_TOKEN: platformToken,
      METERING_SCHEDULE: 'false',
      METERING_RATE_PER_SECOND: String(opts.meteringRate),
      RATE_LIMIT_REGISTRATION_PER_MINUTE: '100000',
      RATE_LIMIT_SIGN_IN_PER_MINUTE: '100000',
      RATE_LIMIT_LINKS_PER_MINUTE: '100000',
      LOG_LEVEL: 'warn',
    },
    undefined,
    (s) => (started = s),
  ).catch(async (error: unknown) => {
    await platform.close().catch(() => undefined);
    throw error;
  });
  const startupSeconds = seconds(Date.now() - wallStarted);
  console.log(`the stack is up after ${startupSeconds} s`);
  const { ports } = stack;
  const lb = `http://127.0.0.1:${ports.api}`;
  const sandboxUrl = `http://127.0.0.1:${ports.sandbox}`;
  const lostAnswers = { count: 0 };
  const control = sandboxControl(sandboxUrl, lostAnswers);
  const mongoUri = `mongodb://127.0.0.1:${ports.mongo}/`;
  const aws = {
    region: REGION,
    endpoints: { sqs: `http://127.0.0.1:${ports.moto}`, sns: `http://127.0.0.1:${ports.moto}` },
  };
  const sqs = createSqsClient(aws);
  const sns = createSnsClient(aws);
  let temporal: Client | undefined;
  let service: MongoHandle | undefined;
  let sandboxDb: MongoHandle | undefined;
  let probe: MongoHandle | undefined;
  let exitCode = 1;
  try {
    service = await connectMongo(mongoUri, DATABASE);
    sandboxDb = await connectMongo(mongoUri, SANDBOX_DATABASE);
    // The store freeze's probe: a connection of its own, whose requests give up after 2 s.
    probe = await connectMongo(
      `${mongoUri}?socketTimeoutMS=2000&connectTimeoutMS=2000&serverSelectionTimeoutMS=2000`,
      DATABASE,
      'chaos-probe',
    );
    const serviceDb = service.db;
    const sandboxStore = sandboxDb.db;
    temporal = await connectClient({
      address: `127.0.0.1:${ports.temporal}`,
      namespace: NAMESPACE,
      taskQueue: TASK_QUEUE,
    });
    const queues = stack.queues();
    const topics = (await sns.send(new ListTopicsCommand({}))).Topics ?? [];
    const topicArn = topics.map((t) => t.TopicArn!).find((arn) => arn.includes('aws-mp-subscription-notification'));
    if (!topicArn) throw new Error('no subscription topic on moto');
    const signer = {
      key: ensureSigningKey(stack.signingDir),
      certUrl: `http://localhost:${ports.sandbox}${SIGNING_CERT_PATH}`,
      topicArn,
    };

    // --- Seeding: the buyers' platform accounts and AWS purchases; the metered customers and their hour. ---
    console.log('seeding…');
    const passwordHash = await hashPassword(DEMO_PASSWORD);
    await accountsOf(serviceDb).insertMany(
      accountIds.map((id) => ({
        _id: id,
        email: `${id}@chaos.invalid`,
        name: id,
        paymentMethod: 'none' as const,
        passwordHash,
        createdAt: new Date(),
      })),
    );
    const buyers: Buyer[] = [];
    for (const [i, accountId] of accountIds.entries()) {
      const created = await control<{ customer: SandboxCustomer; token: string }>('POST', '/control/customers', {});
      const c = created.customer;
      buyers.push({
        plan: {
          index: i,
          accountId,
          email: `${accountId}@chaos.invalid`,
          password: DEMO_PASSWORD,
          sandboxCustomerId: c._id,
          awsAccountId: c.customerAwsAccountId,
          licenseArn: c.licenseArn,
          productCode: c.productCode,
          token: created.token,
        },
        customer: c,
        ref: { awsAccountId: c.customerAwsAccountId, productCode: c.productCode, licenseArn: c.licenseArn },
        deployments: allDeployments.filter((d) => d.accountId === accountId),
        messageIds: [],
        copiesSent: 0,
        lostActions: [],
        finalUsage: {},
      });
    }
    const lastHour = hourStart(Date.now() - HOUR_MS);
    const metered: Array<{ customer: SandboxCustomer; quantities?: Record<string, number> }> = [];
    for (let i = 0; i < opts.metered; i++) {
      const created = await control<{ customer: SandboxCustomer }>('POST', '/control/customers', { subscribed: true });
      // Nine in ten used the platform that hour; the tenth gets records of 0.
      const quantities =
        i % 10 === 9
          ? undefined
          : {
              session_hours: Math.round(random(1, 60) * 100) / 100,
              traffic_gb: Math.round(random(0, 5) * 1000) / 1000,
            };
      metered.push({ customer: created.customer, quantities });
    }
    const meteredLinkOf = (c: SandboxCustomer) => {
      const ref = { awsAccountId: c.customerAwsAccountId, productCode: c.productCode, licenseArn: c.licenseArn };
      return {
        _id: customerKey(ref),
        ...ref,
        accountId: `acct-chaos-metered-${c._id}`,
        state: 'active' as const,
        reservedAt: new Date(lastHour.getTime() - 2 * HOUR_MS),
        activatedAt: new Date(lastHour.getTime() - HOUR_MS),
      };
    };
    if (metered.length > 0) {
      await marketplaceLinksOf(serviceDb).insertMany(metered.map((m) => meteredLinkOf(m.customer)));
      const usage = metered.flatMap((m) =>
        m.quantities
          ? [
              {
                _id: `dep-chaos-${m.customer._id}|${lastHour.toISOString()}`,
                accountId: `acct-chaos-metered-${m.customer._id}`,
                deploymentId: `dep-chaos-${m.customer._id}`,
                hour: lastHour,
                quantities: m.quantities,
              },
            ]
          : [],
      );
      if (usage.length > 0) await usageOf(serviceDb).insertMany(usage);
    }
    // The leaving buyers' usage in the hours their final metering may cover (this one and the next, should the run
    // cross an hour), so that every final record has a quantity the bench chose.
    const thisHour = hourStart(Date.now());
    for (const b of buyers.filter((x) => fateOf(x.plan.index) === 'pending-then-cancel'))
      for (const hour of [thisHour, new Date(thisHour.getTime() + HOUR_MS)])
        b.finalUsage[hour.toISOString()] = {
          session_hours: Math.round(random(1, 30) * 100) / 100,
          traffic_gb: Math.round(random(0.001, 3) * 1000) / 1000,
        };
    const finalUsageDocs = buyers.flatMap((b) =>
      Object.entries(b.finalUsage).map(([hour, quantities]) => ({
        _id: `dep-chaos-final-${b.plan.accountId}|${hour}`,
        accountId: b.plan.accountId,
        deploymentId: `dep-chaos-final-${b.plan.accountId}`,
        hour: new Date(hour),
        quantities,
      })),
    );
    if (finalUsageDocs.length > 0) await usageOf(serviceDb).insertMany(finalUsageDocs);
    // Only the last closed hour is due: the 30 before it, and the current and next ones (the run may cross an
    // hour), count as metered, so the run meters exactly one hour and nothing else meters the buyers' hours.
    const notDue = Array.from({ length: 34 }, (_, i) => new Date(lastHour.getTime() - (i - 3) * HOUR_MS))
      .filter((h) => h.getTime() !== lastHour.getTime())
      .map((h) => h.toISOString());
    await markHoursMetered(serviceDb, notDue);
    console.log(`seeded ${buyers.length} buyers and ${metered.length} metered customers for ${lastHour.toISOString()}`);

    // --- The chaos phase. ---
    const t0 = Date.now();
    const at = (ms: number) => seconds(ms - t0);
    const settleDeadline = t0 + durationMs + opts.settleS * 1000;
    const faults: FaultRecord[] = [];
    const kills: Record<string, { count: number; replicas: string[]; atSeconds: number[] }> = {
      api: { count: 0, replicas: [], atSeconds: [] },
      worker: { count: 0, replicas: [], atSeconds: [] },
      poller: { count: 0, replicas: [], atSeconds: [] },
    };
    const until = (ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));
    /** The supervisor's current pid for `name`, alive, in the stack's process group, running what it should. */
    const livePid = (name: string, expect: RegExp) => {
      const pid = stack.pidOf(name);
      return pid !== undefined && isAlive(pid) && stack.inGroup(pid) && expect.test(commandOf(pid)) ? pid : undefined;
    };
    const waitBack = async (name: string, restartsBefore: number, record: FaultRecord) => {
      while (stack.restartsOf(name) <= restartsBefore && Date.now() < settleDeadline) await sleep(200);
      const pid = stack.restartPidsOf(name)[restartsBefore];
      if (pid === undefined) return;
      record.newPid = pid;
      record.endMs = Date.now();
      record.backAfterSeconds = seconds(record.endMs - record.atMs);
    };
    /** Records a fault as it is injected (or skipped, saying why). */
    const recordFault = (
      kind: FaultRecord['kind'],
      name: string,
      sig: NodeJS.Signals,
      pid: number,
      skipped?: string,
    ) => {
      const now = Date.now();
      const record: FaultRecord = { kind, target: name, pid, signal: sig, atSeconds: at(now), atMs: now };
      if (skipped) record.skipped = skipped;
      faults.push(record);
      return record;
    };
    const signal = (name: string, sig: NodeJS.Signals, kind: FaultRecord['kind'], expect: RegExp) => {
      const last = stack.pidOf(name);
      const pid = livePid(name, expect);
      if (!pid) {
        const command = last ? commandOf(last) : '';
        recordFault(
          kind,
          name,
          sig,
          last ?? 0,
          `no live ${name} process of the stack (pid ${last}, command '${command}')`,
        );
        return undefined;
      }
      const record = recordFault(kind, name, sig, pid);
      const restartsBefore = stack.restartsOf(name);
      process.kill(pid, sig);
      return { record, restartsBefore };
    };
    const killReplica = async (kind: 'api' | 'worker' | 'poller', when: () => Promise<unknown>) => {
      await when();
      const names = [`${kind}-1`, `${kind}-2`];
      const name = names[Math.floor(Math.random() * 2)]!;
      const other = names.find((n) => n !== name)!;
      // Never both replicas of one kind down at once: with the other one not up, the kill is skipped (and fails the run).
      if (!livePid(other, SCRIPT_OF[kind])) {
        recordFault(
          'kill',
          name,
          'SIGKILL',
          stack.pidOf(name) ?? 0,
          `${other} was not up: killing ${name} would leave no ${kind}`,
        );
        return;
      }
      const sent = signal(name, 'SIGKILL', 'kill', SCRIPT_OF[kind]);
      if (!sent) return;
      kills[kind]!.count++;
      kills[kind]!.replicas.push(name);
      kills[kind]!.atSeconds.push(sent.record.atSeconds);
      await waitBack(name, sent.restartsBefore, sent.record);
    };

    // The metering hour starts a quarter into the run; one worker kill and the Temporal server's kill are timed from
    // its start, so that they meet it in flight (at 25 records a call and --metering-rate calls a second it lasts
    // about `meteringCallsS` seconds), and the report checks that they did.
    const meteringPlannedMs = 0.25 * durationMs;
    const meteringCallsS = Math.ceil((opts.metered * 2) / 25) / Math.max(opts.meteringRate, 0.001);
    let meteringStartedAt: (at: number) => void = () => undefined;
    const meteringStart = new Promise<number>((resolve) => (meteringStartedAt = resolve));
    const afterMeteringStart = (lo: number, hi: number) => async () => {
      const startedAt = await meteringStart;
      await sleep(Math.max(0, startedAt + random(lo, hi) * 1000 - Date.now()));
    };
    const workerAnchorS = Math.min(6, Math.max(1, 0.15 * meteringCallsS));
    const temporalAnchorS = Math.min(15, Math.max(2, 0.4 * meteringCallsS));
    /** `count` moments in [lo, hi]·duration, each at least `gapMs` from the others and from `avoid`. */
    const spaced = (count: number, lo: number, hi: number, gapMs: number, avoid: number[] = []) => {
      for (let tries = 0; ; tries++) {
        const times: number[] = [];
        for (let k = 0; k < count; k++) times.push(random(lo, hi) * durationMs);
        const all = [...times, ...avoid];
        const apart = all.every((a, i) => all.every((b, j) => i === j || Math.abs(a - b) >= gapMs));
        if (apart || tries > 1000) return times;
      }
    };
    // Kills of one kind at least 45 s apart: a replica killed during the store's freeze may take its length to be back.
    const KILL_GAP_MS = 45_000;
    const faultTasks: Array<Promise<void>> = [];
    for (const kind of ['api', 'poller'] as const)
      for (const ms of spaced(opts.kills, 0.05, 0.9, KILL_GAP_MS)) faultTasks.push(killReplica(kind, () => until(ms)));
    if (opts.kills > 0) {
      faultTasks.push(killReplica('worker', afterMeteringStart(workerAnchorS * 0.6, workerAnchorS)));
      const anchor = meteringPlannedMs + workerAnchorS * 1000;
      for (const ms of spaced(opts.kills - 1, 0.05, 0.9, KILL_GAP_MS, [anchor]))
        faultTasks.push(killReplica('worker', () => until(ms)));
    }
    // The store hangs for 30 s; a ping on a connection of its own must answer before, time out during, answer after.
    const ping = async () => {
      const started = Date.now();
      try {
        await beforeDeadline(probe!.db.command({ ping: 1 }, { timeoutMS: 2000 }), started + 2000, 'ping');
        return `answered in ${Date.now() - started} ms`;
      } catch (error) {
        return `failed after ${Date.now() - started} ms (${(error as Error).message.slice(0, 80)})`;
      }
    };
    faultTasks.push(
      (async () => {
        await until(random(0.12, 0.2) * durationMs);
        const pingBefore = await ping();
        const sent = signal('ferretdb', 'SIGSTOP', 'store-stop', /ferretdb/);
        if (!sent) return;
        sent.record.pingBefore = pingBefore;
        await sleep(3000);
        sent.record.pingFrozen = await ping();
        await sleep(Math.max(0, sent.record.atMs + STORE_OUTAGE_MS - Date.now()));
        process.kill(sent.record.pid, 'SIGCONT');
        sent.record.endMs = Date.now();
        sent.record.endSeconds = at(sent.record.endMs);
        for (let i = 0; i < 20; i++) {
          if ((await ping()).startsWith('answered')) {
            sent.record.pingAfterResumeMs = Date.now() - sent.record.endMs;
            break;
          }
          await sleep(500);
        }
      })(),
    );
    faultTasks.push(
      (async () => {
        await afterMeteringStart(temporalAnchorS * 0.7, temporalAnchorS)();
        const sent = signal('temporal', 'SIGKILL', 'temporal-restart', /temporal/);
        if (sent) await waitBack('temporal', sent.restartsBefore, sent.record);
      })(),
    );
    faultTasks.push(
      (async () => {
        await until(random(0.65, 0.75) * durationMs);
        const sent = signal('postgresql', 'SIGINT', 'postgresql-restart', /postgres/);
        if (sent) await waitBack('postgresql', sent.restartsBefore, sent.record);
      })(),
    );

    /** One message on the main queue, retried for a minute while SQS (moto) does not answer. */
    const sendToQueue = async (body: string) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: body }));
        } catch (error) {
          if (attempt >= 60) throw error;
          console.log(`  SQS did not take a message (${(error as Error).message}); again in 1 s`);
          await sleep(1000);
        }
      }
    };
    // Poison on the main queue at random moments.
    const poisonIds: string[] = [];
    const poisonTasks = Array.from({ length: opts.poison }, (_, p) =>
      (async () => {
        await until(random(0, 0.9) * durationMs);
        const victim = buyers[p % buyers.length]!.customer;
        const body =
          p % 2 === 0
            ? `not json {{{ chaos poison ${p}`
            : JSON.stringify({
                // An envelope from our own topic with no signature: untrusted.
                Type: 'Notification',
                MessageId: randomUUID(),
                TopicArn: topicArn,
                Message: JSON.stringify(snsMessage(victim, 'unsubscribe-success')),
                Timestamp: new Date().toISOString(),
                SignatureVersion: '1',
                SigningCertURL: signer.certUrl,
              });
        const sent = await sendToQueue(body);
        poisonIds.push(sent.MessageId!);
      })(),
    );

    // The metering hour, a quarter into the run.
    const meteringId = `chaos-metering-${runTag}`;
    const metering = (async () => {
      await until(meteringPlannedMs);
      const startedAt = Date.now();
      await withTemporal(
        'start the metering run',
        () =>
          temporal!.workflow.start(hourlyMetering, { taskQueue: TASK_QUEUE, workflowId: meteringId, args: [{}] }).then(
            () => undefined,
            (error: Error) => {
              // Started by an attempt whose answer was lost: it runs.
              if (error.name === 'WorkflowExecutionAlreadyStartedError') return undefined;
              throw error;
            },
          ),
        settleDeadline,
      );
      meteringStartedAt(Date.now());
      // result() long-polls, and follows the run through the Temporal server's restart; the settle deadline ends it.
      const result = await beforeDeadline(
        withTemporal(
          'the metering run',
          () => temporal!.workflow.getHandle(meteringId).result() as ReturnType<typeof hourlyMetering>,
          settleDeadline,
          settleDeadline - Date.now(),
        ),
        settleDeadline,
        'the metering run',
      );
      const resultAt = Date.now();
      // The run's own start and close times, for the overlap with the faults (the bench's, if it cannot say).
      const described = await withTemporal(
        'describe the metering run',
        () => temporal!.workflow.getHandle(meteringId).describe(),
        Date.now() + 30_000,
      ).catch(() => undefined);
      const startMs = described?.startTime.getTime() ?? startedAt;
      const closeMs = described?.closeTime?.getTime() ?? resultAt;
      return {
        result,
        startMs,
        closeMs,
        startedSeconds: at(startMs),
        seconds: seconds(closeMs - startMs),
        timesFrom: described?.closeTime ? 'the workflow' : 'the bench',
      };
    })();
    // A metering run that never starts must not hold the worker's and Temporal's kills for ever.
    void metering.catch(() => meteringStartedAt(Date.now()));

    // After the link: the buyer's notifications.
    const selfSigned = async (buyer: Buyer, action: string) => {
      const body = snsEnvelopeBody(buyer.customer, action, signer, randomUUID(), new Date());
      buyer.messageIds.push((JSON.parse(body) as { MessageId: string }).MessageId);
      // The same message delivered twice, as SQS and SNS may.
      for (let copy = 0; copy < 2; copy++) {
        await sendToQueue(body);
        buyer.copiesSent++;
      }
    };
    const notify = async (buyer: Buyer, action: string) => {
      buyer.copiesSent++;
      const messageId = await sendNotification(control, buyer.plan.sandboxCustomerId, action);
      if (messageId) buyer.messageIds.push(messageId);
      else buyer.lostActions.push(action);
    };
    /** Linking must have put the account on AWS Marketplace billing, or "billing ended" would prove nothing. */
    const onMarketplace = async (buyer: Buyer) => {
      const until = Date.now() + 30_000;
      for (;;) {
        const account = await accountsOf(serviceDb).findOne({ _id: buyer.plan.accountId });
        if (
          account?.paymentMethod === 'aws-marketplace' &&
          account.marketplace?.awsAccountId === buyer.plan.awsAccountId
        )
          return true;
        if (Date.now() > until) return false;
        await sleep(500);
      }
    };
    const afterLink = async (buyer: Buyer) => {
      const i = buyer.plan.index;
      await sleep(random(0, 10_000));
      if (isCancelled(i)) buyer.onMarketplaceBeforeCancel = await onMarketplace(buyer);
      if (fateOf(i) === 'pending-then-cancel') {
        buyer.pendingSentAt = Date.now();
        await notify(buyer, 'unsubscribe-pending');
        // Final metering happens before AWS's unsubscribe-success, which closes the window.
        for (;;) {
          const saved = await subscriptionsOf(serviceDb).findOne({ accountId: buyer.plan.accountId });
          if (saved?.phase === 'awaiting-unsubscribe-success') break;
          if (Date.now() > settleDeadline) throw new Error(`final metering not done: phase ${saved?.phase}`);
          await sleep(500);
        }
        buyer.finalMeteredSeenAt = Date.now();
      }
      if (isCancelled(i)) await notify(buyer, 'unsubscribe-success');
      if (i % 2 === 0) await selfSigned(buyer, isCancelled(i) ? 'unsubscribe-success' : 'subscribe-success');
    };
    const journeyTasks = buyers.map((buyer, i) =>
      (async () => {
        await until((i / buyers.length) * 0.6 * durationMs);
        buyer.journey = await buyerJourney(lb, control, buyer.plan, {
          deadline: settleDeadline,
          extraSubscribeSuccess: i % 4 === 1,
        });
        buyer.messageIds.push(...buyer.journey.subscribeMessageIds);
        buyer.copiesSent += buyer.journey.subscribeMessageIds.length + buyer.journey.lostActions.length;
        buyer.lostActions.push(...buyer.journey.lostActions);
        if (!buyer.journey.ok) return;
        try {
          await afterLink(buyer);
        } catch (error) {
          buyer.afterLinkError = (error as Error).message;
        }
      })(),
    );

    const progress = setInterval(() => {
      const done = buyers.filter((b) => b.journey).length;
      console.log(
        `  t=${at(Date.now())} s: ${done}/${buyers.length} journeys done, ${faults.length} faults injected, ${platform.calls.length} platform calls`,
      );
    }, 20_000);
    await Promise.all([...faultTasks, ...poisonTasks]);
    await until(durationMs);
    const faultsOverAt = Date.now();
    const lastFaultEndMs = Math.max(...faults.map((f) => f.endMs ?? f.atMs), t0);
    console.log(`faults over at t=${at(faultsOverAt)} s (the last one ended at t=${at(lastFaultEndMs)} s); settling…`);
    await beforeDeadline(Promise.all(journeyTasks), settleDeadline + 150_000, 'the buyers').catch((error: Error) =>
      console.log(`  ${error.message}`),
    );
    const meteringOutcome = await metering.then(
      (value) => ({ ok: true as const, ...value }),
      (error: Error) => ({ ok: false as const, error: error.message }),
    );

    // --- Settling: due deletions, empty queues, every workflow at its expected phase. ---
    const toDelete = new Set(
      buyers
        .filter((b) => isCancelled(b.plan.index) && b.journey?.ok)
        .flatMap((b) => b.deployments.filter((d) => d.plan === 'standard' && d.state === 'running').map((d) => d.id)),
    );
    const expectedPhase = (b: Buyer) => (isCancelled(b.plan.index) ? 'deleted' : 'active');
    let settled = false;
    let settledAtFirstCheck = false;
    let settledAt: number | undefined;
    const settleState = { deleted: 0, depth: -1, atPhase: 0 };
    for (let round = 0; Date.now() < settleDeadline; round++) {
      settleState.deleted = [...toDelete].filter((id) => platform.stateOf(id) === 'deleted').length;
      settleState.depth = await queueDepth(sqs, queues.queueUrl);
      const saved = await subscriptionsOf(serviceDb)
        .find({ accountId: { $in: accountIds } }, { projection: { accountId: 1, phase: 1 } })
        .toArray();
      const phaseOf = new Map(saved.map((s) => [s.accountId, s.phase]));
      settleState.atPhase = buyers.filter((b) => phaseOf.get(b.plan.accountId) === expectedPhase(b)).length;
      if (settleState.deleted === toDelete.size && settleState.depth === 0 && settleState.atPhase === buyers.length) {
        settled = true;
        settledAtFirstCheck = round === 0;
        settledAt = Date.now();
        break;
      }
      await sleep(2000);
    }
    // Anything repeated late (a retried activity, a redelivered message) would arrive meanwhile.
    await sleep(10_000);
    clearInterval(progress);
    const settledSeconds = seconds((settledAt ?? Date.now()) - faultsOverAt);
    const settledAfterLastFaultSeconds = seconds((settledAt ?? Date.now()) - lastFaultEndMs);
    console.log(
      `settled: ${settled} (${JSON.stringify(settleState)}) ${settledAfterLastFaultSeconds} s after the last fault ended, ${settledSeconds} s after the fault window${settledAtFirstCheck ? ' (already at the first check)' : ''}; checking…`,
    );

    // --- Checks. ---
    const checks: Record<string, { expected: number; actual: number; ok: boolean; note?: string }> = {};
    const check = (name: string, expected: number, actual: number, note?: string) =>
      (checks[name] = { expected, actual, ok: expected === actual, ...(note ? { note } : {}) });

    // 0. The faults themselves: all injected, none skipped, each restart reported with a new pid, and no process of
    // the stack exited or was restarted but those the run killed, as often as it killed them.
    const injected = faults.filter((f) => !f.skipped);
    check('faultsInjected', 3 * opts.kills + 3, injected.length);
    check(
      'faultsSkipped',
      0,
      faults.filter((f) => f.skipped).length,
      faults
        .filter((f) => f.skipped)
        .map((f) => `${f.target} @${f.atSeconds} s: ${f.skipped}`)
        .join('; ') || undefined,
    );
    const restartsDue = injected.filter((f) => f.kind !== 'store-stop');
    check(
      'killedProcessesBackWithANewPid',
      restartsDue.length,
      restartsDue.filter((f) => f.newPid !== undefined && f.newPid !== f.pid).length,
    );
    const supervised = stack.supervisedNames();
    const supervisor = Object.fromEntries(
      supervised.map((name) => {
        const due = restartsDue.filter((f) => f.target === name).length;
        return [name, { faults: due, exits: stack.exitsOf(name), restarts: stack.restartsOf(name) }];
      }),
    );
    const unplanned = Object.entries(supervisor).filter(([, v]) => v.exits !== v.faults || v.restarts !== v.faults);
    check(
      'processesExitedAndRestartedExactlyAsFaulted',
      supervised.length,
      supervised.length - unplanned.length,
      unplanned
        .map(([name, v]) => `${name}: ${v.exits} exits, ${v.restarts} restarts, ${v.faults} faults`)
        .join('; ') || undefined,
    );
    const storeStop = injected.find((f) => f.kind === 'store-stop');
    check(
      'storeFreezeVerified',
      1,
      storeStop?.pingBefore?.startsWith('answered') &&
        storeStop.pingFrozen?.startsWith('failed') &&
        storeStop.pingAfterResumeMs !== undefined
        ? 1
        : 0,
      storeStop
        ? `ping before: ${storeStop.pingBefore}; frozen: ${storeStop.pingFrozen}; after SIGCONT: ${storeStop.pingAfterResumeMs} ms`
        : 'no store freeze',
    );
    const during = (f: FaultRecord) =>
      meteringOutcome.ok && f.atMs >= meteringOutcome.startMs && f.atMs <= meteringOutcome.closeMs;
    if (opts.kills > 0)
      check(
        'meteringRunMetAWorkerKill',
        1,
        injected.some((f) => f.kind === 'kill' && f.target.startsWith('worker-') && during(f)) ? 1 : 0,
      );
    check('meteringRunMetTheTemporalKill', 1, injected.some((f) => f.kind === 'temporal-restart' && during(f)) ? 1 : 0);

    const linkedBuyers = buyers.filter((b) => b.journey?.ok);
    check('buyersLinked', buyers.length, linkedBuyers.length);
    check('buyersNotificationsSent', buyers.length, buyers.filter((b) => b.journey?.ok && !b.afterLinkError).length);

    // 1. Links.
    const links = await marketplaceLinksOf(serviceDb)
      .find({ accountId: { $in: accountIds } })
      .toArray();
    const linksByAccount = new Map<string, typeof links>();
    for (const l of links) linksByAccount.set(l.accountId, [...(linksByAccount.get(l.accountId) ?? []), l]);
    check(
      'accountsLinkedExactlyOnce',
      buyers.length,
      buyers.filter((b) => {
        const own = linksByAccount.get(b.plan.accountId) ?? [];
        return own.length === 1 && own[0]!.awsAccountId === b.plan.awsAccountId;
      }).length,
    );
    const accounts = await accountsOf(serviceDb)
      .find({ _id: { $in: accountIds } })
      .toArray();
    const accountOf = new Map(accounts.map((a) => [a._id, a]));
    const paying = buyers.filter((b) => !isCancelled(b.plan.index));
    const cancelled = buyers.filter((b) => isCancelled(b.plan.index));
    check(
      'payingAccountsOnAwsMarketplace',
      paying.length,
      paying.filter((b) => {
        const a = accountOf.get(b.plan.accountId);
        return a?.paymentMethod === 'aws-marketplace' && a.marketplace?.awsAccountId === b.plan.awsAccountId;
      }).length,
    );
    check(
      'cancelledAccountsBillingEnded',
      cancelled.length,
      cancelled.filter(
        (b) => b.onMarketplaceBeforeCancel === true && accountOf.get(b.plan.accountId)?.paymentMethod === 'none',
      ).length,
      'each seen on aws-marketplace after its link and before its cancellation, then on none',
    );

    // 2. Notifications: records, and what each workflow applied (its state's history), and the signals it got.
    const records = await notificationsOf(serviceDb)
      .find({}, { projection: { _id: 1, awsAccountId: 1, action: 1 } })
      .toArray();
    // A notification whose answer was lost was sent all the same (or not at all): its id is the one record of its
    // buyer and action that no answer named.
    let learnt = 0;
    const known = new Set(buyers.flatMap((b) => b.messageIds));
    for (const b of buyers)
      for (const action of b.lostActions) {
        const found = records.find(
          (r) => r.awsAccountId === b.plan.awsAccountId && r.action === action && !known.has(r._id),
        );
        if (!found) continue;
        b.messageIds.push(found._id);
        known.add(found._id);
        learnt++;
      }
    const expectedIds = new Set(buyers.flatMap((b) => b.messageIds));
    const recordIds = new Set(records.map((r) => r._id));
    check('notificationRecords', expectedIds.size, [...expectedIds].filter((id) => recordIds.has(id)).length);
    check('unexpectedNotificationRecords', 0, records.filter((r) => !expectedIds.has(r._id)).length);
    let appliedOnce = 0;
    let appliedExtra = 0;
    let activatedOnce = 0;
    let signals = 0;
    let distinctSignals = 0;
    const queryDeadline = Date.now() + 120_000;
    const views = new Map<Buyer, SubscriptionView>();
    for (const b of buyers) {
      const handle = temporal.workflow.getHandle(subscriptionWorkflowId(b.ref));
      const view = await withTemporal('query', () => handle.query(subscriptionStateQuery), queryDeadline).catch(
        () => undefined,
      );
      if (view) views.set(b, view);
      const ids = (view?.history ?? []).map((h) => h.id);
      const own = new Set(b.messageIds);
      appliedOnce += [...own].filter((id) => ids.filter((x) => x === id).length === 1).length;
      appliedExtra += ids.filter((id) => !own.has(id)).length + (ids.length - new Set(ids).size);
      if ((view?.history ?? []).filter((h) => h.verdict === 'subscribed').length === 1) activatedOnce++;
      const history = await withTemporal('history', () => handle.fetchHistory(), queryDeadline).catch(() => undefined);
      const signalled = (history?.events ?? []).flatMap((e) => {
        const payload = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
        return payload ? [(JSON.parse(Buffer.from(payload).toString()) as SubscriptionEvent).id] : [];
      });
      signals += signalled.length;
      distinctSignals += new Set(signalled).size;
    }
    check('notificationsAppliedOnce', expectedIds.size, appliedOnce);
    check('notificationsAppliedExtraOrTwice', 0, appliedExtra);
    check('subscriptionsActivatedOnce', buyers.length, activatedOnce);

    // 3. Metering: the sandbox's ledger.
    const sandboxUsage = await sandboxStore
      .collection<{ customerId: string; dimension: string; hour: Date; quantity: number }>('usage')
      .find({})
      .toArray();
    const usageKey = (u: { customerId: string; dimension: string; hour: Date }) =>
      `${u.customerId}|${u.dimension}|${new Date(u.hour).toISOString()}`;
    const meteredIds = new Set(metered.map((m) => m.customer._id));
    const meteredUsage = sandboxUsage.filter((u) => meteredIds.has(u.customerId));
    const expectedQuantity = new Map<string, number>();
    for (const m of metered)
      for (const dimension of ['session_hours', 'traffic_gb'])
        expectedQuantity.set(
          `${m.customer._id}|${dimension}|${lastHour.toISOString()}`,
          billableUnits(m.quantities?.[dimension] ?? 0),
        );
    check('meteredRecordsAccepted', expectedQuantity.size, meteredUsage.length);
    check(
      'meteredRecordsExactlyOnceWithTheirQuantity',
      expectedQuantity.size,
      [...expectedQuantity].filter(
        ([key, quantity]) => meteredUsage.filter((u) => usageKey(u) === key && u.quantity === quantity).length === 1,
      ).length,
    );
    // Final metering of each leaving buyer: two records for each hour from its activation to the final metering, each
    // with the usage the bench seeded for that hour. Both ends come from the bench's own clock: the activation lies
    // between the subscribe-success it sent and the index page showing `linked`, the final metering between the
    // unsubscribe-pending it sent and the phase it saw after; if an hour turned inside either, each possibility is
    // allowed, and the records must be exactly one of them.
    const buyerCustomerIds = new Set(buyers.map((b) => b.plan.sandboxCustomerId));
    const finalUsage = sandboxUsage.filter((u) => buyerCustomerIds.has(u.customerId));
    const hoursBetween = (a: number, b: number) => {
      const out: number[] = [];
      for (let h = hourStart(a).getTime(); h <= hourStart(b).getTime(); h += HOUR_MS) out.push(h);
      return out;
    };
    const leaving = buyers.filter((x) => fateOf(x.plan.index) === 'pending-then-cancel');
    let finalExpected = 0;
    let finalExact = 0;
    let finalAmbiguous = 0;
    let finalNonZero = 0;
    for (const b of leaving.filter((x) => x.finalMeteredSeenAt && x.journey?.linkedAt && x.journey.syncMs)) {
      const linkedAt = b.journey!.linkedAt!;
      const options = hoursBetween(linkedAt - b.journey!.syncMs!, linkedAt).flatMap((from) =>
        hoursBetween(b.pendingSentAt!, b.finalMeteredSeenAt!)
          .filter((last) => last >= from)
          .map((last) => {
            const wanted = new Map<string, number>();
            for (let h = from; h <= last; h += HOUR_MS)
              for (const dimension of ['session_hours', 'traffic_gb'])
                wanted.set(
                  `${b.plan.sandboxCustomerId}|${dimension}|${new Date(h).toISOString()}`,
                  billableUnits(b.finalUsage[new Date(h).toISOString()]?.[dimension] ?? 0),
                );
            return wanted;
          }),
      );
      if (options.length > 1) finalAmbiguous++;
      const own = finalUsage.filter((u) => u.customerId === b.plan.sandboxCustomerId);
      const match = options.find(
        (wanted) =>
          own.length === wanted.size &&
          [...wanted].every(([key, q]) => own.filter((u) => usageKey(u) === key && u.quantity === q).length === 1),
      );
      finalExpected += (match ?? options[0])?.size ?? 0;
      if (match) finalExact++;
      if (match && [...match.values()].every((q) => q > 0)) finalNonZero++;
    }
    check(
      'finalMeteringRecordsAccepted',
      finalExpected,
      finalUsage.length,
      'every buyer of the run, paying ones included',
    );
    check(
      'finalMeteringExactPerLeavingBuyer',
      leaving.length,
      finalExact,
      finalAmbiguous > 0 ? `${finalAmbiguous} buyer(s) with an hour turning inside a window` : undefined,
    );
    check('finalMeteringQuantitiesNonZero', leaving.length, finalNonZero);
    check('sandboxRecordsExactlyOnce', sandboxUsage.length, new Set(sandboxUsage.map(usageKey)).size);
    const summary = await control<
      Record<string, { calls: number; outcomes: Record<string, number>; statuses: Record<string, number> }>
    >('GET', '/control/calls/summary');
    const batch = summary.BatchMeterUsage ?? { calls: 0, outcomes: {}, statuses: {} };
    check('duplicateRecords', 0, batch.statuses.DuplicateRecord ?? 0);
    check('customerNotSubscribed', 0, batch.statuses.CustomerNotSubscribed ?? 0);
    check(
      'meteringRunCompleted',
      1,
      meteringOutcome.ok ? 1 : 0,
      meteringOutcome.ok ? undefined : meteringOutcome.error,
    );

    // 4. Deployments.
    const callsOn = (operation: 'list' | 'stop' | 'delete') => platform.calls.filter((c) => c.operation === operation);
    const deletedOutcomes = new Map<string, number>();
    for (const c of callsOn('delete'))
      if (c.outcome === 'deleted') deletedOutcomes.set(c.target, (deletedOutcomes.get(c.target) ?? 0) + 1);
    check(
      'dueDeletionsDoneExactlyOnce',
      toDelete.size,
      [...toDelete].filter((id) => deletedOutcomes.get(id) === 1 && platform.stateOf(id) === 'deleted').length,
    );
    // The grace period: each deletion at least --grace seconds after the stop of the same deployment.
    const firstStop = new Map<string, number>();
    for (const c of callsOn('stop'))
      if (c.outcome === 'stopped' && !firstStop.has(c.target)) firstStop.set(c.target, c.at);
    const margins = callsOn('delete')
      .filter((c) => c.outcome === 'deleted')
      .map((c) => ({ id: c.target, ms: c.at - (firstStop.get(c.target) ?? Infinity) }));
    check(
      'deletionsAfterTheGracePeriod',
      toDelete.size,
      margins.filter((m) => toDelete.has(m.id) && m.ms >= opts.graceS * 1000).length,
      margins.length
        ? `stop to deletion: ${seconds(Math.min(...margins.map((m) => m.ms)))}–${seconds(Math.max(...margins.map((m) => m.ms)))} s`
        : undefined,
    );
    check(
      'deletionsTotal',
      toDelete.size,
      [...deletedOutcomes.values()].reduce((a, b) => a + b, 0),
    );
    const kept = allDeployments.filter((d) => !toDelete.has(d.id));
    const touched = new Set(
      callsOn('stop')
        .concat(callsOn('delete'))
        .map((c) => c.target),
    );
    check(
      'keptDeploymentsTouched',
      0,
      kept.filter((d) => touched.has(d.id) || platform.stateOf(d.id) !== d.state).length,
    );
    const payingAccounts = new Set(paying.map((b) => b.plan.accountId));
    check('callsOnPayingCustomers', 0, callsOn('list').filter((c) => payingAccounts.has(c.target)).length);

    // 5. Queues.
    check('mainQueueMessagesLeft', 0, await queueDepth(sqs, queues.queueUrl));
    const deadLetterDepth = await queueDepth(sqs, queues.deadLetterQueueUrl);
    const deadSources: string[] = [];
    for (let empty = 0; empty < 2 && deadSources.length < deadLetterDepth + 10;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 600,
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) empty++;
      for (const m of Messages)
        deadSources.push(m.MessageAttributes?.sourceMessageId?.StringValue ?? `(no source: ${m.MessageId})`);
    }
    const poisonSet = new Set(poisonIds);
    check('deadLetterCopies', poisonIds.length, deadLetterDepth);
    check('deadLettersArePoison', poisonIds.length, new Set(deadSources.filter((id) => poisonSet.has(id))).size);
    check('deadLettersNotPoison', 0, deadSources.filter((id) => !poisonSet.has(id)).length);

    // --- Report. ---
    const journeys = buyers.map((b) => b.journey).filter((j): j is JourneyResult => j !== undefined);
    const longest = journeys.reduce<JourneyResult | undefined>(
      (a, j) => (!a || j.stalledMs > a.stalledMs ? j : a),
      undefined,
    );
    // The same without the stalls that were the ResolveCustomer ceiling's alone (503 busy: load, not a fault).
    const longestFault = journeys.reduce<JourneyResult | undefined>(
      (a, j) => (!a || j.stalledMs - j.busyStalledMs > a.stalledMs - a.busyStalledMs ? j : a),
      undefined,
    );
    // The slowest single request of each step, whatever its answer (one that hung through the freeze and succeeded).
    const slowest: Record<string, { ms: number; buyer: number; outcome?: string; atSeconds?: number }> = {};
    for (const j of journeys)
      for (const [name, f] of Object.entries<StepFigures>(j.steps))
        if (f.slowestMs > (slowest[name]?.ms ?? -1))
          slowest[name] = {
            ms: f.slowestMs,
            buyer: j.index,
            outcome: f.slowestOutcome,
            atSeconds: f.slowestStartedAt === undefined ? undefined : at(f.slowestStartedAt),
          };
    const syncs = journeys.flatMap((j) => (j.syncMs === undefined ? [] : [j.syncMs])).sort((a, b) => a - b);
    const failuresSeen: Record<string, number> = {};
    for (const j of journeys)
      for (const [name, f] of Object.entries(j.steps))
        for (const [why, n] of Object.entries(f.failures))
          failuresSeen[`${name}:${why}`] = (failuresSeen[`${name}:${why}`] ?? 0) + n;
    const ok = settled && Object.values(checks).every((c) => c.ok);
    const report = {
      options: opts,
      wallSeconds: seconds(Date.now() - wallStarted),
      stackStartupSeconds: startupSeconds,
      chaosSeconds: opts.durationS,
      settled,
      settledAtFirstCheck,
      settledAfterLastFaultEndedSeconds: settledAfterLastFaultSeconds,
      lastFaultEndedAtSeconds: at(lastFaultEndMs),
      settledAfterFaultWindowSeconds: settledSeconds,
      kills,
      outages: faults.filter((f) => f.kind !== 'kill'),
      killDetails: faults.filter((f) => f.kind === 'kill'),
      supervisor,
      supervisorLines: stack
        .output()
        .split('\n')
        .filter((l) => /^\[stack\] \S+ (exited|restarted|did not come back)/.test(l)),
      buyers: {
        planned: buyers.length,
        linked: linkedBuyers.length,
        failed: buyers.flatMap((b) =>
          b.journey?.error || b.afterLinkError
            ? [{ index: b.plan.index, error: b.journey?.error ?? b.afterLinkError }]
            : [],
        ),
        longestStallMs: longest?.stalledMs ?? 0,
        longestStall: longest ? { buyer: longest.index, busyMs: longest.busyStalledMs, steps: longest.steps } : null,
        longestFaultStallMs: longestFault ? longestFault.stalledMs - longestFault.busyStalledMs : 0,
        longestFaultStall: longestFault ? { buyer: longestFault.index, steps: longestFault.steps } : null,
        slowestRequestPerStep: slowest,
        buyersStalled: journeys.filter((j) => j.stalledMs > 0).length,
        buyersStalledByFaults: journeys.filter((j) => j.stalledMs - j.busyStalledMs > 0).length,
        failedRequestsSeen: failuresSeen,
        tokensReissued: journeys.reduce((n, j) => n + j.tokens - 1, 0),
        syncMs: syncs.length ? { median: syncs[Math.floor(syncs.length / 2)], max: syncs.at(-1) } : null,
        fates: {
          pendingThenCancel: buyers.filter((b) => fateOf(b.plan.index) === 'pending-then-cancel').length,
          cancel: buyers.filter((b) => fateOf(b.plan.index) === 'cancel').length,
          paying: paying.length,
        },
      },
      notifications: {
        distinctSent: expectedIds.size,
        copiesSent: buyers.reduce((n, b) => n + b.copiesSent, 0),
        sandboxAnswersLost: lostAnswers.count,
        lostNotificationIdsLearnt: learnt,
        poisonInjected: poisonIds.length,
        signalsInHistories: signals,
        distinctSignals,
        repeatedSignals: signals - distinctSignals,
      },
      metering: {
        hour: lastHour.toISOString(),
        run: meteringOutcome,
        batchMeterUsage: batch,
      },
      platform: {
        toDelete: toDelete.size,
        stopCalls: callsOn('stop').length,
        deleteCalls: callsOn('delete').length,
        redundantDeleteCalls: callsOn('delete').filter((c) => c.outcome !== 'deleted').length,
        listCalls: callsOn('list').length,
      },
      checks,
    };
    console.log(JSON.stringify(report, null, 2));
    console.log(
      ok
        ? 'PASS: every link, notification, metering record and due deletion exactly once under the faults; queues drained; dead letters = poison'
        : `FAIL: ${settled ? '' : 'the system did not settle in time; '}${Object.entries(checks)
            .filter(([, c]) => !c.ok)
            .map(([name, c]) => `${name} ${c.actual}/${c.expected}`)
            .join(', ')}`,
    );
    if (!ok) console.log(`--- stack output (last lines) ---\n${stack.output().split('\n').slice(-40).join('\n')}`);
    exitCode = ok ? 0 : 1;
  } finally {
    // Bounded: a client of a store that no longer answers must not keep the stack from being stopped.
    const closing = (what: string, close?: () => Promise<unknown>) =>
      close ? beforeDeadline(close(), Date.now() + 5000, what).catch(() => undefined) : undefined;
    await closing('temporal', temporal && (() => temporal!.connection.close()));
    for (const [what, handle] of [
      ['store', service],
      ['sandbox store', sandboxDb],
      ['probe', probe],
    ] as const)
      await closing(what, handle && (() => handle.close()));
    sqs.destroy();
    sns.destroy();
    const code = await stackStop(stack, exitCode !== 0);
    if (exitCode !== 0) console.log(`the run's logs and data are kept in ${stack.dir}`);
    if (code !== 0) console.log(`the stack exited with ${code} on SIGINT`);
    await platform.close();
  }
  process.exit(exitCode);
}

async function stackStop(stack: ClusterStack, keep: boolean) {
  return stack.stop(keep).catch((error: Error) => error.message);
}

main().catch((error: unknown) => {
  console.error(error);
  console.log('FAIL: the run did not complete');
  process.exit(1);
});
