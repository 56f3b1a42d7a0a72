/**
 * The cluster mode's Temporal, shaped as production runs it: PostgreSQL from
 * Debian, the Temporal server built from its Go module on it (SQL advanced
 * visibility), configured by the same environment variables as the
 * `temporalio/server` image of docker-compose.yml, its schema and namespace set
 * up by the same scripts compose runs (ops/temporal/setup-*.sh), and its Web UI.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { grpc } from '@temporalio/proto';
import { binaries, repoRoot, temporalSchemaDir, temporalUiRoot } from './paths';
import { freePort, portOpen, reservePorts, startProcess, type ManagedProcess } from './processes';

const run = promisify(execFile);

export interface PostgresSettings {
  port: number;
  user: string;
  password: string;
}

/**
 * A PostgreSQL program of Debian's packages: of the major version the data folder was made with, if it
 * exists (a newer major cannot open it), else of the newest installed. POSTGRES_BIN_DIR overrides.
 */
function postgresBin(program: string, dataDir?: string): string {
  const root = '/usr/lib/postgresql';
  const made =
    dataDir && existsSync(join(dataDir, 'PG_VERSION'))
      ? readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim()
      : undefined;
  const installed = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  const major = made ?? installed.sort((a, b) => Number(b) - Number(a))[0];
  const dir = process.env.POSTGRES_BIN_DIR ?? (major ? join(root, major, 'bin') : undefined);
  if (!dir || !existsSync(join(dir, program)))
    throw new Error(
      made
        ? `PostgreSQL ${made}, which made ${dataDir}, is not installed (install Debian's postgresql-${made}, or move the folder away)`
        : 'PostgreSQL is missing: run infra/install.sh first',
    );
  return join(dir, program);
}

const runningAsRoot = () => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: as root, it runs as the `postgres` user Debian's package creates. */
function asPostgresUser(command: string, args: string[]): { command: string; args: string[] } {
  if (!runningAsRoot()) return { command, args };
  return {
    command: 'setpriv',
    args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args],
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Creates the cluster's database files once, with a password-protected superuser; a second call does
 * nothing. initdb writes into `<dataDir>.init`, which becomes the data folder only when it succeeded: a run
 * stopped half-way leaves no half-made data folder, and the next start begins again.
 */
async function initPostgres(dataDir: string, settings: PostgresSettings): Promise<void> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0)
    throw new Error(`${dataDir} is not empty and holds no PostgreSQL data (no PG_VERSION): move it away`);
  const work = `${dataDir}.init`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const passwordFile = join(work, 'password');
  const made = join(work, 'data');
  writeFileSync(passwordFile, settings.password, { mode: 0o600, flag: 'wx' });
  try {
    if (runningAsRoot()) {
      const { uid, gid } = await postgresIds();
      chownSync(work, uid, gid);
      chownSync(passwordFile, uid, gid);
      // The postgres user must reach its folder through ours (a temporary folder is private to root).
      for (let dir = dirname(work); dir !== dirname(dir); dir = dirname(dir)) {
        const mode = statSync(dir).mode;
        if ((mode & 0o001) === 0) {
          chmodSync(dir, mode | 0o001);
          console.error(
            `[stack] ${dir}: others may now pass through it (o+x), for PostgreSQL's user to reach its data`,
          );
        }
      }
    }
    const initdb = asPostgresUser(postgresBin('initdb'), [
      '-D',
      made,
      '-U',
      settings.user,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
    ]);
    await run(initdb.command, initdb.args);
    rmSync(dataDir, { recursive: true, force: true });
    renameSync(made, dataDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function startPostgres(
  options: PostgresSettings & { dataDir: string; logDir: string; echo?: boolean },
): Promise<ManagedProcess> {
  await initPostgres(options.dataDir, options);
  const postgres = asPostgresUser(postgresBin('postgres', options.dataDir), [
    '-D',
    options.dataDir,
    '-p',
    String(options.port),
    '-c',
    'listen_addresses=127.0.0.1',
    // TCP on the loopback only: no socket file (its path would be limited to 107 bytes, and nothing uses it).
    '-c',
    'unix_socket_directories=',
    // Two history shards' worth of connections per service, a restart's overlap, and the schema tool.
    '-c',
    'max_connections=200',
  ]);
  return startProcess({
    name: 'postgresql',
    ...postgres,
    onlyEnv: true,
    logFile: join(options.logDir, 'postgresql.log'),
    echo: options.echo,
    stopSignal: 'SIGINT',
    ready: () =>
      run(postgresBin('pg_isready', options.dataDir), ['-q', '-h', '127.0.0.1', '-p', String(options.port)]).then(
        () => true,
        () => false,
      ),
  });
}

/** ops/temporal/setup-schema.sh with the SQL tool built from the server's own module: idempotent. */
export async function setupTemporalSchema(postgres: PostgresSettings): Promise<void> {
  await run('sh', [join(repoRoot, 'ops', 'temporal', 'setup-schema.sh')], {
    env: {
      ...process.env,
      SQL_HOST: '127.0.0.1',
      SQL_PORT: String(postgres.port),
      SQL_USER: postgres.user,
      SQL_PASSWORD: postgres.password,
      TEMPORAL_SQL_TOOL: binaries.temporalSqlTool,
      TEMPORAL_SCHEMA_DIR: temporalSchemaDir,
    },
  });
}

/**
 * The server's configuration, as the variables of its embedded template: the
 * same names docker-compose.yml gives the `temporalio/server` image (its
 * consistency test compares them). Every service listens on the loopback only.
 */
export function temporalServerEnv(options: {
  postgres: PostgresSettings;
  postgresHost: string;
  dynamicConfigFile: string;
  ports: Record<TemporalServerPort, number>;
}): Record<string, string> {
  const { postgres, ports } = options;
  return {
    DB: 'postgres12',
    DB_PORT: String(postgres.port),
    POSTGRES_SEEDS: options.postgresHost,
    POSTGRES_USER: postgres.user,
    POSTGRES_PWD: postgres.password,
    DYNAMIC_CONFIG_FILE_PATH: options.dynamicConfigFile,
    BIND_ON_IP: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
  };
}

/** Every port the server's services listen on (the frontend's gRPC port is the one clients use). */
export const TEMPORAL_SERVER_PORTS = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;
export type TemporalServerPort = (typeof TEMPORAL_SERVER_PORTS)[number];

/**
 * The server's ports: the frontend's as given, the inner services' free ones, chosen once and kept in
 * `portsFile`. A server that comes back on the same addresses is the same cluster member, and takes its
 * shards and task queues back at once: on new addresses, after a kill -9, no worker could poll for 55 s,
 * until the dead member's entries left the membership ring. A port taken since by something else is
 * chosen again.
 */
export async function temporalServerPorts(
  frontendPort: number,
  portsFile: string,
  /** Ports the stack has chosen for other servers, not all listening yet. */
  taken: number[] = [],
): Promise<Record<TemporalServerPort, number>> {
  reservePorts([frontendPort, ...taken]);
  let kept: Partial<Record<TemporalServerPort, number>> = {};
  try {
    kept = JSON.parse(readFileSync(portsFile, 'utf8')) as typeof kept;
  } catch {
    // None kept yet (or a file cut short): choose them all.
  }
  const ports = { FRONTEND_GRPC_PORT: frontendPort } as Record<TemporalServerPort, number>;
  for (const name of TEMPORAL_SERVER_PORTS.slice(1)) {
    const port = kept[name];
    const keep = Number.isInteger(port) && !taken.includes(port!) && port !== frontendPort && !(await portOpen(port!));
    ports[name] = keep ? port! : await freePort();
    reservePorts([ports[name]]);
  }
  mkdirSync(dirname(portsFile), { recursive: true });
  writeFileSync(`${portsFile}.new`, `${JSON.stringify(ports, null, 2)}\n`);
  renameSync(`${portsFile}.new`, portsFile);
  return ports;
}

export async function startTemporalServer(options: {
  ports: Record<TemporalServerPort, number>;
  postgres: PostgresSettings;
  logDir: string;
  echo?: boolean;
}): Promise<ManagedProcess> {
  const frontendPort = options.ports.FRONTEND_GRPC_PORT;
  const env = temporalServerEnv({
    postgres: options.postgres,
    postgresHost: '127.0.0.1',
    dynamicConfigFile: join(repoRoot, 'ops', 'temporal', 'dynamicconfig.yaml'),
    ports: options.ports,
  });
  return startProcess({
    name: 'temporal',
    command: binaries.temporalServer,
    args: ['--allow-no-auth', 'start'],
    env,
    onlyEnv: true,
    logFile: join(options.logDir, 'temporal.log'),
    echo: options.echo,
    readyTimeoutMs: 120_000,
    ready: async () => {
      if (!(await portOpen(frontendPort))) return false;
      const connection = await Connection.connect({ address: `127.0.0.1:${frontendPort}`, connectTimeout: 2000 });
      try {
        // The frontend's gRPC health check: SERVING once it can reach history and matching.
        const { status } = await connection.withDeadline(Date.now() + 5000, () =>
          connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' }),
        );
        return status === grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING;
      } finally {
        await connection.close();
      }
    },
  });
}

/** ops/temporal/setup-namespace.sh with the Temporal CLI: idempotent, and done once the attributes are queryable. */
export async function registerNamespace(address: string, namespace: string): Promise<void> {
  await run('sh', [join(repoRoot, 'ops', 'temporal', 'setup-namespace.sh')], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, TEMPORAL_CLI: binaries.temporal },
  });
}

/**
 * The Temporal Web UI, on the loopback only: its `docker` configuration (the
 * image's) with the listening host added, in a folder of the stack's own.
 */
export async function startTemporalUi(options: {
  port: number;
  temporalAddress: string;
  namespace: string;
  configDir: string;
  logDir: string;
  echo?: boolean;
}): Promise<ManagedProcess> {
  mkdirSync(options.configDir, { recursive: true });
  const shipped = join(temporalUiRoot, 'config');
  copyFileSync(join(shipped, 'base.yaml'), join(options.configDir, 'base.yaml'));
  writeFileSync(
    join(options.configDir, 'cluster.yaml'),
    `${readFileSync(join(shipped, 'docker.yaml'), 'utf8')}\nhost: 127.0.0.1\n`,
  );
  return startProcess({
    name: 'temporal-ui',
    command: binaries.temporalUi,
    args: ['--root', options.configDir, '--config', '.', '--env', 'cluster', 'start'],
    onlyEnv: true,
    env: {
      TEMPORAL_ADDRESS: options.temporalAddress,
      TEMPORAL_UI_PORT: String(options.port),
      TEMPORAL_DEFAULT_NAMESPACE: options.namespace,
      TEMPORAL_CORS_ORIGINS: `http://localhost:${options.port},http://127.0.0.1:${options.port}`,
      // Served over plain http on the loopback.
      TEMPORAL_CSRF_COOKIE_INSECURE: 'true',
    },
    logFile: join(options.logDir, 'temporal-ui.log'),
    echo: options.echo,
    ready: async () => (await fetch(`http://127.0.0.1:${options.port}/`).catch(() => undefined))?.ok === true,
  });
}
