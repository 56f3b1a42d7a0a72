/**
 * ops/: every metric the alert rules and the Grafana dashboard use exists on a
 * running stack (the built worker and poller, scraped over HTTP after the work
 * that feeds them), every rule is well-formed and points at its runbook, and
 * the scrape config matches the local stack.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { parser } from '@prometheus-io/lezer-promql';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { createSqsClient } from '../lib/aws';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { meteringHoursOf } from '../lib/store/metering-ledger';
import { connectClient } from '../lib/temporal';
import { freePort, type ManagedProcess } from '../infra/processes';
import { ensureLocalAwsResources, type LocalAwsResources } from '../infra/servers';
import { DEAD_LETTER_REASONS } from '../poller/metrics';
import { rawMessageBody, syntheticCustomer } from '../sandbox/notification-bodies';
import { ATTENTION_REASONS, WORKFLOW_COUNTERS } from '../workflows/common/metrics';
import type { hourlyMetering, MeteringProgress } from '../workflows/metering/hourly-metering';
import { scrape, seriesValue, startBuilt } from './helpers/built-processes';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

const root = join(__dirname, '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const HOUR_MS = 3_600_000;

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (
  parseYaml(read('ops/prometheus/alerts.yml')) as { groups: Array<{ name: string; rules: AlertRule[] }> }
).groups.flatMap((group) => group.rules);
const dashboard = JSON.parse(read('ops/grafana/marketplace-billing.json')) as {
  panels: Array<{ id: number; title: string; type: string; targets?: Array<{ expr: string }> }>;
};
// Grafana substitutes its interval variable before Prometheus sees the query.
const dashboardExprs = dashboard.panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => target.expr.replaceAll('$__rate_interval', '5m')),
);

/** The metric names a PromQL expression selects, parsed with Prometheus's own grammar; throws on a syntax error. */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) errors.push(`at ${node.from}: "${expr.slice(node.from, node.from + 20)}"`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector')
        names.add(expr.slice(node.from, node.to));
    },
  });
  if (errors.length > 0) throw new Error(`not PromQL: ${expr} (${errors.join('; ')})`);
  return [...names];
}

/** Metric names with at least one sample in a Prometheus text exposition. */
function sampled(exposition: string): Set<string> {
  return new Set(
    exposition
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.split(/[{ ]/)[0]!),
  );
}

/** Made by Prometheus itself for every target, never by a process. */
const PROMETHEUS_MADE = new Set(['up']);

let mongo: MongoHandle;
let aws: LocalAwsResources;
let sqs: SQSClient;
let temporal: Client;
let worker: ManagedProcess;
let poller: ManagedProcess;
let workerPort: number;
let pollerPort: number;
const taskQueue = uniqueName('ops');

beforeAll(async () => {
  mongo = await connectMongo(testServers.mongoUri(), uniqueName('ops'));
  await ensureIndexes(mongo.db);
  aws = await ensureLocalAwsResources({
    endpoint: testServers.awsEndpoint(),
    region: 'us-east-1',
    queueName: uniqueName('ops'),
    productCode: uniqueName('prod'),
  });
  sqs = createSqsClient(testServers.aws());
  temporal = await connectClient(testServers.temporal(taskQueue));
  [workerPort, pollerPort] = await Promise.all([freePort(), freePort()]);
  const common = {
    MONGODB_DATABASE: mongo.db.databaseName,
    TEMPORAL_TASK_QUEUE: taskQueue,
    AWS_ENDPOINT_URL_SQS: testServers.awsEndpoint(),
  };
  [worker, poller] = await Promise.all([
    startBuilt(
      'worker',
      {
        ...common,
        WORKER_METRICS_PORT: String(workerPort),
        // Schedules are per namespace, which the test files share; this test starts its runs itself.
        METERING_SCHEDULE: 'false',
        RETENTION_SCHEDULE: 'false',
        // No customer is linked here, so metering never calls it.
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: 'http://127.0.0.1:9',
      },
      workerPort,
    ),
    // Raw deliveries too, so that a notification can be handed off without a signing certificate.
    startBuilt(
      'poller',
      {
        ...common,
        SQS_QUEUE_URL: aws.queueUrl,
        SQS_QUEUE_FORMATS: 'sns,sns-raw',
        SQS_WAIT_TIME_SECONDS: '1',
        SNS_TOPIC_ARN: aws.topicArn,
        POLLER_METRICS_PORT: String(pollerPort),
      },
      pollerPort,
    ),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([worker?.stop(), poller?.stop()]);
  sqs?.destroy();
  await temporal?.connection.close();
  await mongo?.db.dropDatabase();
  await mongo?.close();
});

describe('the running worker and poller', () => {
  it('serve the SDK metrics next to the workflows’ counters, each counter at zero before anything happened', async () => {
    // The runtime serves the endpoint first; the SDK's worker metrics follow once it polls.
    const text = await eventually(
      () => scrape(workerPort),
      (exposition) => sampled(exposition).has('temporal_num_pollers'),
    );
    expect([...sampled(text)].filter((name) => name.startsWith('temporal_'))).toEqual(
      expect.arrayContaining(['temporal_request', 'temporal_num_pollers', 'temporal_worker_start']),
    );
    const tags = { namespace: testServers.temporal().namespace, taskQueue };
    for (const reason of ATTENTION_REASONS) {
      expect(
        seriesValue(text, 'subscription_attention_needed', { ...tags, workflowType: 'subscription', reason }),
      ).toBe(0);
    }
    for (const counter of [
      WORKFLOW_COUNTERS.meteringHoursCompleted,
      WORKFLOW_COUNTERS.meteringHoursFailed,
      WORKFLOW_COUNTERS.meteringHoursMissed,
    ]) {
      expect(seriesValue(text, counter.name, { ...tags, workflowType: 'hourlyMetering' })).toBe(0);
    }
  });

  it('serve the poller’s dead-letter and verification series at zero before the first message', async () => {
    const text = await scrape(pollerPort);
    for (const reason of DEAD_LETTER_REASONS)
      expect(seriesValue(text, 'marketplace_notifications_dead_lettered_total', { reason })).toBe(0);
    for (const check of ['format', 'topic', 'signature'])
      expect(seriesValue(text, 'marketplace_notifications_verification_failed_total', { check })).toBe(0);
  });

  it('count missed, completed and failed metering hours where the alerts look for them', async () => {
    // The service first metered 10 hours ago and nothing since: the hours past the 6-hour window are missed.
    const lastClosed = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
    await meteringHoursOf(mongo.db).insertOne({
      _id: new Date(lastClosed - 10 * HOUR_MS).toISOString(),
      state: 'complete',
      customers: 0,
      records: 0,
      conflicts: 0,
      notSubscribed: 0,
      at: new Date(),
    });
    const catchUp = temporal.workflow.execute<typeof hourlyMetering>('hourlyMetering', {
      taskQueue,
      workflowId: uniqueName('metering'),
      args: [{}],
    });
    const failure = await catchUp.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('HoursMissed');
    const progress = cause.details![0] as MeteringProgress;
    expect(progress.missed.length).toBeGreaterThan(0);
    expect(progress.hoursDone.length).toBeGreaterThan(0);

    // An hour past the window, asked for by an operator: it cannot be finished, and says so.
    const tooOld = new Date(lastClosed - 8 * HOUR_MS).toISOString();
    const rerun = await temporal.workflow.execute<typeof hourlyMetering>('hourlyMetering', {
      taskQueue,
      workflowId: uniqueName('metering'),
      args: [{ hours: [tooOld] }],
    });
    expect(rerun.failed).toEqual([{ hour: tooOld, reason: expect.stringContaining("outside AWS's 6-hour window") }]);

    const tags = { taskQueue, workflowType: 'hourlyMetering' };
    await eventually(
      () => scrape(workerPort),
      (text) => seriesValue(text, 'metering_hours_failed', tags) === 1,
    );
    const text = await scrape(workerPort);
    expect(seriesValue(text, 'metering_hours_missed', tags)).toBe(progress.missed.length);
    expect(seriesValue(text, 'metering_hours_completed', tags)).toBe(progress.hoursDone.length);
    expect(
      seriesValue(text, 'temporal_workflow_failed', { task_queue: taskQueue, workflow_type: 'hourlyMetering' }),
    ).toBe(1);
  });

  it('count a workflow task the deployed code cannot run (as after a deploy that dropped a workflow)', async () => {
    const handle = await temporal.workflow.start('workflowNoLongerDeployed', {
      taskQueue,
      workflowId: uniqueName('gone'),
      args: [],
    });
    try {
      await eventually(
        () => scrape(workerPort),
        (text) =>
          (seriesValue(text, 'temporal_workflow_task_execution_failed', {
            task_queue: taskQueue,
            workflow_type: 'workflowNoLongerDeployed',
          }) ?? 0) > 0,
      );
    } finally {
      await handle.terminate('test over');
    }
  });

  it('count a notification handed off, and a message of no format the queue carries refused and dead-lettered', async () => {
    const customer = syntheticCustomer(Math.floor(Math.random() * 1e9), uniqueName('prod'));
    await sqs.send(
      new SendMessageCommand({ QueueUrl: aws.queueUrl, MessageBody: rawMessageBody(customer, 'subscribe-success') }),
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: aws.queueUrl, MessageBody: 'not a notification' }));
    const text = await eventually(
      () => scrape(pollerPort),
      (exposition) =>
        seriesValue(exposition, 'marketplace_notifications_dead_lettered_total', { reason: 'untrusted' }) === 1,
    );
    expect(seriesValue(text, 'marketplace_notifications_verification_failed_total', { check: 'format' })).toBe(1);
    await eventually(
      () => scrape(pollerPort),
      (exposition) =>
        seriesValue(exposition, 'marketplace_notifications_handed_off_total', { action: 'subscribe-success' }) === 1,
    );
  });

  it('export every metric that an alert rule or a dashboard panel uses', async () => {
    const exported = new Set([...sampled(await scrape(workerPort)), ...sampled(await scrape(pollerPort))]);
    const used = new Map<string, string>();
    for (const rule of rules) for (const name of metricNames(rule.expr)) used.set(name, `alert ${rule.alert}`);
    for (const expr of dashboardExprs) for (const name of metricNames(expr)) used.set(name, `dashboard: ${expr}`);
    const missing = [...used]
      .filter(([name]) => !exported.has(name) && !PROMETHEUS_MADE.has(name))
      .map(([name, where]) => `${name} (${where})`);
    expect(missing).toEqual([]);
    // The checks above are not vacuous: both processes' metrics are in use.
    expect([...used.keys()]).toEqual(
      expect.arrayContaining([
        'temporal_workflow_task_execution_failed',
        'metering_hours_missed',
        'subscription_attention_needed',
        'marketplace_notifications_dead_lettered_total',
      ]),
    );
  });
});

describe('ops/prometheus/alerts.yml', () => {
  const readme = read('README.md');
  const runbook = readme.slice(readme.indexOf('\n## Runbook'));

  it.each(rules.map((rule) => [rule.alert, rule] as const))(
    '%s is valid PromQL with a duration, a severity and a runbook section',
    (name, rule) => {
      expect(metricNames(rule.expr).length).toBeGreaterThan(0);
      expect(rule.for).toMatch(/^[0-9]+[smh]$/);
      expect(['critical', 'warning']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      expect(rule.annotations?.runbook_url).toBe(`README.md#${name.toLowerCase()}`);
      expect(runbook).toContain(`\n### ${name}\n`);
    },
  );

  it('names each alert once and covers what operators must hear about', () => {
    const names = rules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    const exprs = rules.map((rule) => rule.expr).join('\n');
    for (const reason of ATTENTION_REASONS) expect(exprs).toContain(`reason="${reason}"`);
    for (const metric of [
      'temporal_workflow_task_execution_failed',
      'metering_hours_missed',
      'metering_hours_failed',
      'marketplace_notifications_dead_lettered_total',
      'marketplace_notifications_verification_failed_total',
    ]) {
      expect(exprs).toContain(metric);
    }
  });

  it('rejects an expression that is not PromQL (the check above has teeth)', () => {
    expect(() => metricNames('sum(rate(metering_hours_missed[5m])')).toThrow(/not PromQL/);
  });
});

describe('ops/prometheus/prometheus.yml', () => {
  it('scrapes the local stack’s poller and worker under the job names the alerts use, and loads the rules', () => {
    const config = parseYaml(read('ops/prometheus/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const localEnv = Object.fromEntries(
      read('infra/local.env')
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => line.split('=') as [string, string]),
    );
    const targets = Object.fromEntries(
      config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((each) => each.targets)]),
    );
    expect(targets).toEqual({
      'marketplace-poller': [`127.0.0.1:${localEnv.POLLER_METRICS_PORT}`],
      'marketplace-worker': [`127.0.0.1:${localEnv.WORKER_METRICS_PORT}`],
    });
    expect(config.rule_files).toEqual(['alerts.yml']);
    const jobsInAlerts = rules.flatMap((rule) => [...rule.expr.matchAll(/job="([^"]+)"/g)].map((match) => match[1]));
    expect(new Set(jobsInAlerts)).toEqual(new Set(Object.keys(targets)));
  });
});

describe('ops/grafana/marketplace-billing.json', () => {
  it('is a dashboard whose every query is PromQL on the chosen Prometheus', () => {
    expect(dashboardExprs.length).toBeGreaterThan(10);
    for (const expr of dashboardExprs) expect(metricNames(expr).length).toBeGreaterThan(0);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels.filter((each) => each.type !== 'row')) {
      expect(panel).toMatchObject({ datasource: { type: 'prometheus', uid: '${datasource}' } });
    }
  });
});
