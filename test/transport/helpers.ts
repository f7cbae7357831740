import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Code } from "@connectrpc/connect";
import { status } from "@grpc/grpc-js";
import { parse } from "yaml";
import {
  DB_UNAVAILABLE_MESSAGE,
  type ErrorKind,
  INTERNAL_MESSAGE,
  invalidArgument,
  SyncError,
  unauthenticated,
} from "../../src/domain/errors";
import type { SyncCounters } from "../../src/domain/planner";
import type { Credentials } from "../../src/service/auth";
import type { SyncOptions, SyncResult } from "../../src/service/sync-service";
import type { SyncHandler } from "../../src/transport/handler";

export const API_KEY = "vpk_test.secret";
export const CONNECTION_ID = "conn_v5bsqkzsjfk8cgr7hqbbw09t";

export const COUNTERS: SyncCounters = {
  seen: 42,
  addedItems: 2,
  updatedItems: 1,
  removedItems: 4,
  unchangedItems: 35,
  adoptedItems: 4,
};

export const ZERO_COUNTERS: SyncCounters = {
  seen: 0,
  addedItems: 0,
  updatedItems: 0,
  removedItems: 0,
  unchangedItems: 0,
  adoptedItems: 0,
};

type Behaviour = (listId: string, credentials: Credentials) => SyncResult | Promise<SyncResult>;

/**
 * A test double of the service (not of any store): records each call and answers
 * what the test sets. By default it checks credentials in the service's order
 * (API key, then connection) and returns COUNTERS.
 */
export class FakeSyncHandler implements SyncHandler {
  readonly calls: Array<{ listId: string; credentials: Credentials; options: SyncOptions }> = [];
  behaviour: Behaviour = (listId, credentials) => {
    if (credentials.apiKey !== API_KEY) throw unauthenticated();
    if (!credentials.connectionId) throw invalidArgument("x-connection-id header is required");
    if (!/^[0-9]{1,20}$/.test(listId)) throw invalidArgument("listId must be 1-20 decimal digits, e.g. 28489180");
    return { listId, counters: { ...COUNTERS } };
  };

  async syncList(listId: string, credentials: Credentials, options: SyncOptions = {}): Promise<SyncResult> {
    this.calls.push({ listId, credentials: { ...credentials }, options });
    return this.behaviour(listId, credentials);
  }

  succeedWith(counters: SyncCounters): void {
    this.behaviour = (listId) => ({ listId, counters: { ...counters } });
  }

  failWith(error: unknown): void {
    this.behaviour = () => {
      throw error;
    };
  }
}

export interface ErrorCase {
  kind: ErrorKind;
  error: unknown;
  message: string;
  grpc: status;
  http: number;
  connect: Code;
}

/** Expected mappings written out by hand (not read from the table under test). */
export const ERROR_CASES: ErrorCase[] = [
  errorCase(
    "invalid_argument",
    "x-connection-id header is required",
    status.INVALID_ARGUMENT,
    400,
    Code.InvalidArgument,
  ),
  errorCase("unauthenticated", "Unauthorized", status.UNAUTHENTICATED, 401, Code.Unauthenticated),
  errorCase("upstream_failed", "Failed to fetch vault list media", status.UNAVAILABLE, 502, Code.Unavailable),
  errorCase(
    "window_exceeded",
    "list exceeded the maximum fetch window",
    status.RESOURCE_EXHAUSTED,
    502,
    Code.ResourceExhausted,
  ),
  errorCase("db_unavailable", DB_UNAVAILABLE_MESSAGE, status.UNAVAILABLE, 503, Code.Unavailable),
  {
    kind: "internal",
    error: new SyncError("internal", INTERNAL_MESSAGE, { cause: new Error("ER_LOCK_DEADLOCK at knex-store.ts:42") }),
    message: INTERNAL_MESSAGE,
    grpc: status.INTERNAL,
    http: 500,
    connect: Code.Internal,
  },
];

/** A bare Error from deep inside: it must surface as the generic internal message only. */
export const LEAKY_ERROR = new Error("connect ECONNREFUSED mysql://root:hunter2@db:3306");

function errorCase(kind: ErrorKind, message: string, grpc: status, http: number, connect: Code): ErrorCase {
  return { kind, error: new SyncError(kind, message), message, grpc, http, connect };
}

type OpenApi = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content: Record<string, { schema: object; example: unknown }> }> }>
  >;
  [key: string]: unknown;
};

/** The published reference, beside the repo (not in it); missing means the test setup is wrong. */
export function loadReferenceOpenApi(): OpenApi {
  const file = resolve(process.cwd(), "../shared/reference/vault-plus-list-sync.openapi.yaml");
  if (!existsSync(file)) {
    throw new Error(`reference OpenAPI not found at ${file}; run the tests from the repo root beside ../shared`);
  }
  return parse(readFileSync(file, "utf8")) as OpenApi;
}

export const REFERENCE_SYNC_PATH = "/v2/vault-plus/lists/:listId/sync";

export function responseSchema(doc: OpenApi, path: string, status: string): object {
  const response = doc.paths[path]?.put?.responses[status];
  const schema = response?.content["application/json"]?.schema;
  if (!schema) throw new Error(`no application/json schema for ${status} at PUT ${path}`);
  return schema;
}
