/**
 * A guard is a route hook that may refuse a request (no session, another site's Origin). Each says
 * here what it answers, where it is defined, so the OpenAPI document declares those answers on every
 * route the guard protects (api/openapi.ts) and cannot drift from the code.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface GuardDoc {
  /** Status → when the guard answers it; the body is always an ErrorResponse. */
  responses: Record<number, string>;
  /** The guard lets only signed-in requests through: routes behind it declare the session security schemes. */
  needsSession?: boolean;
}

type Guard = (request: FastifyRequest, reply: FastifyReply) => unknown;

const docs = new WeakMap<Guard, GuardDoc>();

export function documentGuard<T extends Guard>(guard: T, doc: GuardDoc): T {
  docs.set(guard, doc);
  return guard;
}

/** What the guards among a route's hooks (one function or a list) answer. */
export function guardDocsOf(hooks: unknown): GuardDoc[] {
  return [hooks].flat().flatMap((hook) => {
    const doc = typeof hook === 'function' ? docs.get(hook as Guard) : undefined;
    return doc ? [doc] : [];
  });
}
