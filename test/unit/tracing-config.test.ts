import { ConfigError } from '../../lib/config';
import { loadPollerConfig } from '../../poller/config';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadPollerConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('tracing configuration (OpenTelemetry standard variables)', () => {
  it('is off by default, with OTLP over HTTP/protobuf once switched on', () => {
    expect(loadPollerConfig({}).tracing).toEqual({ exporter: 'none', protocol: 'http/protobuf' });
    expect(loadPollerConfig({ OTEL_TRACES_EXPORTER: 'otlp' }).tracing).toEqual({
      exporter: 'otlp',
      protocol: 'http/protobuf',
    });
    expect(loadPollerConfig({ OTEL_TRACES_EXPORTER: 'console' }).tracing.exporter).toBe('console');
  });

  it('takes the traces-only protocol over the general one', () => {
    const env = {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    };
    expect(loadPollerConfig(env).tracing.protocol).toBe('http/json');
    expect(loadPollerConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracing.protocol).toBe('http/json');
  });

  it.each([
    ['OTEL_TRACES_EXPORTER', 'jaeger'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc'],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'grpc'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector.internal'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'not a url'],
  ])('refuses %s=%s, naming the variable and the value', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: .*\\(got "${value}"\\)$`));
  });
});
