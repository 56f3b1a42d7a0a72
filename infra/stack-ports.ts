/**
 * The stack on ports of its own: what a test or a bench sets to start it
 * beside any other stack (infra/local.env's ports otherwise).
 */
import { freePort } from './processes';

export interface StackPorts {
  temporal: number;
  ui: number;
  mongo: number;
  moto: number;
  sandbox: number;
  api: number;
  /** One for each replica: one in the local mode, two in the cluster mode. */
  workerMetrics: number[];
  pollerMetrics: number[];
  /** The cluster mode's only. */
  cluster?: { postgres: number; apiReplicas: number[] };
}

export async function freeStackPorts(options: { cluster?: boolean } = {}): Promise<StackPorts> {
  const replicas = options.cluster ? 2 : 1;
  const free = (n: number) => Promise.all(Array.from({ length: n }, freePort));
  const [temporal, ui, mongo, moto, sandbox, api] = (await free(6)) as [number, number, number, number, number, number];
  return {
    temporal,
    ui,
    mongo,
    moto,
    sandbox,
    api,
    workerMetrics: await free(replicas),
    pollerMetrics: await free(replicas),
    ...(options.cluster ? { cluster: { postgres: await freePort(), apiReplicas: await free(replicas) } } : {}),
  };
}

export function stackPortsEnv(ports: StackPorts): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_UI_PORT: String(ports.ui),
    MONGODB_URI: `mongodb://127.0.0.1:${ports.mongo}/`,
    MOTO_PORT: String(ports.moto),
    AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${ports.moto}`,
    AWS_ENDPOINT_URL_SNS: `http://127.0.0.1:${ports.moto}`,
    SANDBOX_PORT: String(ports.sandbox),
    AWS_ENDPOINT_URL_MARKETPLACE_METERING: `http://127.0.0.1:${ports.sandbox}`,
    API_PORT: String(ports.api),
    ...(ports.cluster
      ? {
          POSTGRES_PORT: String(ports.cluster.postgres),
          CLUSTER_API_PORTS: ports.cluster.apiReplicas.join(','),
          CLUSTER_WORKER_METRICS_PORTS: ports.workerMetrics.join(','),
          CLUSTER_POLLER_METRICS_PORTS: ports.pollerMetrics.join(','),
        }
      : {
          WORKER_METRICS_PORT: String(ports.workerMetrics[0]),
          POLLER_METRICS_PORT: String(ports.pollerMetrics[0]),
        }),
  };
}
