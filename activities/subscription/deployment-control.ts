/**
 * The platform's deployments, behind one port. The default acts on the
 * deployments in MongoDB; the HTTP one calls the platform's own API. Both are
 * idempotent: stopping a stopped deployment changes nothing, and a deployment
 * is deleted only if it is still stopped by the same stopper, so one that
 * somebody restarted in the meantime survives.
 *
 * The HTTP one fails clearly, so the activity retries only what a retry can
 * fix: a 404 is an outcome (`[]`, `'not-found'`), a request the platform
 * refuses (other 4xx) or an answer that breaks the contract is a
 * non-retryable ApplicationFailure (`DeploymentRequestRefused`,
 * `DeploymentAnswerInvalid`), and outages, timeouts, 408 and 429 are plain
 * errors the retry policy backs off from. The two type names are exported
 * for `nonRetryableErrorTypes`; this module pulls in the MongoDB store, so a
 * workflow should not import them from here at runtime (only `import type`).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from 'mongodb';
import { checkWith, StringEnum, Type, type Static, type TSchema } from '../../lib/schema';
import { DEPLOYMENT_STATES, deploymentsOf, type DeploymentDoc } from '../../lib/store/accounts';

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

/** A 4xx the platform will answer the same way however often it is asked (bad request, auth, conflict): never retried. */
export const DEPLOYMENT_REQUEST_REFUSED = 'DeploymentRequestRefused';
/** A 2xx whose body breaks the contract (not JSON, wrong shape, unknown outcome): a retry would get the same answer. */
export const DEPLOYMENT_ANSWER_INVALID = 'DeploymentAnswerInvalid';

const DeploymentViewSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String(),
  plan: StringEnum(['trial', 'standard'] as const),
  state: StringEnum(DEPLOYMENT_STATES),
  trialEndsAt: Type.Optional(Type.String()),
});
const DeploymentList = Type.Array(DeploymentViewSchema);
const StopAnswer = Type.Object({ outcome: StringEnum(['stopped', 'already-stopped', 'not-found'] as const) });
const DeleteAnswer = Type.Object({ outcome: StringEnum(['deleted', 'already-deleted', 'kept', 'not-found'] as const) });

/** A 404: the account or deployment is not (or no longer) on the platform. */
const NOT_FOUND = Symbol('not found');

/** How long a platform call may take before it counts as a (retryable) network failure. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The platform's deployment API:
 *   GET  {base}/accounts/{accountId}/deployments?state=running → DeploymentView[]
 *   POST {base}/deployments/{id}/stop                {stoppedBy} → {outcome}
 *   POST {base}/deployments/{id}/delete-if-stopped   {stoppedBy} → {outcome}
 * How each answer ends the activity:
 * - 2xx: the body is checked against the contract; one that breaks it is a
 *   non-retryable `DeploymentAnswerInvalid` (a retry gets the same answer).
 * - 404: the thing is gone, which is an outcome, not an error: the list of an
 *   account the platform does not know is `[]`, and a deployment deleted
 *   between the list and the stop (or the delete) is `'not-found'`.
 * - 408, 429 (its `Retry-After` in the message), 5xx, network errors and
 *   timeouts: a plain Error, so the activity's retry policy backs off and retries.
 * - Any other 4xx (400, 401, 403, 409, 422…), or a status outside these:
 *   a non-retryable `DeploymentRequestRefused`, naming method, path and status.
 * No message ever carries the token.
 */
export function httpDeploymentControl(
  baseUrl: string,
  token?: string,
  fetchImpl: typeof fetch = fetch,
): DeploymentControl {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  /** What the platform said, shortened and with the token masked, should it echo the request back. */
  const excerpt = (text: string): string => {
    const masked = token ? text.split(token).join('[token]') : text;
    const oneLine = masked.replace(/\s+/g, ' ').trim();
    return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine;
  };

  /** The parsed JSON of a 2xx answer, or NOT_FOUND for a 404; throws for everything else. */
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const what = `platform API ${method} ${path}`;
    let response: Response;
    let text: string;
    try {
      response = await fetchImpl(new URL(path, base), {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      // Read inside the try: a connection lost or timed out halfway through the body is transient too.
      text = await response.text();
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(`${what} failed: ${excerpt(reason)}`, { cause: error });
    }
    const status = response.status;
    if (response.ok) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw ApplicationFailure.nonRetryable(
          `${what} answered ${status} with a body that is not JSON: ${excerpt(text)}`,
          DEPLOYMENT_ANSWER_INVALID,
        );
      }
    }
    if (status === 404) return NOT_FOUND;
    const said = text ? `: ${excerpt(text)}` : '';
    if (status === 429) {
      const retryAfter = response.headers.get('retry-after');
      throw new Error(
        `${what} answered 429 (rate limited${retryAfter ? `, Retry-After ${excerpt(retryAfter).slice(0, 40)}` : ''})${said}`,
      );
    }
    if (status === 408 || status >= 500) throw new Error(`${what} answered ${status}${said}`);
    throw ApplicationFailure.nonRetryable(
      `${what} answered ${status}, which a retry will not change${said}`,
      DEPLOYMENT_REQUEST_REFUSED,
    );
  };

  const checked = <T extends TSchema>(schema: T, what: string, json: unknown): Static<T> => {
    const parsed = checkWith(schema, json);
    if (parsed.ok) return parsed.value;
    const issues = parsed.issues
      .slice(0, 3)
      .map((issue) => `${issue.path || '(root)'} ${issue.message}`)
      .join('; ');
    throw ApplicationFailure.nonRetryable(
      `platform API ${what} answered outside the contract: ${issues}`,
      DEPLOYMENT_ANSWER_INVALID,
    );
  };

  const id = encodeURIComponent;
  return {
    async listRunning(accountId) {
      const path = `accounts/${id(accountId)}/deployments?state=running`;
      const json = await call('GET', path);
      if (json === NOT_FOUND) return [];
      // Only the contract's fields travel on, whatever else the platform adds.
      return checked(DeploymentList, `GET ${path}`, json).map((d) => ({
        id: d.id,
        name: d.name,
        plan: d.plan,
        state: d.state,
        ...(d.trialEndsAt !== undefined ? { trialEndsAt: d.trialEndsAt } : {}),
      }));
    },
    async stop(deploymentId, stoppedBy) {
      const path = `deployments/${id(deploymentId)}/stop`;
      const json = await call('POST', path, { stoppedBy });
      return json === NOT_FOUND ? 'not-found' : checked(StopAnswer, `POST ${path}`, json).outcome;
    },
    async deleteIfStillStopped(deploymentId, stoppedBy) {
      const path = `deployments/${id(deploymentId)}/delete-if-stopped`;
      const json = await call('POST', path, { stoppedBy });
      return json === NOT_FOUND ? 'not-found' : checked(DeleteAnswer, `POST ${path}`, json).outcome;
    },
  };
}
