/**
 * Two decisions the poller makes on every message, without a queue: whether a
 * failed hand-off may ever go to the dead-letter queue (poller/failures.ts),
 * and which ids it still remembers as handed off (poller/recent-ids.ts).
 */
import { ServiceError } from '@temporalio/client';
import { MongoServerError } from 'mongodb';
import { isPermanentFailure } from '../../poller/failures';
import { RecentIds } from '../../poller/recent-ids';

/** A gRPC error as @grpc/grpc-js raises it. */
const grpcError = (code: number) =>
  Object.assign(new Error(`grpc ${code}`), { code, details: `grpc ${code}`, metadata: {} });
const mongoError = (code: number) => new MongoServerError({ message: `mongo ${code}`, code });

describe('isPermanentFailure', () => {
  it.each([
    ['INVALID_ARGUMENT', 3],
    ['PERMISSION_DENIED', 7],
    ['FAILED_PRECONDITION', 9],
    ['OUT_OF_RANGE', 11],
    ['UNIMPLEMENTED', 12],
  ])('gRPC %s will not pass however long we wait', (_name, code) => {
    expect(isPermanentFailure(grpcError(code))).toBe(true);
    expect(isPermanentFailure(new ServiceError('wrapped', { cause: grpcError(code) }))).toBe(true);
  });

  it.each([
    ['UNAVAILABLE', 14],
    ['DEADLINE_EXCEEDED', 4],
    ['RESOURCE_EXHAUSTED', 8],
    ['ABORTED', 10],
    ['INTERNAL', 13],
    ['UNKNOWN', 2],
  ])('gRPC %s is an outage to wait out, never a dead letter', (_name, code) => {
    expect(isPermanentFailure(grpcError(code))).toBe(false);
    expect(isPermanentFailure(new ServiceError('wrapped', { cause: grpcError(code) }))).toBe(false);
  });

  it('a document the store rejects is permanent; a failover or a lock is not', () => {
    for (const code of [2, 9, 14, 121]) expect([code, isPermanentFailure(mongoError(code))]).toEqual([code, true]);
    // NotWritablePrimary, LockTimeout, InterruptedAtShutdown, HostUnreachable.
    for (const code of [10107, 24, 11600, 6])
      expect([code, isPermanentFailure(mongoError(code))]).toEqual([code, false]);
  });

  it('a programming error repeats; the network failing under fetch does not', () => {
    expect(isPermanentFailure(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(true);
    expect(isPermanentFailure(new RangeError('Maximum call stack size exceeded'))).toBe(true);
    expect(isPermanentFailure(new TypeError('fetch failed'))).toBe(false);
    expect(isPermanentFailure(new TypeError('other side closed: socket hang up'))).toBe(false);
    expect(isPermanentFailure(new Error('connection reset'))).toBe(false);
    expect(isPermanentFailure('a string thrown')).toBe(false);
  });
});

describe('RecentIds', () => {
  it('remembers up to its capacity, forgetting the least recently handed off first', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c']) ids.add(id);
    // A redelivery of `a` refreshes it, so `b` is the oldest now.
    ids.add('a');
    ids.add('d');
    expect(['a', 'b', 'c', 'd'].map((id) => ids.has(id))).toEqual([true, false, true, true]);
  });

  it('knows nothing it was not told', () => {
    const ids = new RecentIds(2);
    expect(ids.has('constructor')).toBe(false);
    expect(ids.has('__proto__')).toBe(false);
  });
});
