/**
 * The OpenTelemetry SDK behind lib/telemetry/tracing.ts, loaded only when
 * tracing is on. The SDK 1.x line is the one @temporalio/interceptors-opentelemetry
 * builds its workflow spans for. Standard variables the SDK reads itself:
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_BSP_*, OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT.
 */
import { SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { detectResourcesSync, envDetectorSync, Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { TracingConfig } from '../config';

export interface TracingOptions {
  /** A server span per incoming request (and client spans for outgoing ones): the API. */
  http?: boolean;
}

export interface Tracing {
  /** For the Temporal client: starts, signals and updates carry the caller's trace into the workflow. */
  temporalClient: ClientInterceptors;
  /**
   * For the worker: a span per activity, in the caller's trace, and the sink that
   * exports the workflow interceptors' spans per run, update and signal (those
   * interceptors are compiled into the workflow bundle: worker/workflow-bundle.ts).
   */
  temporalWorker(): { interceptors: WorkerInterceptors; sinks: InjectedSinks<OpenTelemetrySinks> };
  /** A consumer span around the processing of one queue message; the outcome becomes an attribute. */
  traceMessage: <T extends string>(
    queueUrl: string,
    messageId: string | undefined,
    work: () => Promise<T>,
  ) => Promise<T>;
  /** Sends the spans still buffered; called once, at exit. */
  shutdown(): Promise<void>;
}

/** Load balancers ask these every few seconds: a span each would drown the requests that matter. */
const PROBES = new Set(['/health', '/ready']);

function exporterFor(config: TracingConfig): SpanExporter {
  if (config.exporter === 'console') return new ConsoleSpanExporter();
  return config.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
}

export function startTracingSdk(config: TracingConfig, service: string, options: TracingOptions): Tracing {
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the process's own name.
  const resource = new Resource({ [ATTR_SERVICE_NAME]: service }).merge(
    detectResourcesSync({ detectors: [envDetectorSync] }),
  );
  const exporter = exporterFor(config);
  const processor: SpanProcessor =
    config.exporter === 'console' ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // The global provider, the AsyncLocalStorage context manager and the W3C propagators (or OTEL_PROPAGATORS).
  provider.register();
  const unregister = options.http
    ? registerInstrumentations({
        tracerProvider: provider,
        instrumentations: [
          new HttpInstrumentation({
            ignoreIncomingRequestHook: (request) => PROBES.has((request.url ?? '').split('?')[0]!),
          }),
        ],
      })
    : () => undefined;
  const tracer: Tracer = trace.getTracer('marketplace-billing');
  // Workflow spans are made inside the workflow sandbox and handed out through this sink, in the provider's resource.
  const workflowExporter = makeWorkflowExporter(processor, provider.resource);

  return {
    temporalClient: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    temporalWorker: () => ({
      interceptors: {
        activity: [
          (ctx) => ({
            inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
            outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
      },
      sinks: { exporter: workflowExporter },
    }),
    traceMessage: (queueUrl, messageId, work) => {
      const queue = queueUrl.split('/').pop() ?? queueUrl;
      const attributes: Attributes = {
        'messaging.system': 'aws_sqs',
        'messaging.operation.type': 'process',
        'messaging.destination.name': queue,
        ...(messageId ? { 'messaging.message.id': messageId } : {}),
      };
      return tracer.startActiveSpan(`process ${queue}`, { kind: SpanKind.CONSUMER, attributes }, async (span) => {
        try {
          const outcome = await work();
          span.setAttribute('marketplace.settled', outcome);
          return outcome;
        } catch (error) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      });
    },
    shutdown: async () => {
      unregister();
      await provider.shutdown();
    },
  };
}
