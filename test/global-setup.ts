/**
 * Starts the real servers once per test run, each on a free port with its own
 * data folder under a fresh temporary directory, so a run never collides with
 * a running local stack or with another run. Test files isolate themselves
 * further with unique database, queue and task-queue names.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedProcess } from '../infra/processes';
import { startFerretDb, startMoto, startTemporalDevServer } from '../infra/servers';
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
  const started = await Promise.all([
    startFerretDb({ port: mongoPort, dataDir: join(runDir, 'ferretdb'), logDir }),
    startMoto({ port: motoPort, logDir }),
    startTemporalDevServer({ port: temporalPort, dbFile: join(runDir, 'temporal.sqlite'), namespace, logDir }),
  ]);
  processes.push(...started);

  process.env[TEST_ENV.mongoUri] = `mongodb://127.0.0.1:${mongoPort}/`;
  process.env[TEST_ENV.awsEndpoint] = `http://127.0.0.1:${motoPort}`;
  process.env[TEST_ENV.temporalAddress] = `127.0.0.1:${temporalPort}`;
  process.env[TEST_ENV.temporalNamespace] = namespace;
  process.env[TEST_ENV.runDir] = runDir;
  // One sandbox SNS signing certificate for the run, made before the workers start so none race to create it.
  ensureSigningKey(join(runDir, 'sns-signing'));
}
