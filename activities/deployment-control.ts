/**
 * The platform's deployments, behind one port. The default acts on the
 * deployments in MongoDB; the HTTP one calls the platform's own API. Both are
 * idempotent: stopping a stopped deployment changes nothing, and a deployment
 * is deleted only if it is still stopped by the same stopper, so one that
 * somebody restarted in the meantime survives.
 */
import type { Db } from 'mongodb';
import { deploymentsOf, type DeploymentDoc } from '../lib/store/accounts';

export interface DeploymentView {
  id: string;
  name: string;
  plan: DeploymentDoc['plan'];
  state: DeploymentDoc['state'];
  trialEndsAt?: string;
}

/** `stopped`: stopped by this stopper, now or by an earlier attempt; `already-stopped`: somebody else's stop. */
export type StopOutcome = 'stopped' | 'already-stopped' | 'not-found';
/** `kept`: restarted, or stopped by someone else, since we stopped it. */
export type DeleteOutcome = 'deleted' | 'already-deleted' | 'kept' | 'not-found';

export interface DeploymentControl {
  listRunning(accountId: string): Promise<DeploymentView[]>;
  stop(deploymentId: string, stoppedBy: string): Promise<StopOutcome>;
  deleteIfStillStopped(deploymentId: string, stoppedBy: string): Promise<DeleteOutcome>;
}

const view = (d: DeploymentDoc): DeploymentView => ({
  id: d._id,
  name: d.name,
  plan: d.plan,
  state: d.state,
  ...(d.trialEndsAt ? { trialEndsAt: d.trialEndsAt.toISOString() } : {}),
});

export function mongoDeploymentControl(db: Db): DeploymentControl {
  const deployments = deploymentsOf(db);
  return {
    async listRunning(accountId) {
      return (await deployments.find({ accountId, state: 'running' }).sort({ _id: 1 }).toArray()).map(view);
    },
    async stop(deploymentId, stoppedBy) {
      const result = await deployments.updateOne(
        { _id: deploymentId, state: 'running' },
        { $set: { state: 'stopped', stoppedBy, stoppedAt: new Date() } },
      );
      if (result.modifiedCount === 1) return 'stopped';
      const current = await deployments.findOne({ _id: deploymentId });
      if (!current) return 'not-found';
      // Our own stop, repeated (a retry after a crash that lost the answer): still ours, so it will be deleted.
      return current.state === 'stopped' && current.stoppedBy === stoppedBy ? 'stopped' : 'already-stopped';
    },
    async deleteIfStillStopped(deploymentId, stoppedBy) {
      const result = await deployments.updateOne(
        { _id: deploymentId, state: 'stopped', stoppedBy },
        { $set: { state: 'deleted', deletedAt: new Date() } },
      );
      if (result.modifiedCount === 1) return 'deleted';
      const current = await deployments.findOne({ _id: deploymentId });
      if (!current) return 'not-found';
      return current.state === 'deleted' ? 'already-deleted' : 'kept';
    },
  };
}

/**
 * The platform's deployment API:
 *   GET  {base}/accounts/{accountId}/deployments?state=running → DeploymentView[]
 *   POST {base}/deployments/{id}/stop                {stoppedBy} → {outcome}
 *   POST {base}/deployments/{id}/delete-if-stopped   {stoppedBy} → {outcome}
 * A 5xx or a network error throws, so the activity retries; a 4xx is a bug and throws too.
 */
export function httpDeploymentControl(baseUrl: string, token?: string, fetchImpl: typeof fetch = fetch): DeploymentControl {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetchImpl(new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`), {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`platform API ${method} ${path} answered ${response.status}`);
    return (await response.json()) as T;
  };
  const id = encodeURIComponent;
  return {
    listRunning: (accountId) => call('GET', `accounts/${id(accountId)}/deployments?state=running`),
    stop: async (deploymentId, stoppedBy) =>
      (await call<{ outcome: StopOutcome }>('POST', `deployments/${id(deploymentId)}/stop`, { stoppedBy })).outcome,
    deleteIfStillStopped: async (deploymentId, stoppedBy) =>
      (await call<{ outcome: DeleteOutcome }>('POST', `deployments/${id(deploymentId)}/delete-if-stopped`, { stoppedBy })).outcome,
  };
}
