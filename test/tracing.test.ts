/**
 * OpenTelemetry traces from the built API, worker and poller, switched on with
 * the standard variables and sent over OTLP/HTTP (JSON) to a collector of ours:
 * one buyer's link request is one trace from the API's server span through the
 * Temporal update into the workflow and its activity on the worker; one AWS
 * notification is one trace from the poller's message span into the workflow's
 * signal handler. Off (the default), no OpenTelemetry module is loaded at all.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createSnsClient, createSqsClient } from '../lib/aws';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { ensureIndexes } from '../lib/store/indexes';
import { freePort, type ManagedProcess } from '../infra/processes';
import { ensureLocalAwsResources } from '../infra/servers';
import { REGISTRATION_PATH } from '../api/routes/linking/registration';
import { Browser } from './helpers/api';
import { scrape, startBuilt } from './helpers/built-processes';
import { linkNewBuyer } from './helpers/buyer';
import { startSandbox, type RunningSandbox } from './helpers/sandbox';
import { testServers, uniqueName } from './helpers/test-env';
import { eventually } from './helpers/time-skipping';

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

const SERVER = 2;
const CONSUMER = 5;

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: Array<{
      spans: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
      }>;
    }>;
  }>;
}

const valueOf = (value: OtlpValue) => value.stringValue ?? value.intValue ?? value.boolValue;
const attributesOf = (list: OtlpAttribute[] = []) =>
  Object.fromEntries(list.map(({ key, value }) => [key, valueOf(value)]));

/** A collector of our own: OTLP/HTTP with JSON bodies on /v1/traces, every span kept. */
async function startCollector(): Promise<{
  url: string;
  spans: ReceivedSpan[];
  requests: string[];
  close(): Promise<void>;
}> {
  const spans: ReceivedSpan[] = [];
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push(`${request.method} ${request.url} ${request.headers['content-type']}`);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const resourceSpans of body.resourceSpans) {
        const service = String(attributesOf(resourceSpans.resource.attributes)['service.name']);
        for (const span of resourceSpans.scopeSpans.flatMap((scope) => scope.spans)) {
          spans.push({
            service,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId || undefined,
            name: span.name,
            kind: span.kind,
            attributes: attributesOf(span.attributes),
          });
        }
      }
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let collector: Awaited<ReturnType<typeof startCollector>>;
let mongo: MongoHandle;
let sandbox: RunningSandbox;
let processes: ManagedProcess[] = [];
let apiUrl: string;
const disposers: Array<() => void> = [];

beforeAll(async () => {
  collector = await startCollector();
  mongo = await connectMongo(testServers.mongoUri(), uniqueName('tracing'));
  await ensureIndexes(mongo.db);
  const productCode = uniqueName('prod');
  const awsConfig = testServers.aws();
  const aws = await ensureLocalAwsResources({
    endpoint: testServers.awsEndpoint(),
    region: awsConfig.region,
    queueName: uniqueName('tracing'),
    productCode,
  });
  const sqs = createSqsClient(awsConfig);
  const sns = createSnsClient(awsConfig);
  disposers.push(
    () => sqs.destroy(),
    () => sns.destroy(),
  );
  const [apiPort, workerPort, pollerPort] = await Promise.all([freePort(), freePort(), freePort()]);
  apiUrl = `http://127.0.0.1:${apiPort}`;
  sandbox = await startSandbox({
    productCode,
    sns,
    snsTopicArn: aws.topicArn,
    sqs,
    eventBridgeQueueUrl: aws.eventBridgeQueueUrl,
    registrationUrl: `${apiUrl}${REGISTRATION_PATH}`,
  });
  const common = {
    MONGODB_DATABASE: mongo.db.databaseName,
    TEMPORAL_TASK_QUEUE: uniqueName('tracing'),
    AWS_ENDPOINT_URL_SQS: testServers.awsEndpoint(),
    AWS_ENDPOINT_URL_SNS: testServers.awsEndpoint(),
    AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandbox.url,
    // Only the standard variables switch tracing on and say where spans go.
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  processes = await Promise.all([
    startBuilt(
      'worker',
      { ...common, WORKER_METRICS_PORT: String(workerPort), METERING_SCHEDULE: 'false', RETENTION_SCHEDULE: 'false' },
      workerPort,
    ),
    startBuilt(
      'poller',
      {
        ...common,
        SQS_QUEUE_URL: aws.queueUrl,
        SQS_EVENTBRIDGE_QUEUE_URL: aws.eventBridgeQueueUrl,
        SQS_WAIT_TIME_SECONDS: '1',
        SNS_TOPIC_ARN: aws.topicArn,
        SNS_TRUSTED_CERT_URLS: sandbox.certUrl,
        POLLER_METRICS_PORT: String(pollerPort),
      },
      pollerPort,
    ),
    startBuilt(
      'api',
      {
        ...common,
        API_HOST: '127.0.0.1',
        API_PORT: String(apiPort),
        PUBLIC_BASE_URL: apiUrl,
        DEMO_ACCOUNTS: 'true',
        SESSION_SIGNING_KEY: randomBytes(48).toString('base64url'),
      },
      apiPort,
    ),
  ]);
  // The worker's runtime serves metrics before its workflow bundle is built; the buyer must not wait on that.
  await eventually(
    () => scrape(workerPort),
    (text) => text.includes('temporal_num_pollers{'),
    1200,
  );
}, 120_000);

afterAll(async () => {
  // SIGTERM flushes each process's last spans.
  await Promise.all(processes.map((each) => each.stop()));
  await sandbox?.close();
  disposers.forEach((dispose) => dispose());
  await mongo?.db.dropDatabase();
  await mongo?.close();
  await collector?.close();
});

const inTrace = (traceId: string) => collector.spans.filter((span) => span.traceId === traceId);
const named = (spans: ReceivedSpan[], name: string, service: string) => {
  const found = spans.filter((span) => span.name === name && span.service === service);
  if (found.length !== 1)
    throw new Error(
      `${found.length} spans ${name} from ${service} in ${JSON.stringify(spans.map((span) => `${span.service} ${span.name}`))}`,
    );
  return found[0]!;
};

describe('tracing switched on with OTEL_TRACES_EXPORTER=otlp', () => {
  it('follows a buyer’s link request from the API through the workflow into its activity: one trace', async () => {
    const buyer = await linkNewBuyer({ mongo, sandbox, api: { url: apiUrl } });
    expect(buyer.accountId).toBeTruthy();
    const linkRequest = await eventually(
      () =>
        Promise.resolve(
          collector.spans.find(
            (span) =>
              span.service === 'marketplace-api' &&
              span.kind === SERVER &&
              span.attributes['http.target'] === '/api/links',
          ),
        ),
      Boolean,
      400,
    );
    const trace = () => inTrace(linkRequest!.traceId);
    // The workflow's spans reach the collector through the worker once the activity's result is back in the workflow.
    await eventually(
      () => Promise.resolve(trace()),
      (spans) =>
        spans.some((span) => span.name === 'RunActivity:claimSubscription') &&
        spans.some((span) => span.name === 'StartActivity:claimSubscription'),
      400,
    );
    const spans = trace();
    expect(linkRequest!.parentSpanId).toBeUndefined();
    const update = named(spans, 'UpdateWithStartWorkflow:requestLink', 'marketplace-api');
    expect(update.parentSpanId).toBe(linkRequest!.spanId);
    const handler = named(spans, 'HandleUpdate:requestLink', 'marketplace-worker');
    expect(handler.parentSpanId).toBe(update.spanId);
    const scheduled = named(spans, 'StartActivity:claimSubscription', 'marketplace-worker');
    const ran = named(spans, 'RunActivity:claimSubscription', 'marketplace-worker');
    expect(ran.parentSpanId).toBe(scheduled.spanId);
    expect(ran.attributes).toMatchObject({ temporalWorkflowId: expect.stringMatching(/^subscription:/) });
    // The run that scheduled it is the one the request started (its own span ends with the workflow).
    expect(scheduled.parentSpanId).toBeDefined();
  });

  it('follows an AWS notification from the poller’s message span into the workflow’s signal handler', async () => {
    // A buyer registers (so the poller hands their notifications to a workflow), then AWS says subscribe-success.
    const created = await sandbox.control<{ customer: { _id: string }; token: string }>(
      'POST',
      '/control/customers',
      {},
    );
    expect(
      (await new Browser(apiUrl).postForm(REGISTRATION_PATH, { 'x-amzn-marketplace-token': created.body.token }))
        .status,
    ).toBe(303);
    const before = new Set(collector.spans.map((span) => span.spanId));
    await sandbox.control('POST', `/control/customers/${created.body.customer._id}/notifications`, {
      action: 'subscribe-success',
    });
    const signalled = await eventually(
      () =>
        Promise.resolve(
          collector.spans.filter(
            (span) =>
              !before.has(span.spanId) &&
              span.service === 'marketplace-poller' &&
              span.name === 'SignalWithStartWorkflow:subscription',
          ),
        ),
      (spans) => spans.length > 0,
      400,
    );
    // The message span ends (and is exported) only after the message is settled, after its child.
    const message = (await eventually(
      () => Promise.resolve(collector.spans.find((span) => span.spanId === signalled[0]!.parentSpanId)),
      (span) => span !== undefined,
      400,
    ))!;
    expect(message).toMatchObject({
      service: 'marketplace-poller',
      kind: CONSUMER,
      attributes: { 'messaging.system': 'aws_sqs', 'marketplace.settled': 'handed-off' },
    });
    expect(message.parentSpanId).toBeUndefined();
    await eventually(
      () => Promise.resolve(inTrace(message.traceId)),
      (spans) => spans.some((span) => span.name === 'HandleSignal:awsEvent'),
      400,
    );
    expect(named(inTrace(message.traceId), 'HandleSignal:awsEvent', 'marketplace-worker').parentSpanId).toBe(
      signalled[0]!.spanId,
    );
  });

  it('leaves the load balancer’s probes out, and sends OTLP/HTTP JSON to the standard path', async () => {
    expect((await fetch(`${apiUrl}/health`)).status).toBe(200);
    expect((await fetch(`${apiUrl}/openapi.json`)).status).toBe(200);
    await eventually(
      () => Promise.resolve(collector.spans.some((span) => span.attributes['http.target'] === '/openapi.json')),
      Boolean,
      400,
    );
    expect(collector.spans.filter((span) => span.attributes['http.target'] === '/health')).toEqual([]);
    expect(new Set(collector.requests)).toEqual(new Set(['POST /v1/traces application/json']));
  });
});

describe('tracing off (the default)', () => {
  it('loads no OpenTelemetry module', () => {
    const probe = `
      const { loadApiConfig } = require('./dist/api/config');
      const { startTracing } = require('./dist/lib/telemetry/tracing');
      startTracing(loadApiConfig({}).tracing, 'marketplace-api', { http: true }).then((tracing) => {
        const loaded = Object.keys(require.cache).filter((path) => path.includes('@opentelemetry') || path.includes('interceptors-opentelemetry') || path.includes('tracing-sdk'));
        console.log(JSON.stringify({ tracing: tracing === undefined ? 'off' : 'on', loaded }));
      });`;
    const root = join(__dirname, '..');
    const run = spawnSync(join(root, 'node_modules', '.bin', 'node'), ['-e', probe], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ tracing: 'off', loaded: [] });
  });
});
