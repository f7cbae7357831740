import { Code } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { asSyncError, type ErrorKind, type SyncError } from "../domain/errors";

export interface TransportStatus {
  grpc: GrpcStatus;
  http: number;
  connect: Code;
}

/** The one place an ErrorKind becomes a status; every transport reads it. */
export const STATUS_TABLE: Readonly<Record<ErrorKind, TransportStatus>> = {
  invalid_argument: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, connect: Code.InvalidArgument },
  unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, connect: Code.Unauthenticated },
  upstream_failed: { grpc: GrpcStatus.UNAVAILABLE, http: 502, connect: Code.Unavailable },
  window_exceeded: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 502, connect: Code.ResourceExhausted },
  db_unavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503, connect: Code.Unavailable },
  internal: { grpc: GrpcStatus.INTERNAL, http: 500, connect: Code.Internal },
};

export interface MappedError extends TransportStatus {
  /** Safe to show a caller: a SyncError's own text, or the generic internal message. */
  message: string;
  error: SyncError;
}

/** Maps anything thrown by a handler; non-SyncErrors become `internal` with no internals. */
export function mapError(err: unknown): MappedError {
  const error = asSyncError(err);
  return { ...STATUS_TABLE[error.kind], message: error.message, error };
}
