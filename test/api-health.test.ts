/** The API's health endpoints against the real store and Temporal, through HTTP. */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { buildApp } from '../api/app';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { connectClient } from '../lib/temporal';
import { testServers, uniqueName } from './helpers/test-env';

describe('API health', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let app: FastifyInstance;
  let url: string;
  const get = (path: string, base = url) => fetch(`${base}${path}`);

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('db'));
    temporal = await connectClient(testServers.temporal());
    app = await buildApp({ db: mongo.db, temporal, logLevel: 'silent' });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app.close();
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
    const degraded = await buildApp({ db: down.db, temporal, logLevel: 'silent' });
    try {
      const ready = await get('/ready', await degraded.listen({ host: '127.0.0.1', port: 0 }));
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
