/**
 * Issue 13: the built worker logs JSON lines through pino, the Temporal SDK's
 * own messages included, at LOG_LEVEL; a configuration it cannot start with is
 * its last line, naming the variable. (It used to print plain text with
 * console.log whatever LOG_LEVEL said, and the SDK logged to stderr on its own.)
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, startProcess, waitFor } from '../infra/processes';
import { testServers, TEST_ENV, uniqueName } from './helpers/test-env';

const root = join(__dirname, '..');
const node = join(root, 'node_modules', '.bin', 'node');
const script = join(root, 'dist', 'worker', 'main.js');

type Line = Record<string, unknown> & { level: number; msg: string };

/** Every line the process wrote, each of which must be a JSON object. */
function linesOf(output: string): Line[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Line;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

/** Starts the built worker on its own task queue and database, until it polls; stops it; returns what it wrote. */
async function runWorker(logLevel: string): Promise<Line[]> {
  const port = await freePort();
  const name = uniqueName('worker-logs');
  const logFile = join(process.env[TEST_ENV.runDir] ?? root, 'logs', `${name}.log`);
  const worker = await startProcess({
    name,
    command: node,
    args: [script],
    env: {
      LOG_LEVEL: logLevel,
      MONGODB_URI: testServers.mongoUri(),
      MONGODB_DATABASE: name,
      TEMPORAL_ADDRESS: testServers.temporal().address,
      TEMPORAL_NAMESPACE: testServers.temporal().namespace,
      TEMPORAL_TASK_QUEUE: name,
      WORKER_METRICS_PORT: String(port),
      METERING_SCHEDULE: 'false',
      RETENTION_SCHEDULE: 'false',
    },
    logFile,
    ready: () => portOpen(port),
  });
  try {
    // Polling: the SDK says so at INFO; at WARN there is nothing to wait for but a moment of running.
    const polling = () => readFileSync(logFile, 'utf8').includes('"state":"RUNNING"');
    if (logLevel === 'warn') await new Promise((resolve) => setTimeout(resolve, 3000));
    else
      await waitFor(
        'the worker to poll',
        async () => polling(),
        30_000,
        () => worker.child.exitCode === null,
      );
  } finally {
    await worker.stop();
  }
  return linesOf(readFileSync(logFile, 'utf8'));
}

describe('issue 13: the worker logs through pino at LOG_LEVEL', () => {
  beforeAll(() => {
    if (!existsSync(script))
      throw new Error('dist/worker/main.js is missing: run `npm run build` (infra/test.sh does)');
  });

  it("at info: JSON lines, ours and the SDK's, from start to a graceful stop", async () => {
    const lines = await runWorker('info');
    expect(lines.every((line) => line.name === 'worker' && typeof line.time === 'number')).toBe(true);
    expect(lines.filter((line) => line.level < 30)).toEqual([]);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 30, msg: 'worker polling', taskQueue: expect.stringMatching(/^worker-logs-/) }),
    );
    // The Runtime's logger is ours: the SDK's worker states arrive as pino lines.
    const states = lines.filter((line) => line.msg === 'Worker state changed').map((line) => line.state);
    expect(states).toEqual(expect.arrayContaining(['RUNNING', 'STOPPING', 'STOPPED']));
    expect(
      lines.filter((line) => line.msg === 'Worker state changed').every((line) => line.sdkComponent === 'worker'),
    ).toBe(true);
  });

  it('at warn: nothing below warn, from us or the SDK', async () => {
    const lines = await runWorker('warn');
    expect(lines.filter((line) => line.level < 40)).toEqual([]);
  });

  it('a configuration it cannot start with: one fatal JSON line naming the variable, and exit 1', async () => {
    const child = spawn(node, [script], {
      env: { PATH: process.env.PATH, TEMPORAL_TLS: 'maybe' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    const lines = linesOf(output);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, name: 'worker', msg: expect.stringContaining('TEMPORAL_TLS:') });
  });
});
