/**
 * Every failure a caller can meet is a SyncError of one kind; transports map the
 * kind to a status through one table (src/transport/status-table.ts), and the
 * message is the human-readable text both REST and gRPC return.
 */
export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "upstream_failed"
  | "window_exceeded"
  | "db_unavailable"
  | "internal";

export class SyncError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SyncError";
    this.kind = kind;
  }
}

export const UNAUTHORIZED_MESSAGE = "Unauthorized";
export const INTERNAL_MESSAGE =
  "internal error: the sync did not complete and changed nothing; retry, and report it to the operator if it persists";
export const DB_UNAVAILABLE_MESSAGE = "database unavailable: the sync changed nothing; retry in a few seconds";

export function unauthenticated(): SyncError {
  return new SyncError("unauthenticated", UNAUTHORIZED_MESSAGE);
}

export function invalidArgument(message: string): SyncError {
  return new SyncError("invalid_argument", message);
}

/** Anything that is not a SyncError becomes `internal`, with no internals in its message. */
export function asSyncError(err: unknown): SyncError {
  if (err instanceof SyncError) return err;
  return new SyncError("internal", INTERNAL_MESSAGE, { cause: err });
}
