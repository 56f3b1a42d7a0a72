/**
 * Runs schemathesis (PyPI, installed into the project's venv by infra/install.sh) against a
 * running API and reads its NDJSON event report, so a test can assert on every request it made
 * and every check that failed rather than on the exit code alone.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { venvBin } from '../../infra/paths';

export interface FuzzOptions {
  /** Where the API listens; the document is read from `${baseUrl}/openapi.json`. */
  baseUrl: string;
  headers: Record<string, string>;
  maxExamples: number;
  seed: number;
  timeoutMs: number;
}

export interface FuzzFailure {
  check: string;
  operation: string;
  code: string;
  message: string;
}

export interface FuzzResult {
  exitCode: number;
  /** Operations (e.g. "GET /api/billing") that at least one scenario exercised. */
  operations: string[];
  requests: number;
  /** Answers per operation and status, e.g. { "GET /health": { "200": 3, "405": 6 } }. */
  statuses: Record<string, Record<number, number>>;
  /** One entry per distinct (check, operation, failure code, first line of its message). */
  failures: FuzzFailure[];
  /** How many test cases failed each check. */
  failedCases: Record<string, number>;
  /** The requests answered with a 5xx, as "METHOD path -> status". */
  serverErrors: string[];
  output: string;
}

interface Interaction {
  request: { method: string; uri: string };
  response?: { status_code: number } | null;
}

interface CheckRecord {
  name: string;
  status: string;
  failure_info?: { failure?: { code?: string; operation?: string; message?: string } };
}

interface ScenarioFinished {
  recorder: { label: string; interactions?: Record<string, Interaction>; checks?: Record<string, CheckRecord[]> };
}

export async function runSchemathesis(options: FuzzOptions): Promise<FuzzResult> {
  // Its own working directory: schemathesis looks for a config file upwards from there, and writes its report there.
  const workDir = mkdtempSync(join(tmpdir(), 'schemathesis-'));
  try {
    const args = [
      'run',
      `${options.baseUrl}/openapi.json`,
      '--url',
      options.baseUrl,
      '--checks',
      'all',
      // Stateful testing needs OpenAPI links between operations, which the document has none of.
      '--phases',
      'examples,coverage,fuzzing',
      '--max-examples',
      String(options.maxExamples),
      '--seed',
      String(options.seed),
      // One worker: the run is reproducible from the seed, and with two schemathesis stopped operations early.
      '--workers',
      '1',
      '--continue-on-failure',
      '--generation-database',
      'none',
      // Credentials come from the caller's headers; generated ones would ride along with them and prove nothing.
      '--generation-with-security-parameters',
      'false',
      '--request-timeout',
      '10',
      '--no-color',
      '--report',
      'ndjson',
      '--report-dir',
      workDir,
      ...Object.entries(options.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    ];
    const { exitCode, output } = await new Promise<{ exitCode: number; output: string }>((resolve) => {
      execFile(
        join(venvBin, 'schemathesis'),
        args,
        { cwd: workDir, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          // A number is its exit code; otherwise it did not run to the end (not installed: run infra/install.sh; or timed out).
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ exitCode: code, output: `${stdout}${stderr}${code === -1 ? error!.message : ''}` });
        },
      );
    });
    const report = readdirSync(workDir).find((name) => name.endsWith('.ndjson'));
    if (!report) throw new Error(`schemathesis wrote no report (exit ${exitCode}):\n${output}`);
    return { exitCode, output, ...summarise(readFileSync(join(workDir, report), 'utf8')) };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

function summarise(ndjson: string): Omit<FuzzResult, 'exitCode' | 'output'> {
  const operations = new Set<string>();
  const statuses: Record<string, Record<number, number>> = {};
  const failures = new Map<string, FuzzFailure>();
  const failedCases: Record<string, number> = {};
  const serverErrors: string[] = [];
  let requests = 0;
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { ScenarioFinished?: ScenarioFinished };
    const scenario = event.ScenarioFinished;
    if (!scenario) continue;
    const { label, interactions = {}, checks = {} } = scenario.recorder;
    if (Object.keys(interactions).length > 0) operations.add(label);
    for (const { request, response } of Object.values(interactions)) {
      requests += 1;
      const status = response?.status_code ?? 0;
      const counts = (statuses[label] ??= {});
      counts[status] = (counts[status] ?? 0) + 1;
      if (status >= 500) serverErrors.push(`${request.method} ${new URL(request.uri).pathname} -> ${status}`);
    }
    for (const check of Object.values(checks).flat()) {
      if (check.status === 'success' || check.status === 'skip') continue;
      const failure = check.failure_info?.failure ?? {};
      const code = failure.code ?? check.status;
      const operation = failure.operation ?? label;
      failedCases[check.name] = (failedCases[check.name] ?? 0) + 1;
      const key = `${check.name}|${operation}|${code}|${(failure.message ?? '').split('\n')[0]}`;
      if (!failures.has(key)) failures.set(key, { check: check.name, operation, code, message: failure.message ?? '' });
    }
  }
  return {
    operations: [...operations].sort(),
    requests,
    statuses,
    failures: [...failures.values()],
    failedCases,
    serverErrors,
  };
}
