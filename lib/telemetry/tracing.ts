/**
 * OpenTelemetry traces for the API, the poller and the worker, off unless
 * OTEL_TRACES_EXPORTER names an exporter. Off, no OpenTelemetry module is even
 * loaded: the processes run exactly as they would without tracing.
 */
import type { TracingConfig } from '../config';
import type { Tracing, TracingOptions } from './tracing-sdk';

export type { Tracing } from './tracing-sdk';

/** The service.name of each process, unless OTEL_SERVICE_NAME says otherwise. */
export type TracedService = 'marketplace-api' | 'marketplace-poller' | 'marketplace-worker';

/** Call first in a process: the HTTP instrumentation must be in place before a server listens or a request is sent. */
export async function startTracing(
  config: TracingConfig,
  service: TracedService,
  options: TracingOptions = {},
): Promise<Tracing | undefined> {
  if (config.exporter === 'none') return undefined;
  const { startTracingSdk } = await import('./tracing-sdk');
  return startTracingSdk(config, service, options);
}
