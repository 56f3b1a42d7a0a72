/**
 * The deployment port, with one contract for both implementations: MongoDB
 * directly, and the platform's HTTP API (here a small platform server over the
 * same store, reached over real HTTP).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { httpDeploymentControl, mongoDeploymentControl, type DeploymentControl } from '../activities/deployment-control';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { deploymentsOf } from '../lib/store/accounts';
import { testServers, uniqueName } from './helpers/test-env';

const TOKEN = 'platform-api-test-token';

/** What the platform would serve; it delegates to the MongoDB implementation. */
async function startPlatformApi(store: DeploymentControl): Promise<{ app: FastifyInstance; url: string; failNext: () => void }> {
  const app = Fastify();
  let fail = false;
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${TOKEN}`) return reply.code(401).send({ error: 'Unauthorized' });
    if (fail) {
      fail = false;
      return reply.code(503).send({ error: 'Unavailable' });
    }
  });
  app.get<{ Params: { id: string } }>('/accounts/:id/deployments', async (request) => store.listRunning(request.params.id));
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>('/deployments/:id/stop', async (request) => ({
    outcome: await store.stop(request.params.id, request.body.stoppedBy),
  }));
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>('/deployments/:id/delete-if-stopped', async (request) => ({
    outcome: await store.deleteIfStillStopped(request.params.id, request.body.stoppedBy),
  }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, failNext: () => (fail = true) };
}

describe('deployment control', () => {
  let mongo: MongoHandle;
  let platform: Awaited<ReturnType<typeof startPlatformApi>>;
  const implementations: Array<[string, () => DeploymentControl]> = [
    ['MongoDB', () => mongoDeploymentControl(mongo.db)],
    ['platform HTTP API', () => httpDeploymentControl(`${platform.url}/`, TOKEN)],
  ];

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('deployments'));
    platform = await startPlatformApi(mongoDeploymentControl(mongo.db));
  });
  afterAll(async () => {
    await platform?.app.close();
    await mongo?.db.dropDatabase();
    await mongo?.close();
  });

  const seed = async () => {
    const accountId = uniqueName('acct');
    const now = new Date();
    await deploymentsOf(mongo.db).insertMany([
      { _id: `${accountId}-trial`, accountId, name: 'trial', plan: 'trial', state: 'running', trialEndsAt: new Date(now.getTime() + 86_400_000), createdAt: now },
      { _id: `${accountId}-prod`, accountId, name: 'prod', plan: 'standard', state: 'running', createdAt: now },
      { _id: `${accountId}-old`, accountId, name: 'old', plan: 'standard', state: 'stopped', createdAt: now },
    ]);
    return accountId;
  };

  it.each(implementations)('%s: lists running deployments and stops one idempotently', async (_name, make) => {
    const control = make();
    const accountId = await seed();
    expect((await control.listRunning(accountId)).map((d) => [d.name, d.plan])).toEqual([
      ['prod', 'standard'],
      ['trial', 'trial'],
    ]);
    expect(await control.stop(`${accountId}-prod`, 'cancel:test')).toBe('stopped');
    const stopped = await deploymentsOf(mongo.db).findOne({ _id: `${accountId}-prod` });
    expect(stopped).toMatchObject({ state: 'stopped', stoppedBy: 'cancel:test' });
    // Repeating our own stop (a retry) changes nothing and still reports it as ours; another stopper's is not.
    expect(await control.stop(`${accountId}-prod`, 'cancel:test')).toBe('stopped');
    expect(await deploymentsOf(mongo.db).findOne({ _id: `${accountId}-prod` })).toEqual(stopped);
    expect(await control.stop(`${accountId}-old`, 'cancel:test')).toBe('already-stopped');
    expect(await control.stop('no-such-deployment', 'cancel:test')).toBe('not-found');
  });

  it.each(implementations)('%s: deletes only what it stopped and what is still stopped', async (_name, make) => {
    const control = make();
    const accountId = await seed();
    await control.stop(`${accountId}-prod`, 'cancel:test');
    await control.stop(`${accountId}-trial`, 'cancel:test');
    // Somebody restarts the trial in the meantime; the old deployment was stopped by someone else long ago.
    await deploymentsOf(mongo.db).updateOne({ _id: `${accountId}-trial` }, { $set: { state: 'running' } });
    expect(await control.deleteIfStillStopped(`${accountId}-prod`, 'cancel:test')).toBe('deleted');
    expect(await control.deleteIfStillStopped(`${accountId}-prod`, 'cancel:test')).toBe('already-deleted');
    expect(await control.deleteIfStillStopped(`${accountId}-trial`, 'cancel:test')).toBe('kept');
    expect(await control.deleteIfStillStopped(`${accountId}-old`, 'cancel:test')).toBe('kept');
    expect(await control.deleteIfStillStopped('no-such-deployment', 'cancel:test')).toBe('not-found');
    const states = Object.fromEntries((await deploymentsOf(mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]));
    expect(states).toEqual({ prod: 'deleted', trial: 'running', old: 'stopped' });
  });

  it('surfaces a platform outage as an error, so the activity retries, and sends the token', async () => {
    const control = httpDeploymentControl(platform.url, TOKEN);
    const accountId = await seed();
    platform.failNext();
    await expect(control.stop(`${accountId}-prod`, 'cancel:test')).rejects.toThrow(/answered 503/);
    expect(await control.stop(`${accountId}-prod`, 'cancel:test')).toBe('stopped');
    await expect(httpDeploymentControl(platform.url, 'wrong-token').listRunning(accountId)).rejects.toThrow(/answered 401/);
  });
});
