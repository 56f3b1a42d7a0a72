/**
 * How the world reaches a subscription workflow: AWS's events (signal), the
 * buyer's link requests and operators' actions (updates), and the state query.
 * Handlers only record a request and wait for the workflow to act on it; each
 * update answers after its effect is visible, and its validator refuses what
 * can no longer happen, as a non-retryable answer.
 */
import { ApplicationFailure, condition, log, setHandler } from '@temporalio/workflow';
import {
  abortDeletionUpdate,
  awsEventSignal,
  cancelLinkUpdate,
  confirmUnsubscribedUpdate,
  deleteNowUpdate,
  extendGracePeriodUpdate,
  requestLinkUpdate,
  restoreSubscriptionUpdate,
  retryNowUpdate,
  retrySyncUpdate,
  subscriptionStateQuery,
} from '../../domain/subscription-messages';
import { SUBSCRIPTION_PHASES, type SubscriptionPhase } from '../../domain/subscription-model';
import type { SubscriptionState } from './state';
import { inputField } from '../common/update-input';

const HOUR_MS = 3_600_000;

/** Where each operator request can still take effect (retryNow: wherever a step failed). */
export const OPERATOR_PHASES: Record<Exclude<keyof OperatorRequests, 'retryNow'>, SubscriptionPhase[]> = {
  retrySync: ['sync-timed-out'],
  cancelLink: ['awaiting-aws', 'sync-timed-out'],
  confirmUnsubscribed: ['awaiting-unsubscribe-success', 'stopping'],
  deleteNow: ['grace-period', 'deleting'],
  abortDeletion: ['grace-period'],
  restore: ['grace-period', 'deleted', 'cancelled'],
  dueChanged: ['grace-period'],
};

/** Operator requests, taken by the phase they belong to. */
export interface OperatorRequests {
  retrySync: boolean;
  cancelLink: boolean;
  confirmUnsubscribed: boolean;
  deleteNow: boolean;
  abortDeletion: boolean;
  restore: boolean;
  dueChanged: boolean;
  retryNow: boolean;
}

export function noOperatorRequests(): OperatorRequests {
  return {
    retrySync: false,
    cancelLink: false,
    confirmUnsubscribed: false,
    deleteNow: false,
    abortDeletion: false,
    restore: false,
    dueChanged: false,
    retryNow: false,
  };
}

export function registerHandlers(sub: SubscriptionState, ops: OperatorRequests): void {
  setHandler(awsEventSignal, (event) => sub.receive(event));
  setHandler(subscriptionStateQuery, () => sub.view());
  setHandler(
    requestLinkUpdate,
    async ({ accountId }) => {
      const pending = sub.request(accountId);
      await condition(() => pending.answer !== undefined);
      await sub.published();
      return pending.answer!;
    },
    { validator: (request: unknown) => assertAccountId(inputField(request, 'accountId')) },
  );
  const operatorUpdate = <R>(
    flag: keyof OperatorRequests,
    phases: SubscriptionPhase[],
    done: () => boolean,
    result: () => R,
  ) => ({
    handler: async () => {
      ops[flag] = true;
      await condition(done);
      // Answered once the pages and the search attributes show it too.
      await sub.published();
      return result();
    },
    validator: () => assertPhase(sub.phase, phases, flag),
  });
  const retryNow = operatorUpdate(
    'retryNow',
    [...SUBSCRIPTION_PHASES],
    () => !ops.retryNow,
    () => sub.view(),
  );
  setHandler(retryNowUpdate, retryNow.handler, {
    validator: () => {
      if (!sub.failure)
        refuse(
          `retryNow is only possible after a step failed; the subscription is "${sub.phase}" and nothing failed`,
          'InvalidPhase',
        );
    },
  });
  for (const [definition, flag, phases, done] of [
    [retrySyncUpdate, 'retrySync', ['sync-timed-out'], () => sub.phase !== 'sync-timed-out'],
    [cancelLinkUpdate, 'cancelLink', ['awaiting-aws', 'sync-timed-out'], () => !ops.cancelLink],
    // Answered once the deployments are stopped, not when the stop begins.
    [
      confirmUnsubscribedUpdate,
      'confirmUnsubscribed',
      ['awaiting-unsubscribe-success'],
      () => !ops.confirmUnsubscribed && sub.phase !== 'stopping',
    ],
  ] as const) {
    const { handler, validator } = operatorUpdate(flag, [...phases], done, () => sub.view());
    setHandler(definition, handler, { validator });
  }
  const restore = operatorUpdate(
    'restore',
    ['grace-period', 'deleted', 'cancelled'],
    () => !ops.restore,
    () => sub.view(),
  );
  setHandler(
    restoreSubscriptionUpdate,
    async ({ reason }) => {
      log.warn('Operator restores a cancelled subscription', { reason, owner: sub.owner });
      return restore.handler();
    },
    {
      validator: (input: unknown) => {
        restore.validator();
        if (!sub.owner)
          refuse('restoreSubscription needs a linked platform account; this subscription has none', 'InvalidPhase');
        const reason = inputField(input, 'reason');
        if (typeof reason !== 'string' || reason.trim().length < 3)
          refuse('give the reason (for the audit trail)', 'InvalidRequest');
      },
    },
  );
  const cancellation = () => sub.cancellation!;
  for (const [definition, flag, done] of [
    [deleteNowUpdate, 'deleteNow', () => !ops.deleteNow],
    [abortDeletionUpdate, 'abortDeletion', () => !ops.abortDeletion],
  ] as const) {
    const { handler, validator } = operatorUpdate(flag, ['grace-period'], done, cancellation);
    setHandler(definition, handler, { validator });
  }
  setHandler(
    extendGracePeriodUpdate,
    async ({ hours }) => {
      const due = Date.parse(sub.cancellation!.deletionDueAt!) + hours * HOUR_MS;
      sub.cancellation!.deletionDueAt = new Date(due).toISOString();
      ops.dueChanged = true;
      await sub.published();
      return sub.cancellation!;
    },
    {
      validator: (extension: unknown) => {
        assertPhase(sub.phase, ['grace-period'], 'extendGracePeriod');
        if (!sub.cancellation?.deletionDueAt)
          refuse('extendGracePeriod: the deletion is no longer scheduled', 'InvalidPhase');
        const hours = inputField(extension, 'hours');
        if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > 24 * 30) {
          refuse('hours must be a number above 0 and at most 720', 'InvalidRequest');
        }
      },
    },
  );
}

// Refused requests are answers, not faults: non-retryable, with no stack worth logging.
function refuse(message: string, type: 'InvalidRequest' | 'InvalidPhase'): never {
  throw ApplicationFailure.create({ message, type, nonRetryable: true });
}

function assertAccountId(accountId: unknown): void {
  if (typeof accountId !== 'string' || !/^[A-Za-z0-9_.:@-]{1,128}$/.test(accountId))
    refuse('accountId must be a platform account id', 'InvalidRequest');
}

function assertPhase(phase: SubscriptionPhase, allowed: SubscriptionPhase[], action: string): void {
  if (!allowed.includes(phase))
    refuse(`${action} is only possible in ${allowed.join(' or ')}; the subscription is "${phase}"`, 'InvalidPhase');
}
