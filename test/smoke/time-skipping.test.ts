/** The time-skipping test server, started from the installed binary: nothing is downloaded. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { binaries } from '../../infra/paths';
import { sleepThreeDays } from '../fixtures/workflows';
import { uniqueName } from '../helpers/test-env';

describe('time-skipping test server', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: binaries.temporalTestServer } },
    });
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it("skips a workflow's sleep('3 days')", async () => {
    const taskQueue = uniqueName('ts');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: require.resolve('../fixtures/workflows'),
    });
    const result = await worker.runUntil(
      env.client.workflow.execute(sleepThreeDays, { taskQueue, workflowId: uniqueName('sleep') }),
    );
    expect(result.wokeAt - result.startedAt).toBeGreaterThanOrEqual(3 * 24 * 3600 * 1000);
  });

  it('refuses to start without an existing binary rather than downloading one', async () => {
    await expect(
      TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: '/nonexistent/temporal-test-server' } },
      }),
    ).rejects.toThrow();
  });
});
