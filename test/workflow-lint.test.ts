/**
 * The lint rules that keep workflow code deterministic actually fire.
 *
 * Every probe is written as a file among the workflows and linted in one ESLint
 * run with the real workflow code: with the type-checked preset, each ESLint
 * process builds the TypeScript program first, so one run instead of one per
 * probe is most of this suite's time.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '..');
// Probes live among the workflows, so the workflow-only rules apply to them as to the real modules.
const probeDir = join(root, 'workflows', `lint-probes-${process.pid}`);
// The same rules hold inside a capability folder and in the kernel the workflows import.
const nestedProbeDirs = [
  join(root, 'workflows', 'subscription', `lint-probes-${process.pid}`),
  join(root, 'domain', `lint-probes-${process.pid}`),
];
// The import resolves from where the probe sits, so the probe type-checks like real code while it exists.
const nestedProbe = (dir: string) =>
  `import pino from 'pino';\nimport { createLogger } from '${relative(dir, join(root, 'lib', 'logger'))}';\nexport const x = [pino, createLogger];\n`;

const probes = {
  nodeBuiltin: "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
  nodeBuiltinBare: "import * as crypto from 'crypto';\nexport const x = crypto;\n",
  activityImplementation: "import { createActivities } from '../../activities';\nexport const x = createActivities;\n",
  activityTypes: "import type { Activities } from '../../activities';\nexport type X = Activities;\n",
  ioClient: "import { MongoClient } from 'mongodb';\nexport const x = MongoClient;\n",
  processLibraries:
    "import pino from 'pino';\nimport { Counter } from 'prom-client';\nimport { trace } from '@opentelemetry/api';\nimport { createLogger } from '../../lib/logger';\nexport const x = [pino, Counter, trace, createLogger];\n",
  timer: 'export function f() { setTimeout(() => undefined, 1); }\n',
  floatingPromise:
    "import { sleep } from '@temporalio/workflow';\nexport async function wf(): Promise<void> { sleep(1); }\n",
};
type Probe = keyof typeof probes;

type LintResults = Array<{ filePath: string; messages: Array<{ ruleId: string | null; message: string }> }>;
let results: LintResults = [];

beforeAll(() => {
  mkdirSync(probeDir, { recursive: true });
  for (const [name, code] of Object.entries(probes)) writeFileSync(join(probeDir, `${name}.ts`), code);
  for (const dir of nestedProbeDirs) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'processLibraries.ts'), nestedProbe(dir));
  }
  // The ESLint CLI in a child process: the config is an ES module, and one process builds the program once.
  const run = spawnSync(join(root, 'node_modules', '.bin', 'eslint'), ['--format', 'json', 'workflows', 'domain'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!run.stdout) throw new Error(`eslint failed: ${run.stderr}`);
  results = JSON.parse(run.stdout) as LintResults;
}, 120_000);

afterAll(() => [probeDir, ...nestedProbeDirs].forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const isProbe = (filePath: string) => [probeDir, ...nestedProbeDirs].some((dir) => filePath.startsWith(dir));
const ruleIds = (probe: Probe) =>
  results
    .find((result) => result.filePath === join(probeDir, `${probe}.ts`))!
    .messages.map((m) => m.ruleId ?? m.message);

describe('workflow lint rules', () => {
  it('accepts the real workflow code and the kernel it imports', () => {
    const real = results.filter((result) => !isProbe(result.filePath));
    expect(real.length).toBeGreaterThan(10);
    expect(
      real.flatMap((r) => r.messages.map((m) => `${relative(root, r.filePath)}: ${m.ruleId ?? m.message}`)),
    ).toEqual([]);
  });

  it('refuses Node built-ins', () => {
    expect(ruleIds('nodeBuiltin')).toContain('no-restricted-imports');
    expect(ruleIds('nodeBuiltinBare')).toContain('no-restricted-imports');
  });

  it('refuses activity implementations but allows their types', () => {
    expect(ruleIds('activityImplementation')).toContain('no-restricted-imports');
    expect(ruleIds('activityTypes')).toEqual([]);
  });

  it('refuses I/O clients and timers', () => {
    expect(ruleIds('ioClient')).toContain('no-restricted-imports');
    expect(ruleIds('timer')).toContain('no-restricted-globals');
  });

  it("refuses the processes' own libraries (logger, metrics, tracing), in capability folders and the kernel too", () => {
    expect(
      results
        .find((result) => result.filePath === join(probeDir, 'processLibraries.ts'))!
        .messages.filter((m) => m.ruleId === 'no-restricted-imports'),
    ).toHaveLength(4);
    for (const dir of nestedProbeDirs) {
      const found = results.find((result) => result.filePath === join(dir, 'processLibraries.ts'));
      expect(found?.messages.filter((m) => m.ruleId === 'no-restricted-imports')).toHaveLength(2);
    }
  });

  it('refuses floating promises', () => {
    expect(ruleIds('floatingPromise')).toContain('@typescript-eslint/no-floating-promises');
  });
});
