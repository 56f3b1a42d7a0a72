/**
 * bench/worker-start: how fast the worker starts, and how much memory it
 * holds, with the workflow bundle `npm run build` makes against bundling the
 * workflows with webpack at start (what the worker did before), on a Temporal
 * dev server and FerretDB already running.
 *
 *   node dist/bench/worker-start.js [RUNS=5]
 *
 * Start time runs from the process's spawn to its 'worker polling' line, with
 * the CPU seconds the process has spent by then (the start's cost, which the
 * other work on a shared machine does not inflate as it does the wall time);
 * the memory is its resident set 1 s later and its peak (VmHWM) by then. Both
 * ways run in the same program, this file's worker mode, which does what the
 * worker does up to polling (configuration, store, activities, Worker.create)
 * with the compiled workflows either bundled at start (`workflowsPath`, the
 * baseline) or read from the prebuilt bundle. The real dist/worker/main.js,
 * which also sets up indexes and moves legacy runs, is measured beside them for
 * the record. The modes take turns, RUNS times; the figures are medians.
 * What is left of the bundled start is mostly loading modules (the Temporal
 * SDK, the AWS SDK, the MongoDB driver): about 1.2 CPU s of its 2.
 * Target: the bundled start is faster (wall time below the baseline's, CPU
 * ≤ 0.6 of the baseline's) and smaller (peak resident set ≤ 0.8 of it).
 */
import { cpuSeconds } from './process-stats';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createActivities } from '../activities';
import { repoRoot } from '../infra/paths';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { createMeteringClient, createUsageMeteringClient } from '../lib/aws';
import { createLogger } from '../lib/logger';
import { connectMongo } from '../lib/mongo';
import { loadWorkerConfig } from '../worker/config';
import { createWorker } from '../worker/create-worker';
import { prebuiltWorkflowBundle } from '../worker/workflow-bundle';

const TARGET_START_CPU_RATIO = 0.6;
const TARGET_PEAK_RSS_RATIO = 0.8;
const SETTLE_MS = 1000;

const MODES = ['workflowsPath', 'bundle', 'main'] as const;
type Mode = (typeof MODES)[number];

interface Sample {
  startMs: number;
  /** CPU seconds (user + system, all threads) by the 'worker polling' line: the start's cost, whatever else runs. */
  startCpuSeconds: number;
  rssMb: number;
  peakRssMb: number;
}

/** The worker mode: the worker's own start, with its workflows from `workflowsPath` or the prebuilt bundle. */
async function runWorker(mode: 'workflowsPath' | 'bundle'): Promise<void> {
  const config = loadWorkerConfig();
  const log = createLogger('worker-start-bench', config.logLevel);
  const mongo = await connectMongo(config.mongo.uri, config.mongo.database, 'worker-start-bench');
  const metering = createMeteringClient(config.aws);
  const usageMetering = createUsageMeteringClient(config.aws);
  const workers = await createWorker({
    temporal: config.temporal,
    activities: createActivities({ db: mongo.db, metering, usageMetering, meteringConfig: config.metering }),
    meteringCalls: config.metering,
    ...(mode === 'bundle'
      ? { workflowBundle: prebuiltWorkflowBundle('plain') }
      : { workflowsPath: require.resolve('../workflows') }),
  });
  log.info({ mode }, 'worker polling');
  try {
    await workers.run();
  } finally {
    metering.destroy();
    usageMetering.destroy();
    await workers.connection.close();
    await mongo.close();
  }
}

/** The resident set and its peak, in MiB, from /proc. */
function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
  const kib = (field: string) => Number(status.find((line) => line.startsWith(`${field}:`))?.replace(/\D+/g, '') ?? 0);
  return { rssMb: kib('VmRSS') / 1024, peakRssMb: kib('VmHWM') / 1024 };
}

/** Spawns one worker, waits for its 'worker polling' line, measures it and stops it. */
async function measure(mode: Mode, env: NodeJS.ProcessEnv, logFile: string): Promise<Sample> {
  const node = join(repoRoot, 'node_modules', '.bin', 'node');
  const args =
    mode === 'main'
      ? [join(repoRoot, 'dist', 'worker', 'main.js')]
      : [join(repoRoot, 'dist', 'bench', 'worker-start.js'), '--worker', mode];
  const log = createWriteStream(logFile, { flags: 'a' });
  const started = performance.now();
  const child = stopWhenInterrupted(spawn(node, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const start = await new Promise<{ startMs: number; startCpuSeconds: number }>((resolve, reject) => {
      void exited.then((code) =>
        reject(new Error(`${mode} worker exited with ${code} before polling (see ${logFile})`)),
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        log.write(`${line}\n`);
        if (line.includes('"msg":"worker polling"'))
          resolve({ startMs: performance.now() - started, startCpuSeconds: cpuSeconds(child.pid) });
      });
    });
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    return { ...start, ...memoryOf(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    log.end();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-worker-start-'));
  const { servers, mongoUri, temporalAddress } = await startBenchServers(runDir);
  let ok = false;
  try {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      LOG_LEVEL: 'info',
      MONGODB_URI: mongoUri,
      MONGODB_DATABASE: 'bench_worker_start',
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: 'bench',
      TEMPORAL_TASK_QUEUE: 'bench-worker-start',
      METERING_SCHEDULE: 'false',
      RETENTION_SCHEDULE: 'false',
    };
    const samples: Record<Mode, Sample[]> = { workflowsPath: [], bundle: [], main: [] };
    for (let run = 0; run < runs; run++) {
      for (const mode of MODES) {
        const sample = await measure(mode, env, join(runDir, `${mode}.log`));
        samples[mode].push(sample);
        console.log(
          `run ${run + 1} ${mode}: ${sample.startMs.toFixed(0)} ms, ${sample.startCpuSeconds.toFixed(2)} CPU s, ` +
            `${sample.rssMb.toFixed(0)} MiB, peak ${sample.peakRssMb.toFixed(0)} MiB`,
        );
      }
    }
    const fields = ['startMs', 'startCpuSeconds', 'rssMb', 'peakRssMb'] as const;
    const medians = Object.fromEntries(
      MODES.map((mode) => [
        mode,
        Object.fromEntries(
          fields.map((field) => [field, Number(median(samples[mode].map((s) => s[field])).toFixed(2))]),
        ) as unknown as Sample,
      ]),
    ) as Record<Mode, Sample>;
    const ratios = Object.fromEntries(
      fields.map((field) => [field, Number((medians.bundle[field] / medians.workflowsPath[field]).toFixed(3))]),
    ) as unknown as Sample;
    console.log(JSON.stringify({ runs, medians, bundleToWorkflowsPath: ratios }, null, 2));
    ok =
      ratios.startCpuSeconds <= TARGET_START_CPU_RATIO &&
      ratios.startMs < 1 &&
      ratios.peakRssMb <= TARGET_PEAK_RSS_RATIO;
    console.log(
      ok
        ? `PASS: the bundled start costs ≤ ${TARGET_START_CPU_RATIO} of the baseline's CPU, takes less time, ` +
            `and peaks at ≤ ${TARGET_PEAK_RSS_RATIO} of its memory`
        : 'FAIL: see the figures above',
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    if (ok) rmSync(runDir, { recursive: true, force: true });
    else console.log(`logs kept in ${runDir}`);
  }
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[2] === '--worker') {
  const mode = process.argv[3];
  if (mode !== 'workflowsPath' && mode !== 'bundle') throw new Error(`--worker workflowsPath|bundle, not ${mode}`);
  runWorker(mode).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  void main();
}
