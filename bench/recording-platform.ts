/**
 * The platform's deployment API (the contract of
 * activities/subscription/deployment-control.ts) as a small in-memory server
 * that records every call, so a bench can prove what the worker did to each
 * deployment: how often it was stopped and deleted, and that nothing it must
 * keep (a trial, a deployment somebody else stopped, a paying account's) was
 * touched. Same rules as the real one: a stop is idempotent for its stopper,
 * and only the stopper may delete, only while the deployment is still stopped.
 */
import Fastify from 'fastify';
import type { DeleteOutcome, DeploymentView, StopOutcome } from '../activities/subscription/deployment-control';

export interface PlatformDeployment extends DeploymentView {
  accountId: string;
  stoppedBy?: string;
}

export interface PlatformCall {
  operation: 'list' | 'stop' | 'delete';
  /** The account listed, or the deployment stopped or deleted. */
  target: string;
  outcome: string;
  /** Epoch ms, when the answer was sent. */
  at: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A customer's deployments as the benches give them: a trial, a production one, every other customer a
 * staging one, and every third an old one somebody else stopped. A cancellation must stop and delete the
 * production and staging ones only.
 */
export function typicalDeployments(index: number, accountId: string): PlatformDeployment[] {
  const deployment = (name: string, plan: 'trial' | 'standard', state: 'running' | 'stopped') => ({
    id: `${accountId}-${name}`,
    accountId,
    name,
    plan,
    state,
  });
  return [
    { ...deployment('trial', 'trial', 'running'), trialEndsAt: new Date(Date.now() + 7 * DAY_MS).toISOString() },
    deployment('prod', 'standard', 'running'),
    ...(index % 2 === 0 ? [deployment('staging', 'standard', 'running')] : []),
    ...(index % 3 === 0 ? [{ ...deployment('old', 'standard', 'stopped'), stoppedBy: 'platform:maintenance' }] : []),
  ];
}

export async function startRecordingPlatform(deployments: PlatformDeployment[], token: string) {
  const byId = new Map(deployments.map((d) => [d.id, { ...d }]));
  const byAccount = new Map<string, PlatformDeployment[]>();
  for (const d of byId.values()) byAccount.set(d.accountId, [...(byAccount.get(d.accountId) ?? []), d]);
  const calls: PlatformCall[] = [];
  const record = (operation: PlatformCall['operation'], target: string, outcome: string) =>
    calls.push({ operation, target, outcome, at: Date.now() });

  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${token}`) return reply.code(401).send({ error: 'Unauthorized' });
  });
  app.get<{ Params: { id: string } }>('/accounts/:id/deployments', async (request, reply) => {
    const owned = byAccount.get(request.params.id);
    record('list', request.params.id, owned ? 'ok' : 'not-found');
    if (!owned) return reply.code(404).send({ error: 'Not Found' });
    return owned
      .filter((d) => d.state === 'running')
      .map(({ id, name, plan, state, trialEndsAt }): DeploymentView => ({ id, name, plan, state, trialEndsAt }));
  });
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>('/deployments/:id/stop', async (request, reply) => {
    const d = byId.get(request.params.id);
    let outcome: StopOutcome;
    if (!d) outcome = 'not-found';
    else if (d.state === 'running') {
      d.state = 'stopped';
      d.stoppedBy = request.body.stoppedBy;
      outcome = 'stopped';
    } else outcome = d.state === 'stopped' && d.stoppedBy === request.body.stoppedBy ? 'stopped' : 'already-stopped';
    record('stop', request.params.id, outcome);
    return outcome === 'not-found' ? reply.code(404).send({ error: 'Not Found' }) : { outcome };
  });
  app.post<{ Params: { id: string }; Body: { stoppedBy: string } }>(
    '/deployments/:id/delete-if-stopped',
    async (request, reply) => {
      const d = byId.get(request.params.id);
      let outcome: DeleteOutcome;
      if (!d) outcome = 'not-found';
      else if (d.state === 'stopped' && d.stoppedBy === request.body.stoppedBy) {
        d.state = 'deleted';
        outcome = 'deleted';
      } else outcome = d.state === 'deleted' ? 'already-deleted' : 'kept';
      record('delete', request.params.id, outcome);
      return outcome === 'not-found' ? reply.code(404).send({ error: 'Not Found' }) : { outcome };
    },
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    calls,
    stateOf: (id: string) => byId.get(id)?.state,
    close: () => app.close(),
  };
}
