/**
 * Whether a failed hand-off is worth holding on to. An outage of Temporal, the
 * store or the network must never push messages to the dead-letter queue; only
 * failures that will repeat however long we wait (a rejected argument, a
 * programming error) do, after a few attempts.
 */
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import { MongoServerError } from 'mongodb';

/** gRPC codes that no retry will cure: INVALID_ARGUMENT, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED. */
const PERMANENT_GRPC_CODES = new Set([3, 7, 9, 11, 12]);

/** BadValue, FailedToParse, TypeMismatch, DocumentValidationFailure. */
const PERMANENT_MONGO_CODES = new Set([2, 9, 14, 121]);

function grpcCode(error: unknown): number | undefined {
  if (isGrpcServiceError(error)) return error.code;
  if (error instanceof ServiceError && isGrpcServiceError(error.cause)) return error.cause.code;
  return undefined;
}

export function isPermanentFailure(error: unknown): boolean {
  const code = grpcCode(error);
  if (code !== undefined) return PERMANENT_GRPC_CODES.has(code);
  // Only errors about the document itself; a failover, a lock or a shutdown in progress is an outage to wait out.
  if (error instanceof MongoServerError) return PERMANENT_MONGO_CODES.has(Number(error.code));
  // A programming error repeats; a TypeError from fetch is the network.
  return (error instanceof TypeError && !/fetch|network|socket/i.test(error.message)) || error instanceof RangeError;
}
