/**
 * Histories recorded from real runs on the dev server (test/histories/) are
 * replayed against today's workflow code: a change that breaks determinism for
 * workflows already in flight fails here, before it reaches a cluster.
 * Record more with `node dist/infra/record-history.js <workflowId> <name>` against a stack;
 * the subscription workflow's, one per state it waits in, with
 * `node dist/infra/record-history.js --subscription-states` (self-contained, after `npm run build`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

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

  it.each(files)('%s replays without a determinism error', async (file) => {
    const history = load(file);
    await expect(
      Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, `replay-${file}`),
    ).resolves.toBeUndefined();
  });

  it.each([files[0]!, 'subscription-deleted.json'])(
    'fails a replay of %s whose workflow code took a different path',
    async (file) => {
      const history = load(file);
      // Renaming the first scheduled activity is what a non-deterministic change looks like to the replayer.
      const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
      scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
      await expect(
        Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, 'tampered'),
      ).rejects.toThrow(/[Nn]ondetermin/);
    },
  );
});
