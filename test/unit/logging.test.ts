/** Issue 13: one JSON logger (pino) for every process, the worker's SDK included, honouring LOG_LEVEL and redacting secrets. */
import { Writable } from 'node:stream';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../../lib/logger';
import { runtimeLogging, temporalLogger } from '../../worker/logging';

function capture(level: LevelWithSilent) {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      lines.push(
        ...chunk
          .toString()
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      );
      done();
    },
  });
  return { log: createLogger('test', level, destination), lines, raw };
}

describe('issue 13: process logs', () => {
  it('writes one JSON line per event at or above LOG_LEVEL', () => {
    const { log, lines } = capture('warn');
    log.info({ queueUrl: 'q' }, 'polling');
    log.warn({ held: 3 }, 'shutdown timeout');
    log.error({ err: new Error('boom') }, 'receiving failed');
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, name: 'test', msg: 'shutdown timeout', held: 3 }),
      expect.objectContaining({
        level: 50,
        msg: 'receiving failed',
        err: expect.objectContaining({ type: 'Error', message: 'boom', stack: expect.stringContaining('boom') }),
      }),
    ]);
    expect(lines.every((line) => typeof line.time === 'number')).toBe(true);
  });

  it('redacts every field named like a secret, at the top or one level down, and in headers', () => {
    const { log, lines, raw } = capture('info');
    log.info(
      {
        token: 't-secret',
        apiKey: 'k-secret',
        request: { password: 'p-secret', headers: { authorization: 'Bearer h-secret', cookie: 'c-secret' } },
        linkCode: 'l-secret',
      },
      'call',
    );
    expect(raw.join('')).not.toMatch(/-secret/);
    expect(lines[0]).toMatchObject({
      token: '[redacted]',
      apiKey: '[redacted]',
      linkCode: '[redacted]',
      request: { password: '[redacted]', headers: { authorization: '[redacted]', cookie: '[redacted]' } },
    });
  });

  it("forwards the Temporal SDK's logs at their level, an error under `err`", () => {
    const { log, lines } = capture('debug');
    const sdk = temporalLogger(log);
    sdk.trace('dropped below LOG_LEVEL');
    sdk.debug('activity heartbeat', { sdkComponent: 'activity' });
    sdk.info('Worker state changed', { sdkComponent: 'worker', state: 'RUNNING' });
    sdk.log('WARN', 'slow activation', { workflowId: 'w-1' });
    sdk.error('Activity failed', { sdkComponent: 'activity', error: new Error('deployment API down') });
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [20, 'activity heartbeat'],
      [30, 'Worker state changed'],
      [40, 'slow activation'],
      [50, 'Activity failed'],
    ]);
    expect(lines[1]).toMatchObject({ sdkComponent: 'worker', state: 'RUNNING' });
    expect(lines[3]).toMatchObject({ sdkComponent: 'activity', err: { message: 'deployment API down' } });
    expect(lines[3]).not.toHaveProperty('error');
  });

  it('asks the native Core for its messages at LOG_LEVEL, forwarded to the same logger', () => {
    const { log } = capture('info');
    expect(runtimeLogging(log, 'warn').logging).toEqual({ filter: { core: 'WARN' }, forward: {} });
    expect(runtimeLogging(log, 'debug').logging).toEqual({ filter: { core: 'DEBUG' }, forward: {} });
    expect(runtimeLogging(log, 'silent').logging).toEqual({ filter: { core: 'ERROR' }, forward: {} });
  });
});
