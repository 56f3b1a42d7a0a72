import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
/** A real workflow with a real activity on the real Temporal dev server and the real store. */
import { Client, Connection } from '@temporalio/client';
import { createActivities } from '../../activities';
import { loadMeteringConfig } from '../../lib/config';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { customSearchAttributes } from '../../domain/search-attributes';
import { connectClient } from '../../lib/temporal';
import { checkDependencies } from '../../workflows';
import { createWorker } from '../../worker/create-worker';
import { testServers, uniqueName } from '../helpers/test-env';

// This workflow calls no AWS API; a client pointed nowhere proves it.
const unusedMetering = new MarketplaceMeteringClient({
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
});

describe('Temporal dev server', () => {
  let mongo: MongoHandle;
  let client: Client;
  const temporal = testServers.temporal();

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('db'));
    client = await connectClient(temporal);
  });
  afterAll(async () => {
    await client.connection.close();
    await mongo.close();
  });

  it('runs the dependency-check workflow through a worker whose activity writes to the store', async () => {
    const { worker, connection } = await createWorker({
      temporal,
      activities: createActivities({
        db: mongo.db,
        metering: unusedMetering,
        usageMetering: unusedMetering,
        meteringConfig: loadMeteringConfig({}),
      }),
      // The smoke test runs one workflow to its end on the main queue alone.
      meteringCalls: false,
    });
    const workflowId = uniqueName('check');
    try {
      const result = await worker.runUntil(
        client.workflow.execute(checkDependencies, { taskQueue: temporal.taskQueue, workflowId }),
      );
      expect(result.store).toBe('ok');
      expect(result.pingMs).toBeGreaterThanOrEqual(0);
    } finally {
      await connection.close();
    }
    const probe = await mongo.db.collection('diagnostic_probes').findOne({ _id: workflowId as never });
    expect(probe).not.toBeNull();
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes) ?? [];
    expect(scheduled).toHaveLength(1);
  });

  it('has the project search attributes registered', async () => {
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: temporal.namespace,
      });
      for (const key of customSearchAttributes) expect(Object.keys(customAttributes ?? {})).toContain(key.name);
    } finally {
      await connection.close();
    }
  });

  it('fails a workflow start on an unknown namespace with a clear error', async () => {
    const other = await connectClient({ ...temporal, namespace: uniqueName('missing-ns') });
    try {
      await expect(
        other.workflow.start(checkDependencies, { taskQueue: temporal.taskQueue, workflowId: uniqueName('x') }),
      ).rejects.toThrow(/namespace/i);
    } finally {
      await other.connection.close();
    }
  });
});
