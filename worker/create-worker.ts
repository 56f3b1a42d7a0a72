import { NativeConnection, Worker, type WorkerOptions as SdkWorkerOptions } from '@temporalio/worker';
import type { TemporalConfig } from '../lib/config';
import { connectionOptions } from '../lib/temporal';
import { WORKFLOW_INTERCEPTOR_MODULES, workflowBundleKind, type WorkflowBundle } from './workflow-bundle';

export interface WorkerOptions {
  temporal: TemporalConfig;
  activities: object;
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
}

export async function createWorker(options: WorkerOptions): Promise<{ worker: Worker; connection: NativeConnection }> {
  const kind = workflowBundleKind(options.tracing !== undefined);
  if (options.workflowBundle && options.workflowBundle.kind !== kind)
    throw new Error(
      `the ${options.workflowBundle.kind} workflow bundle was given to a worker whose workflows are ${kind}`,
    );
  const connection = await NativeConnection.connect(connectionOptions(options.temporal));
  const worker = await Worker.create({
    connection,
    namespace: options.temporal.namespace,
    taskQueue: options.taskQueue ?? options.temporal.taskQueue,
    ...(options.workflowBundle
      ? { workflowBundle: { codePath: options.workflowBundle.codePath } }
      : { workflowsPath: options.workflowsPath ?? require.resolve('../workflows') }),
    activities: options.activities,
    sinks: options.tracing?.sinks,
    interceptors: {
      ...options.tracing?.interceptors,
      // A bundle has its workflow interceptors compiled in; the SDK ignores these, with a warning, beside one.
      ...(options.workflowBundle
        ? {}
        : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES[kind].map((module) => require.resolve(module)) }),
    },
  });
  return { worker, connection };
}
