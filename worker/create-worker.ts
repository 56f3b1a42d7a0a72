import { NativeConnection, Worker, type WorkerOptions as SdkWorkerOptions } from '@temporalio/worker';
import type { TemporalConfig } from '../lib/config';
import { connectionOptions } from '../lib/temporal';

export interface WorkerOptions {
  temporal: TemporalConfig;
  activities: object;
  /** Tests may point at their own workflows; production bundles `workflows/`. */
  workflowsPath?: string;
  taskQueue?: string;
  /** The tracing's interceptors and span sink, when it is on (lib/telemetry/tracing.ts). */
  tracing?: Pick<SdkWorkerOptions, 'interceptors' | 'sinks'>;
}

export async function createWorker(options: WorkerOptions): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect(connectionOptions(options.temporal));
  const worker = await Worker.create({
    connection,
    namespace: options.temporal.namespace,
    taskQueue: options.taskQueue ?? options.temporal.taskQueue,
    workflowsPath: options.workflowsPath ?? require.resolve('../workflows'),
    activities: options.activities,
    ...options.tracing,
  });
  return { worker, connection };
}
