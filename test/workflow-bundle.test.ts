/**
 * Issue 14: the built worker runs the workflow bundle `npm run build` made
 * (worker/workflow-bundle.ts, worker/bundle-workflows.ts) instead of bundling
 * its workflows with webpack at every start, and refuses one that is missing
 * or older than the code it was made from, with one fatal line saying what to
 * run. Each case runs the real dist/worker/main.js from a copy of the build
 * (dist/ beside the installed packages, as the production image ships it), so
 * that breaking the copy breaks no one else's worker.
 */
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Client } from '@temporalio/client';
import { startProcess } from '../infra/processes';
import { connectClient } from '../lib/temporal';
import type { BundleManifest } from '../worker/workflow-bundle';
import { testServers, TEST_ENV, uniqueName } from './helpers/test-env';

const root = join(__dirname, '..');
const node = join(root, 'node_modules', '.bin', 'node');
const bundles = join(root, 'dist', 'workflow-bundles');
const manifestOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'dist', 'workflow-bundles', 'manifest.json'), 'utf8')) as BundleManifest;
/** A bundle's file, named after its content. */
const BUNDLE = (kind: string) => `dist/workflow-bundles/${kind}-[0-9a-f]{16}\\.js`;

type Line = Record<string, unknown> & { level: number; msg: string };
const linesOf = (output: string): Line[] =>
  output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Line);

const copies: string[] = [];
/** dist/ copied to a folder of its own, with the installed packages linked beside it. */
function copyOfBuild(): string {
  const dir = mkdtempSync(join(tmpdir(), 'built-worker-'));
  copies.push(dir);
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Runs a copy's worker, which must stop on its own, against a store where nothing listens. */
function runToExit(dir: string, env: Record<string, string> = {}): Promise<{ code: number | null; lines: Line[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [join(dir, 'dist', 'worker', 'main.js')], {
      env: { PATH: process.env.PATH, MONGODB_URI: 'mongodb://127.0.0.1:9/', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not exit within 30 s; output:\n${output}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: linesOf(output) });
    });
  });
}

async function expectRefusal(dir: string, message: RegExp, env: Record<string, string> = {}): Promise<void> {
  const { code, lines } = await runToExit(dir, env);
  expect(code).toBe(1);
  expect(lines.filter((line) => line.level >= 50)).toEqual([
    expect.objectContaining({ level: 60, name: 'worker', msg: expect.stringMatching(message) }),
  ]);
}

describe('issue 14: the built worker runs the workflow bundle the build made', () => {
  jest.setTimeout(120_000);

  beforeAll(() => {
    if (!existsSync(join(bundles, 'manifest.json')))
      throw new Error('dist/workflow-bundles is missing: run `npm run build` (infra/test.sh does)');
  });
  afterAll(() => {
    for (const dir of copies) rmSync(dir, { recursive: true, force: true });
  });

  it('makes a bundle without the tracing interceptor and one with it', () => {
    const { bundles: files } = manifestOf(root);
    const plain = readFileSync(join(bundles, files.plain), 'utf8');
    const traced = readFileSync(join(bundles, files.traced), 'utf8');
    // Booleans, not the code: a failed match would print megabytes of bundle.
    const has = (code: string, text: string) => code.includes(text);
    const interceptorModule = '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors.js';
    expect({ plain: has(plain, interceptorModule), traced: has(traced, interceptorModule) }).toEqual({
      plain: false,
      traced: true,
    });
    expect([plain, traced].map((code) => has(code, 'async function checkDependencies('))).toEqual([true, true]);
  });

  describe('a worker with the bundle', () => {
    let client: Client;
    const temporal = testServers.temporal(uniqueName('bundled'));
    beforeAll(async () => {
      client = await connectClient(temporal);
    });
    afterAll(async () => {
      await client.connection.close();
    });

    it('starts from dist/ alone, without webpack, and runs a workflow and its activity', async () => {
      const dir = copyOfBuild();
      const name = uniqueName('bundled-worker');
      const logFile = join(process.env[TEST_ENV.runDir] ?? dir, 'logs', `${name}.log`);
      const polling = () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"msg":"worker polling"');
      const worker = await startProcess({
        name,
        command: node,
        args: [join(dir, 'dist', 'worker', 'main.js')],
        env: {
          LOG_LEVEL: 'debug',
          MONGODB_URI: testServers.mongoUri(),
          MONGODB_DATABASE: name,
          TEMPORAL_ADDRESS: temporal.address,
          TEMPORAL_NAMESPACE: temporal.namespace,
          TEMPORAL_TASK_QUEUE: temporal.taskQueue,
          METERING_SCHEDULE: 'false',
          RETENTION_SCHEDULE: 'false',
        },
        logFile,
        ready: async () => polling(),
      });
      try {
        const result = await client.workflow.execute('checkDependencies', {
          taskQueue: temporal.taskQueue,
          workflowId: uniqueName('check'),
        });
        expect(result).toMatchObject({ store: 'ok' });
      } finally {
        await worker.stop();
      }
      const lines = linesOf(readFileSync(logFile, 'utf8'));
      const creating = lines.find((line) => line.msg === 'Creating worker') as
        { options: { workflowBundle?: { codePath: string }; workflowsPath?: string } } | undefined;
      expect(creating?.options.workflowBundle).toEqual({
        codePath: join(dir, 'dist', 'workflow-bundles', manifestOf(dir).bundles.plain),
      });
      expect(creating?.options.workflowsPath).toBeUndefined();
      // What the SDK logs when it runs webpack at start.
      expect(lines.filter((line) => line.msg === 'Workflow bundle created')).toEqual([]);
    });
  });

  describe('refuses to start, before it touches the store or Temporal', () => {
    const REBUILD = ': run `npm run build`$';

    it('after a build that compiled but did not bundle', async () => {
      const dir = copyOfBuild();
      rmSync(join(dir, 'dist', 'workflow-bundles'), { recursive: true });
      await expectRefusal(dir, new RegExp(`^there is no workflow bundle in dist/workflow-bundles${REBUILD}`));
    });

    it('without the bundle its manifest names', async () => {
      const dir = copyOfBuild();
      rmSync(join(dir, 'dist', 'workflow-bundles', manifestOf(dir).bundles.plain));
      await expectRefusal(dir, new RegExp(`^the workflow bundle ${BUNDLE('plain')} is missing${REBUILD}`));
    });

    it('with tracing on, without the traced bundle, though the plain one is there', async () => {
      const dir = copyOfBuild();
      rmSync(join(dir, 'dist', 'workflow-bundles', manifestOf(dir).bundles.traced));
      await expectRefusal(dir, new RegExp(`^the workflow bundle ${BUNDLE('traced')} is missing${REBUILD}`), {
        OTEL_TRACES_EXPORTER: 'console',
      });
    });

    it('when a workflow source changed after the build', async () => {
      const dir = copyOfBuild();
      const source = join('workflows', 'subscription', 'subscription.ts');
      mkdirSync(dirname(join(dir, source)), { recursive: true });
      writeFileSync(join(dir, source), `${readFileSync(join(root, source), 'utf8')}\n// an edit no build has seen\n`);
      await expectRefusal(
        dir,
        new RegExp(
          `^the workflow bundle ${BUNDLE('plain')} is older than workflows/subscription/subscription\\.ts${REBUILD}`,
        ),
      );
    });

    it('when the workflows were compiled again but not bundled', async () => {
      const dir = copyOfBuild();
      appendFileSync(join(dir, 'dist', 'domain', 'subscription-model.js'), '\n// compiled by tsc alone\n');
      await expectRefusal(dir, new RegExp(`is older than dist/domain/subscription-model\\.js${REBUILD}`));
    });

    it('when the bundle is not the one the manifest describes', async () => {
      const dir = copyOfBuild();
      appendFileSync(join(dir, 'dist', 'workflow-bundles', manifestOf(dir).bundles.plain), '\n// changed by hand\n');
      await expectRefusal(
        dir,
        new RegExp(`^the workflow bundle ${BUNDLE('plain')} is not the one the last build made${REBUILD}`),
      );
    });

    it('when another version of the SDK made the bundle', async () => {
      const dir = copyOfBuild();
      writeFileSync(
        join(dir, 'dist', 'workflow-bundles', 'manifest.json'),
        JSON.stringify({ ...manifestOf(dir), sdkVersion: '0.0.1' }),
      );
      await expectRefusal(
        dir,
        new RegExp(`was made with @temporalio/worker 0\\.0\\.1, \\d+\\.\\d+\\.\\d+ is installed${REBUILD}`),
      );
    });
  });
});
