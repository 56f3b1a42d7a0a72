import { NativeConnection, Worker, type WorkerOptions as SdkWorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities';
import type { MeteringConfig, TemporalConfig } from '../lib/config';
import { connectionOptions } from '../lib/temporal';
import { createMeteringCallsWorker, runTogether } from './metering-calls-worker';
import { WORKFLOW_INTERCEPTOR_MODULES, workflowBundleKind, type WorkflowBundle } from './workflow-bundle';

export interface WorkerOptions {
  temporal: TemporalConfig;
  activities: Activities;
  /**
   * The pace of the BatchMeterUsage calls' queue (METERING_RATE_PER_SECOND, METERING_CONCURRENCY). Every worker
   * process polls that queue beside its own: an hourly metering run waits for its calls there, so a process without
   * it would leave them unsent. `false` only for a worker that never meters (a smoke test).
   */
  meteringCalls: Pick<MeteringConfig, 'ratePerSecond' | 'concurrency'> | false;
  /**
   * The bundle `npm run build` made (worker/workflow-bundle.ts), as production runs;
   * its kind must match the tracing. Without it the SDK bundles `workflowsPath`
   * (default `workflows/`) at start, as tests do.
   */
  workflowBundle?: WorkflowBundle;
  /** Tests may point at their own workflows. */
  workflowsPath?: string;
  taskQueue?: string;
  /** The tracing's interceptors and span sink, when it is on (lib/telemetry/tracing.ts). */
  tracing?: Pick<SdkWorkerOptions, 'interceptors' | 'sinks'>;
  /** WORKER_MAX_CACHED_WORKFLOWS; unset: the SDK's default, sized by the heap limit. */
  maxCachedWorkflows?: number;
}

/** A worker process's workers on one connection: the main task queue's, and the metering calls' when asked. */
export interface ProcessWorkers {
  worker: Worker;
  meteringCalls?: Worker;
  connection: NativeConnection;
  /** Runs them until they all stop; one failing shuts the others down. */
  run(): Promise<void>;
  shutdown(): void;
}

export async function createWorker(options: WorkerOptions): Promise<ProcessWorkers> {
  const kind = workflowBundleKind(options.tracing !== undefined);
  if (options.workflowBundle && options.workflowBundle.kind !== kind)
    throw new Error(
      `the ${options.workflowBundle.kind} workflow bundle was given to a worker whose workflows are ${kind}`,
    );
  const connection = await NativeConnection.connect(connectionOptions(options.temporal));
  const taskQueue = options.taskQueue ?? options.temporal.taskQueue;
  const worker = await Worker.create({
    connection,
    namespace: options.temporal.namespace,
    taskQueue,
    ...(options.workflowBundle
      ? { workflowBundle: { codePath: options.workflowBundle.codePath } }
      : { workflowsPath: options.workflowsPath ?? require.resolve('../workflows') }),
    activities: options.activities,
    ...(options.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: options.maxCachedWorkflows }),
    sinks: options.tracing?.sinks,
    interceptors: {
      ...options.tracing?.interceptors,
      // A bundle has its workflow interceptors compiled in; the SDK ignores these, with a warning, beside one.
      ...(options.workflowBundle
        ? {}
        : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES[kind].map((module) => require.resolve(module)) }),
    },
  });
  const meteringCalls =
    options.meteringCalls === false
      ? undefined
      : await createMeteringCallsWorker({
          connection,
          temporal: options.temporal,
          taskQueue,
          activities: options.activities,
          settings: options.meteringCalls,
          interceptors: options.tracing?.interceptors,
        });
  const workers = meteringCalls ? [worker, meteringCalls] : [worker];
  return {
    worker,
    meteringCalls,
    connection,
    run: () => runTogether(workers),
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
