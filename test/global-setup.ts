/**
 * Starts the real servers once per test run, each on a free port with its own
 * data folder under a fresh temporary directory, so a run never collides with
 * a running local stack or with another run. Test files isolate themselves
 * further with unique database, queue and task-queue names.
 *
 * TEST_TEMPORAL_SERVER=cluster runs the suite against the cluster mode's
 * Temporal (the server built from its module, on PostgreSQL, schema and
 * namespace set up as production does) instead of the CLI's dev server.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedProcess } from '../infra/processes';
import { startFerretDb, startMoto, startTemporalDevServer } from '../infra/servers';
import {
  registerNamespace,
  setupTemporalSchema,
  startPostgres,
  startTemporalServer,
  temporalServerPorts,
} from '../infra/cluster-servers';
import { randomBytes } from 'node:crypto';
import { ensureSigningKey } from '../sandbox/sns-signing';
import { TEST_ENV } from './helpers/test-env';

declare global {
  // Shared with global-teardown, which runs in the same process.
  var __testServers: { processes: ManagedProcess[]; runDir: string } | undefined;
}

export default async function globalSetup(): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'marketplace-test-'));
  const logDir = join(runDir, 'logs');
  const processes: ManagedProcess[] = [];
  globalThis.__testServers = { processes, runDir };
  // If Jest dies without running teardown, don't leave servers behind.
  process.once('exit', () => processes.forEach((p) => p.child.kill('SIGKILL')));

  const [mongoPort, motoPort, temporalPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const namespace = 'test';
  // Each kept as soon as it is up, so that teardown stops it whatever fails next.
  const kept = (started: Promise<ManagedProcess>) => started.then((p) => void processes.push(p));
  const clusterTemporal = async () => {
    const postgres = { port: await freePort(), user: 'temporal', password: randomBytes(24).toString('base64url') };
    await kept(startPostgres({ ...postgres, dataDir: join(runDir, 'postgresql'), logDir }));
    await setupTemporalSchema(postgres);
    await kept(
      startTemporalServer({
        ports: await temporalServerPorts(temporalPort, join(runDir, 'temporal-ports.json')),
        postgres,
        logDir,
      }),
    );
    await registerNamespace(`127.0.0.1:${temporalPort}`, namespace);
  };
  const devServer = () =>
    kept(startTemporalDevServer({ port: temporalPort, dbFile: join(runDir, 'temporal.sqlite'), namespace, logDir }));
  const server = process.env.TEST_TEMPORAL_SERVER ?? 'dev';
  if (server !== 'dev' && server !== 'cluster') throw new Error('TEST_TEMPORAL_SERVER: dev (the default) or cluster');
  await Promise.all([
    kept(startFerretDb({ port: mongoPort, dataDir: join(runDir, 'ferretdb'), logDir })),
    kept(startMoto({ port: motoPort, logDir })),
    server === 'cluster' ? clusterTemporal() : devServer(),
  ]);

  process.env[TEST_ENV.mongoUri] = `mongodb://127.0.0.1:${mongoPort}/`;
  process.env[TEST_ENV.awsEndpoint] = `http://127.0.0.1:${motoPort}`;
  process.env[TEST_ENV.temporalAddress] = `127.0.0.1:${temporalPort}`;
  process.env[TEST_ENV.temporalNamespace] = namespace;
  process.env[TEST_ENV.runDir] = runDir;
  // One sandbox SNS signing certificate for the run, made before the workers start so none race to create it.
  ensureSigningKey(join(runDir, 'sns-signing'));
}
