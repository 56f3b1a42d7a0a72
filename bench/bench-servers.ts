/**
 * The servers every bench runs against, each on a free port, with its data and
 * logs in the bench's run directory: FerretDB, a Temporal dev server and, for
 * the benches that read a queue, moto.
 */
import { join } from 'node:path';
import { freePort, type ManagedProcess } from '../infra/processes';
import { startFerretDb, startMoto, startTemporalDevServer } from '../infra/servers';
import { stopWhenInterrupted } from './interrupted';

export interface BenchServers {
  /** In start order; each has `stop()`. */
  servers: ManagedProcess[];
  ferretDb: ManagedProcess;
  temporalServer: ManagedProcess;
  mongoUri: string;
  temporalAddress: string;
  /** moto's endpoint, when asked for. */
  awsEndpoint?: string;
}

export async function startBenchServers(
  runDir: string,
  options: { namespace?: string; moto?: boolean } = {},
): Promise<BenchServers> {
  const [mongoPort, temporalPort, motoPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const [ferretDb, temporalServer, moto] = await Promise.all([
    startFerretDb({ port: mongoPort, dataDir: join(runDir, 'ferretdb'), logDir: runDir }),
    startTemporalDevServer({
      port: temporalPort,
      dbFile: join(runDir, 'temporal.sqlite'),
      namespace: options.namespace ?? 'bench',
      logDir: runDir,
    }),
    ...(options.moto ? [startMoto({ port: motoPort, logDir: runDir })] : []),
  ]);
  for (const server of [ferretDb, temporalServer, ...(moto ? [moto] : [])]) stopWhenInterrupted(server);
  return {
    servers: [ferretDb, temporalServer, ...(moto ? [moto] : [])],
    ferretDb: ferretDb,
    temporalServer: temporalServer,
    mongoUri: `mongodb://127.0.0.1:${mongoPort}/`,
    temporalAddress: `127.0.0.1:${temporalPort}`,
    ...(moto ? { awsEndpoint: `http://127.0.0.1:${motoPort}` } : {}),
  };
}
