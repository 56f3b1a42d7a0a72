/**
 * Histories recorded from real runs on the dev server (test/histories/) are
 * replayed against today's workflow code: a change that breaks determinism for
 * workflows already in flight fails here, before it reaches a cluster.
 * Record more with `node dist/infra/record-history.js <workflowId> <name>` against a stack;
 * the subscription workflow's, one per state it waits in, with
 * `node dist/infra/record-history.js --subscription-states` (self-contained, after `npm run build`).
 * They replay against the very bundles the built worker runs (worker/workflow-bundle.ts), with tracing
 * off and on, since a worker may switch tracing on while those workflows are in flight.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
import { Worker, type InjectedSinks } from '@temporalio/worker';
import { prebuiltWorkflowBundle, type WorkflowBundleKind } from '../worker/workflow-bundle';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((file) => file.endsWith('.json'));
const load = (file: string) =>
  temporal.api.history.v1.History.fromObject(
    JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>,
  );

/** Every state the subscription workflow waits in has a recording (infra/record-history.ts --subscription-states). */
const SUBSCRIPTION_STATES = [
  'registered',
  'awaiting-aws',
  'sync-timed-out',
  'active',
  'awaiting-unsubscribe-success',
  'grace-period',
  'deleted',
  'cancelled',
  'cancelled-before-billing',
  'continued-as-new',
];

describe('recorded workflow histories', () => {
  it('has recordings to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it('has a recording of the subscription workflow waiting in each of its states', () => {
    expect(files).toEqual(expect.arrayContaining(SUBSCRIPTION_STATES.map((state) => `subscription-${state}.json`)));
    const continued = load('subscription-continued-as-new.json').events[0]!.workflowExecutionStartedEventAttributes;
    expect(continued?.continuedExecutionRunId).toBeTruthy();
  });

  const kinds: WorkflowBundleKind[] = ['plain', 'traced'];
  it.each(files.flatMap((file) => kinds.map((kind) => [file, kind] as const)))(
    '%s replays without a determinism error on the %s bundle',
    async (file, kind) => {
      const history = load(file);
      const { codePath } = prebuiltWorkflowBundle(kind);
      // The traced bundle hands its spans to the worker's exporter sink, which has nothing to export in a replay.
      const sinks: InjectedSinks<OpenTelemetrySinks> | undefined =
        kind === 'traced' ? { exporter: { export: { fn: () => undefined } } } : undefined;
      await expect(
        Worker.runReplayHistory({ workflowBundle: { codePath }, sinks }, history, `replay-${kind}-${file}`),
      ).resolves.toBeUndefined();
    },
  );

  it.each([files[0]!, 'subscription-deleted.json'])(
    'fails a replay of %s whose workflow code took a different path',
    async (file) => {
      const history = load(file);
      // Renaming the first scheduled activity is what a non-deterministic change looks like to the replayer.
      const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
      scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
      const { codePath } = prebuiltWorkflowBundle('plain');
      await expect(Worker.runReplayHistory({ workflowBundle: { codePath } }, history, 'tampered')).rejects.toThrow(
        /[Nn]ondetermin/,
      );
    },
  );
});
