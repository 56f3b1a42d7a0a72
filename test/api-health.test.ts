/** The API's health endpoints against the real store and Temporal, through HTTP. */
import type { Client } from '@temporalio/client';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { connectClient } from '../lib/temporal';
import { startApi, type RunningApi } from './helpers/api';
import { testServers, uniqueName } from './helpers/test-env';

describe('API health', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;
  const get = (path: string, base = api.url) => fetch(`${base}${path}`);

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('db'));
    temporal = await connectClient(testServers.temporal());
    api = await startApi({ db: mongo.db, temporal });
  });
  afterAll(async () => {
    await api.close();
    await temporal.connection.close();
    await mongo.close();
  });

  it('is live and ready when the store and Temporal answer', async () => {
    expect(await (await get('/health')).json()).toEqual({ status: 'ok' });
    const ready = await get('/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { mongodb: 'ok', temporal: 'ok' } });
  });

  it('reports 503 naming the dependency that fails', async () => {
    const down = await connectMongo(testServers.mongoUri(), uniqueName('db'));
    await down.close();
    const degraded = await startApi({ db: down.db, temporal });
    try {
      const ready = await get('/ready', degraded.url);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'degraded', checks: { mongodb: 'failed', temporal: 'ok' } });
    } finally {
      await degraded.close();
    }
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await get('/nope');
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'NotFound' });
  });
});
