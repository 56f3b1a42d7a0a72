/**
 * The deployment port, with one contract for both implementations: MongoDB
 * directly, and the platform's HTTP API (here a small platform server over the
 * same store, reached over real HTTP).
 */
import { ApplicationFailure } from '@temporalio/common';
import Fastify, { type FastifyReply } from 'fastify';
import type { Db } from 'mongodb';
import {
  DEPLOYMENT_ANSWER_INVALID,
  DEPLOYMENT_REQUEST_REFUSED,
  httpDeploymentControl,
  mongoDeploymentControl,
  type DeploymentControl,
} from '../activities/subscription/deployment-control';
import { connectMongo, type MongoHandle } from '../lib/mongo';
import { deploymentsOf } from '../lib/store/accounts';
import { testServers, uniqueName } from './helpers/test-env';

const TOKEN = 'platform-api-test-token';

interface CannedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * What the platform would serve; it delegates to the MongoDB implementation,
 * except that, like a real platform, it answers 404 for an account without
 * deployments and for a deployment that is not there. `failNext` makes it
 * answer the next request with the given status, body (a string is sent as
 * is) and headers instead; a 2xx with a body of the wrong shape included.
 */
async function startPlatformApi(store: DeploymentControl, db: Db) {
  const app = Fastify();
  const canned: CannedAnswer[] = [];
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${TOKEN}`) return reply.code(401).send({ error: 'Unauthorized' });
    const next = canned.shift();
    if (next) {
      reply.code(next.status).headers(next.headers ?? {});
      if (typeof next.body === 'string') reply.type('text/plain');
      return reply.send(next.body ?? (next.status >= 400 ? { error: `canned ${next.status}` } : undefined));
    }
  });
  const notFound = (reply: FastifyReply) => reply.code(404).send({ error: 'Not Found' });
  app.get<{ Params: { id: string } }>('/accounts/:id/deployments', async (request, reply) =>
    (await deploymentsOf(db).countDocuments({ accountId: request.params.id })) === 0
      ? notFound(reply)
      : store.listRunning(request.params.id),
  );
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>('/deployments/:id/stop', async (request, reply) => {
    const outcome = await store.stop(request.params.id, request.body.stoppedBy);
    return outcome === 'not-found' ? notFound(reply) : { outcome };
  });
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>(
    '/deployments/:id/delete-if-stopped',
    async (request, reply) => {
      const outcome = await store.deleteIfStillStopped(request.params.id, request.body.stoppedBy);
      return outcome === 'not-found' ? notFound(reply) : { outcome };
    },
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url,
    failNext: (status = 503, body?: unknown, headers?: Record<string, string>) =>
      void canned.push({ status, body, headers }),
  };
}

/** What `promise` rejected with; fails the test if it resolved. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
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
    platform = await startPlatformApi(mongoDeploymentControl(mongo.db), mongo.db);
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
      {
        _id: `${accountId}-trial`,
        accountId,
        name: 'trial',
        plan: 'trial',
        state: 'running',
        trialEndsAt: new Date(now.getTime() + 86_400_000),
        createdAt: now,
      },
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
    const states = Object.fromEntries(
      (await deploymentsOf(mongo.db).find({ accountId }).toArray()).map((d) => [d.name, d.state]),
    );
    expect(states).toEqual({ prod: 'deleted', trial: 'running', old: 'stopped' });
  });

  describe('platform HTTP API answers', () => {
    const http = () => httpDeploymentControl(platform.url, TOKEN);
    const expectRetryable = (error: Error, message: RegExp) => {
      expect(error).not.toBeInstanceOf(ApplicationFailure);
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toMatch(message);
    };
    const expectNonRetryable = (error: Error, type: string, message: RegExp) => {
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect(error).toMatchObject({ type, nonRetryable: true });
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain(TOKEN);
    };

    it('404 for a deployment deleted between list and stop, or before the delete: not-found', async () => {
      const control = http();
      const accountId = await seed();
      const listed = await control.listRunning(accountId);
      const prod = listed.find((d) => d.name === 'prod');
      const trial = listed.find((d) => d.name === 'trial');
      if (!prod || !trial) throw new Error(`expected prod and trial in ${JSON.stringify(listed)}`);
      await deploymentsOf(mongo.db).deleteOne({ _id: prod.id });
      expect(await control.stop(prod.id, 'cancel:test')).toBe('not-found');
      expect(await control.stop(trial.id, 'cancel:test')).toBe('stopped');
      await deploymentsOf(mongo.db).deleteOne({ _id: trial.id });
      expect(await control.deleteIfStillStopped(trial.id, 'cancel:test')).toBe('not-found');
    });

    it("the platform's own not-found outcome, with a 200, is not-found too", async () => {
      platform.failNext(200, { outcome: 'not-found' });
      expect(await http().stop('whatever', 'cancel:test')).toBe('not-found');
      platform.failNext(200, { outcome: 'not-found' });
      expect(await http().deleteIfStillStopped('whatever', 'cancel:test')).toBe('not-found');
    });

    it('404 for an account the platform does not know: no deployments', async () => {
      expect(await http().listRunning(uniqueName('unknown-acct'))).toEqual([]);
    });

    it('401 for a wrong token: refused for good, naming method, path and status but never the token', async () => {
      const accountId = await seed();
      const error = await rejectionOf(httpDeploymentControl(platform.url, 'wrong-token').listRunning(accountId));
      expectNonRetryable(
        error,
        DEPLOYMENT_REQUEST_REFUSED,
        new RegExp(`GET accounts/${accountId}/deployments\\?state=running answered 401`),
      );
      expect(error.message).not.toContain('wrong-token');
    });

    it('a refusal that echoes the token back does not leak it into the message', async () => {
      platform.failNext(403, { error: `Forbidden for Bearer ${TOKEN}` });
      const error = await rejectionOf(http().stop('d-1', 'cancel:test'));
      expectNonRetryable(
        error,
        DEPLOYMENT_REQUEST_REFUSED,
        /POST deployments\/d-1\/stop answered 403.*Forbidden for Bearer \[token\]/,
      );
    });

    it.each([400, 409, 422])('%i: refused for good', async (status) => {
      platform.failNext(status);
      const error = await rejectionOf(http().deleteIfStillStopped('d-1', 'cancel:test'));
      expectNonRetryable(
        error,
        DEPLOYMENT_REQUEST_REFUSED,
        new RegExp(`POST deployments/d-1/delete-if-stopped answered ${status}`),
      );
    });

    it('503: a plain error, so the activity retries, and the retry succeeds', async () => {
      const control = http();
      const accountId = await seed();
      platform.failNext(503);
      expectRetryable(
        await rejectionOf(control.stop(`${accountId}-prod`, 'cancel:test')),
        /POST deployments\/.*\/stop answered 503/,
      );
      expect(await control.stop(`${accountId}-prod`, 'cancel:test')).toBe('stopped');
    });

    it('429: retryable, with its Retry-After in the message', async () => {
      platform.failNext(429, { error: 'Too Many Requests' }, { 'retry-after': '30' });
      expectRetryable(await rejectionOf(http().listRunning('acct')), /answered 429 \(rate limited, Retry-After 30\)/);
    });

    it('408: retryable', async () => {
      platform.failNext(408);
      expectRetryable(await rejectionOf(http().stop('d-1', 'cancel:test')), /answered 408/);
    });

    it('a network error: retryable', async () => {
      const closed = Fastify();
      const url = await closed.listen({ host: '127.0.0.1', port: 0 });
      await closed.close();
      const error = await rejectionOf(httpDeploymentControl(url, TOKEN).listRunning('acct'));
      expectRetryable(error, /GET accounts\/acct\/deployments\?state=running failed/);
      expect(error.message).not.toContain(TOKEN);
    });

    it('an unknown outcome, or a stop outcome from a delete: an invalid answer, never retried', async () => {
      platform.failNext(200, { outcome: 'exploded' });
      expectNonRetryable(
        await rejectionOf(http().stop('d-1', 'cancel:test')),
        DEPLOYMENT_ANSWER_INVALID,
        /POST deployments\/d-1\/stop answered outside the contract: \/outcome/,
      );
      platform.failNext(200, { outcome: 'stopped' });
      expectNonRetryable(
        await rejectionOf(http().deleteIfStillStopped('d-1', 'cancel:test')),
        DEPLOYMENT_ANSWER_INVALID,
        /outside the contract/,
      );
    });

    it('a list of the wrong shape, or a body that is not JSON: an invalid answer', async () => {
      platform.failNext(200, { deployments: [] });
      expectNonRetryable(
        await rejectionOf(http().listRunning('acct')),
        DEPLOYMENT_ANSWER_INVALID,
        /GET accounts\/acct\/deployments\?state=running answered outside the contract/,
      );
      platform.failNext(200, [{ id: 'd-1', name: 'prod', plan: 'enterprise', state: 'running' }]);
      expectNonRetryable(await rejectionOf(http().listRunning('acct')), DEPLOYMENT_ANSWER_INVALID, /\/0\/plan/);
      platform.failNext(200, '<html>maintenance</html>');
      expectNonRetryable(
        await rejectionOf(http().listRunning('acct')),
        DEPLOYMENT_ANSWER_INVALID,
        /not JSON: <html>maintenance<\/html>/,
      );
    });

    it('passes on only the fields of the contract', async () => {
      platform.failNext(200, [{ id: 'd-1', name: 'prod', plan: 'standard', state: 'running', region: 'eu-west-1' }]);
      expect(await http().listRunning('acct')).toEqual([
        { id: 'd-1', name: 'prod', plan: 'standard', state: 'running' },
      ]);
    });
  });
});
