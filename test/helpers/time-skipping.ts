import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { SearchAttributeType } from '@temporalio/common';
import { binaries } from '../../infra/paths';
import { customSearchAttributes } from '../../domain/search-attributes';

// temporal.api.enums.v1.IndexedValueType
const indexedValueTypes: Record<SearchAttributeType, number> = {
  [SearchAttributeType.TEXT]: 1,
  [SearchAttributeType.KEYWORD]: 2,
  [SearchAttributeType.INT]: 3,
  [SearchAttributeType.DOUBLE]: 4,
  [SearchAttributeType.BOOL]: 5,
  [SearchAttributeType.DATETIME]: 6,
  [SearchAttributeType.KEYWORD_LIST]: 7,
};

/** The time-skipping server from the installed binary, with the project's search attributes registered. */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: binaries.temporalTestServer } },
  });
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(customSearchAttributes.map((key) => [key.name, indexedValueTypes[key.type]])),
  });
  return env;
}

/** Polls `read` until `accept` holds; for states reached asynchronously, with no timing assertion. */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, attempts = 200): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < attempts; i += 1) {
    last = await read();
    if (accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not reached; last value: ${JSON.stringify(last)}`);
}

/** Runs `run` while a worker for the project's workflows and the given activities polls a fresh task queue. */
export async function withTestWorker<T>(
  env: TestWorkflowEnvironment,
  activities: object,
  run: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = `tq-${Math.random().toString(36).slice(2, 10)}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows'),
    activities,
  });
  return worker.runUntil(run(taskQueue));
}
