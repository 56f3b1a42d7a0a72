/**
 * The BatchMeterUsage calls' own task queue, next to the worker's. Its
 * dispatch rate is held by the Temporal server for every worker together
 * (the AWS quota is per seller account, not per process), and linking and
 * cancellation never wait behind an hour's calls.
 */
export const meteringCallsTaskQueue = (taskQueue: string): string => `${taskQueue}-metering-calls`;
