/**
 * Histories recorded from real runs on the dev server (test/histories/) are
 * replayed against today's workflow code: a change that breaks determinism for
 * workflows already in flight fails here, before it reaches a cluster.
 * Record more with `node dist/infra/record-history.js <workflowId> <name>` against a stack.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((file) => file.endsWith('.json'));
const load = (file: string) => temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(dir, file), 'utf8')));

describe('recorded workflow histories', () => {
  it('has recordings to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)('%s replays without a determinism error', async (file) => {
    const history = load(file);
    await expect(
      Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, `replay-${file}`),
    ).resolves.toBeUndefined();
  });

  it('fails a replay whose workflow code took a different path', async () => {
    const history = load(files[0]!);
    // Renaming the first scheduled activity is what a non-deterministic change looks like to the replayer.
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
    await expect(Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, 'tampered')).rejects.toThrow(
      /[Nn]ondetermin/,
    );
  });
});
