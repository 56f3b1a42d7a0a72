/**
 * The last step of `npm run build`: bundles the compiled workflows once per
 * kind (worker/workflow-bundle.ts) into dist/workflow-bundles, with a manifest
 * of the files they were made from, so that the worker starts without webpack
 * and refuses a bundle those files have since changed under.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type BundleOptions } from '@temporalio/worker';
import {
  bundleDir,
  bundleFileName,
  installedSdkVersion,
  manifestPath,
  sha256,
  WORKFLOW_INTERCEPTOR_MODULES,
  type BundleManifest,
  type WorkflowBundleKind,
} from './workflow-bundle';
import { repoRoot } from '../infra/paths';

type WebpackConfiguration = Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0];
type WebpackPlugin = Extract<NonNullable<WebpackConfiguration['plugins']>[number], { apply: unknown }>;

/** A webpack plugin that adds every file the compilation read to `files`. */
function recordInputs(files: Set<string>): WebpackPlugin {
  return {
    apply(compiler) {
      compiler.hooks.done.tap('record-workflow-inputs', (stats) => {
        for (const file of stats.compilation.fileDependencies) files.add(file);
      });
    },
  };
}

/**
 * Code of ours, not a dependency's (those change with package-lock.json, and the
 * SDK's version is checked on its own) nor the package.json files webpack reads.
 */
function isOurCode(file: string): boolean {
  const path = relative(repoRoot, file);
  return (
    /\.[cm]?[jt]s$/.test(path) &&
    !path.startsWith('..') &&
    !path.split(sep).includes('node_modules') &&
    existsSync(file)
  );
}

/** Each compiled input, and the TypeScript source it was compiled from when there is one. */
function sourcesOf(inputs: Set<string>): Record<string, string> {
  const sources: Record<string, string> = {};
  for (const file of [...inputs].filter(isOurCode).sort()) {
    const path = relative(repoRoot, file);
    sources[path] = sha256(readFileSync(file));
    const compiledFrom = path.startsWith(`dist${sep}`) ? path.slice(5).replace(/\.js$/, '.ts') : undefined;
    if (compiledFrom && existsSync(join(repoRoot, compiledFrom)))
      sources[compiledFrom] = sha256(readFileSync(join(repoRoot, compiledFrom)));
  }
  return sources;
}

/** Written beside its final path and renamed over it: a worker starting meanwhile reads the old file or the new. */
function replaceFile(path: string, content: string): void {
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, content);
  renameSync(partial, path);
}

const previousManifest = (): BundleManifest | undefined =>
  existsSync(manifestPath()) ? (JSON.parse(readFileSync(manifestPath(), 'utf8')) as BundleManifest) : undefined;

async function main(): Promise<void> {
  mkdirSync(bundleDir(), { recursive: true });
  const inputs = new Set<string>();
  const bundles = {} as Record<WorkflowBundleKind, string>;
  for (const kind of Object.keys(WORKFLOW_INTERCEPTOR_MODULES) as WorkflowBundleKind[]) {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES[kind].map((module) => require.resolve(module)),
      logger: new DefaultLogger('WARN'),
      webpackConfigHook: (config) => ({ ...config, plugins: [...(config.plugins ?? []), recordInputs(inputs)] }),
    });
    bundles[kind] = bundleFileName(kind, code);
    replaceFile(join(bundleDir(), bundles[kind]), code);
    console.log(`workflow bundle dist/workflow-bundles/${bundles[kind]}: ${(code.length / 1024 / 1024).toFixed(1)} MB`);
  }
  // A build that fails before this line leaves the previous manifest, which the worker refuses once its sources change.
  const previous = previousManifest();
  replaceFile(
    manifestPath(),
    `${JSON.stringify({ sdkVersion: installedSdkVersion(), bundles, sources: sourcesOf(inputs) }, null, 2)}\n`,
  );
  // The previous build's bundles stay for a worker that read its manifest just before; older ones go.
  const kept = new Set([...Object.values(bundles), ...Object.values(previous?.bundles ?? {})]);
  for (const file of readdirSync(bundleDir()))
    if (file.endsWith('.js') && !kept.has(file)) rmSync(join(bundleDir(), file), { force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
