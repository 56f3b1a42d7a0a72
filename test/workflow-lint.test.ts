/** The lint rules that keep workflow code deterministic actually fire. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..');
// Linted as if it were the real workflow module, so the workflow-only rules apply.
const asWorkflow = join(root, 'workflows', 'diagnostics.ts');

// The ESLint CLI in a child process: Jest's module sandbox cannot load the ESM config file.
type LintResults = Array<{ messages: Array<{ ruleId: string | null; message: string }> }>;

function eslint(args: string[], stdin?: string): LintResults {
  const run = spawnSync(join(root, 'node_modules', '.bin', 'eslint'), ['--format', 'json', ...args], {
    cwd: root,
    input: stdin,
    encoding: 'utf8',
  });
  if (!run.stdout) throw new Error(`eslint failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as LintResults;
}

async function ruleIds(code: string): Promise<string[]> {
  const [result] = eslint(['--stdin', '--stdin-filename', asWorkflow], code);
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

describe('workflow lint rules', () => {
  jest.setTimeout(60_000);

  it('accepts the real workflow code', async () => {
    const results = eslint(['workflows']);
    expect(results.flatMap((r) => r.messages)).toEqual([]);
  });

  it('refuses Node built-ins', async () => {
    expect(await ruleIds("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toContain(
      'no-restricted-imports',
    );
    expect(await ruleIds("import * as crypto from 'crypto';\nexport const x = crypto;\n")).toContain(
      'no-restricted-imports',
    );
  });

  it('refuses activity implementations but allows their types', async () => {
    expect(
      await ruleIds("import { createActivities } from '../activities';\nexport const x = createActivities;\n"),
    ).toContain('no-restricted-imports');
    expect(await ruleIds("import type { Activities } from '../activities';\nexport type X = Activities;\n")).toEqual(
      [],
    );
  });

  it('refuses I/O clients and timers', async () => {
    expect(await ruleIds("import { MongoClient } from 'mongodb';\nexport const x = MongoClient;\n")).toContain(
      'no-restricted-imports',
    );
    expect(await ruleIds('export function f() { setTimeout(() => undefined, 1); }\n')).toContain(
      'no-restricted-globals',
    );
  });

  it('refuses floating promises', async () => {
    const code =
      "import { sleep } from '@temporalio/workflow';\nexport async function wf(): Promise<void> { sleep(1); }\n";
    expect(await ruleIds(code)).toContain('@typescript-eslint/no-floating-promises');
  });
});
