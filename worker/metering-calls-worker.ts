/**
 * The worker of the BatchMeterUsage calls' own task queue. Every worker
 * process runs one beside its main worker, all with the same
 * `maxTaskQueueActivitiesPerSecond`: the Temporal server dispatches the queue's
 * tasks at that rate whatever the number of workers, so the fleet together
 * keeps to the seller's AWS quota without a manual split.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities';
import type { MeteringConfig, TemporalConfig } from '../lib/config';
import { meteringCallsTaskQueue } from '../domain/task-queues';

export async function createMeteringCallsWorker(options: {
  connection: NativeConnection;
  temporal: TemporalConfig;
  /** The main worker's task queue; the calls' queue is named after it. */
  taskQueue?: string;
  activities: Pick<Activities, 'sendMeteringCall'>;
  settings: Pick<MeteringConfig, 'ratePerSecond' | 'concurrency'>;
  interceptors?: WorkerOptions['interceptors'];
}): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.temporal.namespace,
    taskQueue: meteringCallsTaskQueue(options.taskQueue ?? options.temporal.taskQueue),
    activities: { sendMeteringCall: options.activities.sendMeteringCall },
    maxTaskQueueActivitiesPerSecond: options.settings.ratePerSecond,
    maxConcurrentActivityTaskExecutions: options.settings.concurrency,
    ...(options.interceptors?.activity ? { interceptors: { activity: options.interceptors.activity } } : {}),
  });
}

/** Runs the workers until they all stop; when one fails, the others are shut down and the failure is rethrown. */
export async function runTogether(workers: Worker[]): Promise<void> {
  const runs = workers.map((worker) =>
    worker.run().catch((error: unknown) => {
      for (const other of workers) if (other !== worker && other.getState() === 'RUNNING') other.shutdown();
      throw error;
    }),
  );
  const results = await Promise.allSettled(runs);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}
