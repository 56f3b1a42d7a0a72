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
 *     no answer) is retried a second later; the time from a step's first
 *     failure to its success is the buyer's stall.
 *  2. Notifications: a third of the buyers get unsubscribe-pending (final
 *     metering), then unsubscribe-success; a third unsubscribe-success alone;
 *     a third keep paying. Every fourth gets subscribe-success twice (two
 *     messages), every other one a signed envelope of its own delivered twice
 *     (one message id, two copies). Poison (bodies that are not JSON, and
 *     unsigned envelopes) goes on the queue at random moments.
 *     Each buyer has deployments on the platform: a trial, a production one,
 *     every other one a staging one, every third an old one somebody else
 *     stopped. A cancellation stops all but the trial and, after the grace
 *     period, deletes what it stopped.
 *  3. A metering hour: --metered customers, subscribed in the sandbox and
 *     linked in the store, nine in ten with usage in the last closed hour, are
 *     metered by an hourlyMetering workflow started a quarter into the run.
 *
 * Meanwhile it injects faults: SIGKILL of a random replica of the api, the
 * worker and the poller, --kills times each at random moments (never both
 * replicas of one kind down at once); SIGKILL of the Temporal server; the
 * store stopped for 30 s (SIGSTOP of FerretDB, then SIGCONT: a store that
 * hangs with its connections open, the harder case for clients, whose
 * requests time out instead of being refused; a killed FerretDB would just be
 * restarted by the supervisor within a second or two); and SIGINT of
 * PostgreSQL (its fast shutdown), restarted by the supervisor.
 *
 * Then, once the faults are over, it waits (at most --settle seconds) for
 * every journey, the metering run, every due deletion, empty queues and each
 * buyer's workflow at its expected phase, and checks with exact counts:
 *  - every buyer linked, each platform account linked exactly once, paying
 *    accounts on `aws-marketplace`, cancelled ones back to `none`;
 *  - every notification recorded once (one record per distinct message id,
 *    none else), and applied once by its workflow (its state's history holds
 *    each id exactly once); signals repeated by a poller killed between its
 *    signal and its record (docs/adr/0002) are reported, not failed;
 *  - every metering record accepted exactly once by the sandbox, with the
 *    quantity that was used, the final metering of the leaving buyers
 *    included, 0 DuplicateRecord and 0 CustomerNotSubscribed;
 *  - every deployment a cancellation stopped deleted exactly once, nothing
 *    else touched (trials, deployments somebody else stopped, any call at all
 *    on a paying customer's);
 *  - no message left in the main queues, and the dead-letter queue holding
 *    exactly the poison injected.
 * It prints a JSON report (kills, outages with their times, each count
 * expected and actual, the longest stall) and PASS or FAIL (exit code 1).
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
import { connectMongo } from '../lib/mongo';
import { hashPassword } from '../lib/passwords';
import { accountsOf } from '../lib/store/accounts';
import { DEMO_PASSWORD } from '../lib/store/demo-accounts';
import { customerKey, marketplaceLinksOf, notificationsOf } from '../lib/store/marketplace';
import { meteringHoursOf } from '../lib/store/metering-ledger';
import { subscriptionsOf } from '../lib/store/subscriptions';
import { HOUR_MS, hourStart, usageOf } from '../lib/store/usage';
import { connectClient } from '../lib/temporal';
import { snsEnvelopeBody } from '../sandbox/notification-bodies';
import { snsMessage } from '../sandbox/notifications';
import { ensureSigningKey, SIGNING_CERT_PATH } from '../sandbox/sns-signing';
import type { SandboxCustomer } from '../sandbox/store';
import { hourlyMetering } from '../workflows/metering/hourly-metering';
import { buyerJourney, sandboxControl, type BuyerPlan, type JourneyResult } from './chaos-buyer';
import { commandOf, isAlive, startClusterStack, type ClusterStack } from './chaos-stack';
import { startRecordingPlatform, type PlatformDeployment } from './recording-platform';

const NAMESPACE = 'marketplace';
const TASK_QUEUE = 'marketplace-billing';
const DATABASE = 'marketplace_billing';
const SANDBOX_DATABASE = 'marketplace_sandbox';
const REGION = 'us-east-1';
const STORE_OUTAGE_MS = 30_000;
const DAY_MS = 86_400_000;
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
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
const random = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

function deploymentsFor(index: number, accountId: string): PlatformDeployment[] {
  const deployment = (name: string, plan: 'trial' | 'standard', state: 'running' | 'stopped') => ({
    id: `${accountId}-${name}`,
    accountId,
    name,
    plan,
    state,
  });
  return [
    { ...deployment('trial', 'trial', 'running'), trialEndsAt: new Date(Date.now() + 7 * DAY_MS).toISOString() },
    deployment('prod', 'standard', 'running'),
    ...(index % 2 === 0 ? [deployment('staging', 'standard', 'running')] : []),
    ...(index % 3 === 0 ? [{ ...deployment('old', 'standard', 'stopped'), stoppedBy: 'platform:maintenance' }] : []),
  ];
}

/** Retries a call to Temporal while the server is down or restarting. */
async function withTemporal<T>(what: string, call: () => Promise<T>, deadline: number): Promise<T> {
  for (;;) {
    try {
      return await call();
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
  const allDeployments = accountIds.flatMap((id, i) => deploymentsFor(i, id));
  const platform = await startRecordingPlatform(allDeployments, platformToken);
  console.log(
    `chaos: ${opts.durationS} s, K=${opts.kills} kills per process, ${opts.buyers} buyers, ${opts.metered} metered customers, grace ${opts.graceS} s`,
  );
  console.log('starting the cluster stack…');
  const stack = await startClusterStack({
    CANCELLATION_GRACE_SECONDS: String(opts.graceS),
    DEPLOYMENTS_API_URL: platform.url,
    DEPLOYMENTS_API_TOKEN: platformToken,
    METERING_SCHEDULE: 'false',
    METERING_RATE_PER_SECOND: String(opts.meteringRate),
    RATE_LIMIT_REGISTRATION_PER_MINUTE: '100000',
    RATE_LIMIT_SIGN_IN_PER_MINUTE: '100000',
    RATE_LIMIT_LINKS_PER_MINUTE: '100000',
    LOG_LEVEL: 'warn',
  });
  const startupSeconds = seconds(Date.now() - wallStarted);
  console.log(`the stack is up after ${startupSeconds} s`);
  const { ports } = stack;
  const lb = `http://127.0.0.1:${ports.api}`;
  const sandboxUrl = `http://127.0.0.1:${ports.sandbox}`;
  const control = sandboxControl(sandboxUrl);
  const mongoUri = `mongodb://127.0.0.1:${ports.mongo}/`;
  const service = await connectMongo(mongoUri, DATABASE);
  const sandboxDb = await connectMongo(mongoUri, SANDBOX_DATABASE);
  const aws = {
    region: REGION,
    endpoints: { sqs: `http://127.0.0.1:${ports.moto}`, sns: `http://127.0.0.1:${ports.moto}` },
  };
  const sqs = createSqsClient(aws);
  const sns = createSnsClient(aws);
  let temporal: Client | undefined;
  let exitCode = 1;
  try {
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
    await accountsOf(service.db).insertMany(
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
      await marketplaceLinksOf(service.db).insertMany(metered.map((m) => meteredLinkOf(m.customer)));
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
      if (usage.length > 0) await usageOf(service.db).insertMany(usage);
    }
    // Only the last closed hour is due: the 30 before it, and the current and next ones (the run may cross an
    // hour), count as metered, so the run meters exactly one hour and nothing else meters the buyers' hours.
    const notDue = Array.from({ length: 34 }, (_, i) => new Date(lastHour.getTime() - (i - 3) * HOUR_MS))
      .filter((h) => h.getTime() !== lastHour.getTime())
      .map((h) => h.toISOString());
    await meteringHoursOf(service.db).bulkWrite(
      notDue.map((h) => ({
        updateOne: {
          filter: { _id: h },
          update: {
            $set: {
              state: 'complete' as const,
              customers: 0,
              records: 0,
              conflicts: 0,
              notSubscribed: 0,
              at: new Date(),
            },
          },
          upsert: true,
        },
      })),
    );
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
    const up = (name: string) => {
      const pid = stack.pidOf(name);
      return pid !== undefined && isAlive(pid) && commandOf(pid) !== '';
    };
    const waitBack = async (name: string, restartsBefore: number, sentAt: number, record: FaultRecord) => {
      while (stack.restartsOf(name) <= restartsBefore && Date.now() < settleDeadline) await sleep(200);
      if (stack.restartsOf(name) > restartsBefore) record.backAfterSeconds = seconds(Date.now() - sentAt);
    };
    const signal = (name: string, sig: NodeJS.Signals, kind: FaultRecord['kind'], expect: RegExp) => {
      const pid = stack.pidOf(name);
      const record: FaultRecord = { kind, target: name, pid: pid ?? 0, signal: sig, atSeconds: at(Date.now()) };
      faults.push(record);
      if (!pid || !isAlive(pid) || !expect.test(commandOf(pid))) {
        record.skipped = `no live ${name} process (pid ${pid}, command '${pid ? commandOf(pid) : ''}')`;
        return undefined;
      }
      const restartsBefore = stack.restartsOf(name);
      process.kill(pid, sig);
      return { record, restartsBefore, sentAt: Date.now() };
    };
    const killReplica = async (kind: 'api' | 'worker' | 'poller', whenMs: number) => {
      await until(whenMs);
      // Never both replicas of one kind down at once: wait (bounded) until both are up.
      const names = [`${kind}-1`, `${kind}-2`];
      const waitStart = Date.now();
      while (!names.every(up) && Date.now() - waitStart < 120_000) await sleep(250);
      const name = names[Math.floor(Math.random() * 2)]!;
      const sent = signal(name, 'SIGKILL', 'kill', SCRIPT_OF[kind]);
      if (!sent) return;
      kills[kind]!.count++;
      kills[kind]!.replicas.push(name);
      kills[kind]!.atSeconds.push(sent.record.atSeconds);
      await waitBack(name, sent.restartsBefore, sent.sentAt, sent.record);
    };
    const faultTasks: Array<Promise<void>> = [];
    for (const kind of ['api', 'worker', 'poller'] as const)
      for (let k = 0; k < opts.kills; k++) faultTasks.push(killReplica(kind, random(0.05, 0.9) * durationMs));
    // The store hangs for 30 s.
    faultTasks.push(
      (async () => {
        await until(random(0.12, 0.2) * durationMs);
        const sent = signal('ferretdb', 'SIGSTOP', 'store-stop', /ferretdb/);
        if (!sent) return;
        await sleep(STORE_OUTAGE_MS);
        process.kill(sent.record.pid, 'SIGCONT');
        sent.record.endSeconds = at(Date.now());
      })(),
    );
    faultTasks.push(
      (async () => {
        await until(random(0.4, 0.5) * durationMs);
        const sent = signal('temporal', 'SIGKILL', 'temporal-restart', /temporal/);
        if (sent) await waitBack('temporal', sent.restartsBefore, sent.sentAt, sent.record);
      })(),
    );
    faultTasks.push(
      (async () => {
        await until(random(0.65, 0.75) * durationMs);
        const sent = signal('postgresql', 'SIGINT', 'postgresql-restart', /postgres/);
        if (sent) await waitBack('postgresql', sent.restartsBefore, sent.sentAt, sent.record);
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
      await until(0.25 * durationMs);
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
      const result = await withTemporal(
        'the metering run',
        () => temporal!.workflow.getHandle(meteringId).result() as ReturnType<typeof hourlyMetering>,
        settleDeadline,
      );
      return { result, startedSeconds: at(startedAt), seconds: seconds(Date.now() - startedAt) };
    })();

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
      const sent = await control<{ messageId: string }>(
        'POST',
        `/control/customers/${buyer.plan.sandboxCustomerId}/notifications`,
        { action },
      );
      buyer.messageIds.push(sent.messageId);
      buyer.copiesSent++;
    };
    const afterLink = async (buyer: Buyer) => {
      const i = buyer.plan.index;
      await sleep(random(0, 10_000));
      if (fateOf(i) === 'pending-then-cancel') {
        buyer.pendingSentAt = Date.now();
        await notify(buyer, 'unsubscribe-pending');
        // Final metering happens before AWS's unsubscribe-success, which closes the window.
        for (;;) {
          const saved = await subscriptionsOf(service.db).findOne({ accountId: buyer.plan.accountId });
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
        buyer.copiesSent += buyer.journey.subscribeMessageIds.length;
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
    console.log(`faults over at t=${at(faultsOverAt)} s; settling…`);
    await Promise.all(journeyTasks);
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
    const settleState = { deleted: 0, depth: -1, eventsDepth: -1, atPhase: 0 };
    while (Date.now() < settleDeadline) {
      settleState.deleted = [...toDelete].filter((id) => platform.stateOf(id) === 'deleted').length;
      settleState.depth = await queueDepth(sqs, queues.queueUrl);
      settleState.eventsDepth = await queueDepth(sqs, queues.eventsQueueUrl);
      const saved = await subscriptionsOf(service.db)
        .find({ accountId: { $in: accountIds } }, { projection: { accountId: 1, phase: 1 } })
        .toArray();
      const phaseOf = new Map(saved.map((s) => [s.accountId, s.phase]));
      settleState.atPhase = buyers.filter((b) => phaseOf.get(b.plan.accountId) === expectedPhase(b)).length;
      if (
        settleState.deleted === toDelete.size &&
        settleState.depth === 0 &&
        settleState.eventsDepth === 0 &&
        settleState.atPhase === buyers.length
      ) {
        settled = true;
        break;
      }
      await sleep(2000);
    }
    // Anything repeated late (a retried activity, a redelivered message) would arrive meanwhile.
    await sleep(10_000);
    clearInterval(progress);
    const settledSeconds = seconds(Date.now() - faultsOverAt);
    console.log(`settled: ${settled} (${JSON.stringify(settleState)}) after ${settledSeconds} s; checking…`);

    // --- Checks. ---
    const checks: Record<string, { expected: number; actual: number; ok: boolean; note?: string }> = {};
    const check = (name: string, expected: number, actual: number, note?: string) =>
      (checks[name] = { expected, actual, ok: expected === actual, ...(note ? { note } : {}) });
    const linkedBuyers = buyers.filter((b) => b.journey?.ok);
    check('buyersLinked', buyers.length, linkedBuyers.length);
    check('buyersNotificationsSent', buyers.length, buyers.filter((b) => b.journey?.ok && !b.afterLinkError).length);

    // 1. Links.
    const links = await marketplaceLinksOf(service.db)
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
    const accounts = await accountsOf(service.db)
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
      cancelled.filter((b) => accountOf.get(b.plan.accountId)?.paymentMethod === 'none').length,
    );

    // 2. Notifications: records, and what each workflow applied (its state's history), and the signals it got.
    const expectedIds = new Set(buyers.flatMap((b) => b.messageIds));
    const records = await notificationsOf(service.db)
      .find({}, { projection: { _id: 1 } })
      .toArray();
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
    const sandboxUsage = await sandboxDb.db
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
    // Final metering of each leaving buyer: two records for each hour from its activation to the final metering.
    let finalExpected = 0;
    let finalFromWorkflow = 0;
    for (const b of buyers.filter((x) => fateOf(x.plan.index) === 'pending-then-cancel' && x.finalMeteredSeenAt)) {
      const activatedAt = linksByAccount.get(b.plan.accountId)?.[0]?.activatedAt;
      const from = hourStart(activatedAt ?? b.journey!.linkedAt!).getTime();
      const lo = hourStart(b.pendingSentAt!).getTime();
      const hi = hourStart(b.finalMeteredSeenAt!).getTime();
      if (lo === hi) finalExpected += 2 * ((lo - from) / HOUR_MS + 1);
      else {
        // An hour turned between the notification and its effect: the workflow's own record says which hour it was.
        const record = views.get(b)?.cancellation?.finalMetering;
        finalExpected += record && 'records' in record ? record.records : 0;
        finalFromWorkflow++;
      }
    }
    const buyerCustomerIds = new Set(buyers.map((b) => b.plan.sandboxCustomerId));
    const finalUsage = sandboxUsage.filter((u) => buyerCustomerIds.has(u.customerId));
    check(
      'finalMeteringRecordsAccepted',
      finalExpected,
      finalUsage.length,
      finalFromWorkflow > 0 ? `${finalFromWorkflow} buyer(s) counted from the workflow's record` : undefined,
    );
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
    check('eventsQueueMessagesLeft', 0, await queueDepth(sqs, queues.eventsQueueUrl));
    check('eventsDeadLetters', 0, await queueDepth(sqs, queues.eventsDeadLetterQueueUrl));
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
      settledAfterFaultsSeconds: settledSeconds,
      settled,
      kills,
      outages: faults.filter((f) => f.kind !== 'kill'),
      killDetails: faults.filter((f) => f.kind === 'kill'),
      supervisorRestarts: Object.fromEntries(
        ['api-1', 'api-2', 'worker-1', 'worker-2', 'poller-1', 'poller-2', 'temporal', 'postgresql', 'ferretdb'].map(
          (n) => [n, stack.restartsOf(n)],
        ),
      ),
      buyers: {
        planned: buyers.length,
        linked: linkedBuyers.length,
        failed: buyers.flatMap((b) =>
          b.journey?.error || b.afterLinkError
            ? [{ index: b.plan.index, error: b.journey?.error ?? b.afterLinkError }]
            : [],
        ),
        longestStallMs: longest?.stalledMs ?? 0,
        longestStall: longest ? { buyer: longest.index, steps: longest.steps } : null,
        buyersStalled: journeys.filter((j) => j.stalledMs > 0).length,
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
    await temporal?.connection.close().catch(() => undefined);
    await service.close().catch(() => undefined);
    await sandboxDb.close().catch(() => undefined);
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
  process.exit(1);
});
