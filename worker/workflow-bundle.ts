/**
 * The workflow code the built worker runs: bundled once by `npm run build`
 * (worker/bundle-workflows.ts) rather than by webpack at every start, which cost
 * seconds and a few hundred MB. Workflow interceptors are compiled into a
 * bundle, so there is one without tracing and one with it.
 *
 * A bundle that is missing or older than the code it was made from stops the
 * worker with the command that fixes it. Falling back to bundling at start
 * would hide a broken build behind a slow, memory-hungry start in production,
 * and running the old bundle would run workflow code nobody is reading.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../infra/paths';

export type WorkflowBundleKind = 'plain' | 'traced';

/** The workflow interceptors compiled into each bundle: tracing's make a span per workflow run, signal and update. */
export const WORKFLOW_INTERCEPTOR_MODULES: Record<WorkflowBundleKind, readonly string[]> = {
  plain: [],
  traced: ['@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'],
};

export const workflowBundleKind = (tracing: boolean): WorkflowBundleKind => (tracing ? 'traced' : 'plain');

export const bundleDir = () => join(repoRoot, 'dist', 'workflow-bundles');
export const manifestPath = () => join(bundleDir(), 'manifest.json');
/**
 * Named after their content, so that the manifest, renamed into place last, is
 * the one switch from a build to the next: a worker starting meanwhile finds
 * every file the manifest it read names.
 */
export const bundleFileName = (kind: WorkflowBundleKind, code: string) => `${kind}-${sha256(code).slice(0, 16)}.js`;

export interface BundleManifest {
  /** A bundle runs only on the @temporalio/worker version that made it. */
  sdkVersion: string;
  /** Each bundle's file in bundleDir(). */
  bundles: Record<WorkflowBundleKind, string>;
  /**
   * The sha256 of every file of ours the bundles were made from, relative to the
   * repository: the compiled modules and, where present, their TypeScript sources.
   */
  sources: Record<string, string>;
}

export interface WorkflowBundle {
  kind: WorkflowBundleKind;
  codePath: string;
}

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

export function installedSdkVersion(): string {
  const manifest = readFileSync(require.resolve('@temporalio/worker/package.json'), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

const REBUILD = 'run `npm run build`';

/** The bundle of `kind`, checked against the code it was made from; throws, saying what to do, if it cannot be run. */
export function prebuiltWorkflowBundle(kind: WorkflowBundleKind): WorkflowBundle {
  const shown = (path: string) => relative(repoRoot, path);
  if (!existsSync(manifestPath())) throw new Error(`there is no workflow bundle in ${shown(bundleDir())}: ${REBUILD}`);
  const manifest = JSON.parse(readFileSync(manifestPath(), 'utf8')) as BundleManifest;
  const codePath = join(bundleDir(), manifest.bundles[kind]);
  if (!existsSync(codePath)) throw new Error(`the workflow bundle ${shown(codePath)} is missing: ${REBUILD}`);
  if (bundleFileName(kind, readFileSync(codePath, 'utf8')) !== manifest.bundles[kind])
    throw new Error(`the workflow bundle ${shown(codePath)} is not the one the last build made: ${REBUILD}`);
  const sdk = installedSdkVersion();
  if (manifest.sdkVersion !== sdk)
    throw new Error(
      `the workflow bundle ${shown(codePath)} was made with @temporalio/worker ${manifest.sdkVersion}, ${sdk} is installed: ${REBUILD}`,
    );
  // A file that is absent is not checked: production images ship the compiled code without its sources.
  const changed = Object.entries(manifest.sources)
    .filter(([file, hash]) => {
      const path = join(repoRoot, file);
      return existsSync(path) && sha256(readFileSync(path)) !== hash;
    })
    .map(([file]) => file);
  if (changed.length > 0) {
    const named =
      changed.length > 5 ? `${changed.slice(0, 5).join(', ')} and ${changed.length - 5} more` : changed.join(', ');
    throw new Error(`the workflow bundle ${shown(codePath)} is older than ${named}: ${REBUILD}`);
  }
  return { kind, codePath };
}
