import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  credentials as grpcCredentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { SyncListRequestSchema, type SyncListResponse, SyncListResponseSchema } from "../../gen/vaultplus/v1/lists_pb";
import { type RunningService, startService } from "../../src/app";
import { loadConfig } from "../../src/config";
import { type AccessApiSimulator, startAccessApiSimulator } from "../../src/simulator/access-api";
import { createLogger } from "../../src/telemetry/log";
import { telemetry } from "../../src/telemetry/setup";
import type { TestDatabase } from "./databases";

/**
 * The whole service on real parts for end-to-end tests: a test database, the Access API
 * simulator (a real HTTP server), and the service serving gRPC and HTTP on port 0.
 */

export const UPSTREAM_KEY = "sim-upstream-key-3f9a7c";

export interface Stack {
  simulator: AccessApiSimulator;
  service: RunningService;
  httpUrl: string;
  grpcTarget: string;
  /** Every log line the service wrote. */
  logs: string[];
  close(): Promise<void>;
}

export interface StackOptions {
  env?: Record<string, string>;
  simulator?: AccessApiSimulator;
}

export async function startStack(db: TestDatabase, options: StackOptions = {}): Promise<Stack> {
  const simulator = options.simulator ?? (await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 }));
  const config = loadConfig({
    VAULTPLUS_DATABASE_URL: db.url,
    VAULTPLUS_HTTP_PORT: "0",
    VAULTPLUS_GRPC_PORT: "0",
    VAULTPLUS_HOST: "127.0.0.1",
    VAULTPLUS_UPSTREAM_TIMEOUT_MS: "2000",
    VAULTPLUS_UPSTREAM_DEADLINE_MS: "8000",
    VAULTPLUS_DB_TIMEOUT_MS: "5000",
    ...options.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const service = await startService({
    config,
    upstream: { url: simulator.url, apiKey: UPSTREAM_KEY },
    log: createLogger("info", sink),
    telemetry: telemetry(), // /metrics, when the process set telemetry up (tests do: test/support/telemetry.ts)
  });
  return {
    simulator,
    service,
    httpUrl: `http://127.0.0.1:${service.httpPort}`,
    grpcTarget: `127.0.0.1:${service.grpcPort}`,
    logs,
    async close() {
      await service.close();
      if (!options.simulator) await simulator.close();
    },
  };
}

/** A tenant: an account with an ACCOUNT-scoped key and one active connection. */
export async function createTenant(
  db: TestDatabase,
  accountId: string,
  connectionId: string,
): Promise<{ apiKey: string; connectionId: string }> {
  const key = await db.admin.createApiKey(accountId, ["ACCOUNT"]);
  await db.admin.createConnection(accountId, connectionId);
  return { apiKey: key.token, connectionId };
}

export interface RestResult {
  status: number;
  body: Record<string, unknown>;
}

export async function restSync(
  httpUrl: string,
  listId: string,
  headers: Record<string, string>,
  init: { body?: string } = {},
): Promise<RestResult> {
  const res = await fetch(`${httpUrl}/v2/vault-plus/lists/${listId}/sync`, {
    method: "PUT",
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const GrpcClient = makeGenericClientConstructor(
  {
    syncList: {
      path: "/vaultplus.v1.VaultPlusLists/SyncList",
      requestStream: false,
      responseStream: false,
      requestSerialize: (listId: string) =>
        Buffer.from(toBinary(SyncListRequestSchema, { $typeName: "vaultplus.v1.SyncListRequest", listId })),
      requestDeserialize: () => "",
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: (bytes: Buffer) => fromBinary(SyncListResponseSchema, bytes),
    },
  },
  "VaultPlusLists",
);

type UnaryCall = (
  listId: string,
  metadata: Metadata,
  callback: (err: ServiceError | null, res?: SyncListResponse) => void,
) => void;

/** A real grpc-js client over a socket. */
export class GrpcSyncClient {
  private readonly client: InstanceType<typeof GrpcClient>;

  constructor(target: string) {
    this.client = new GrpcClient(target, grpcCredentials.createInsecure());
  }

  sync(listId: string, metadata: Record<string, string> = {}): Promise<SyncListResponse> {
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      const call = (this.client as unknown as { syncList: UnaryCall }).syncList.bind(this.client);
      call(listId, md, (err, res) => (err ? reject(err) : resolve(res as SyncListResponse)));
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface ServeProcess {
  child: ChildProcess;
  httpUrl: string;
  grpcTarget: string;
  output: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `vaultplus serve` as its own process (bin/vaultplus.js), for multi-process tests. */
export async function spawnServe(env: Record<string, string>, args: string[] = []): Promise<ServeProcess> {
  const bin = join(__dirname, "..", "..", "..", "bin", "vaultplus.js");
  const child = spawn(process.execPath, [bin, "serve", ...args], {
    env: {
      ...process.env,
      VAULTPLUS_HTTP_PORT: "0",
      VAULTPLUS_GRPC_PORT: "0",
      VAULTPLUS_HOST: "127.0.0.1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.stderr?.on("data", (chunk) => output.push(String(chunk)));
  const ports = await new Promise<{ http: number; grpc: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${output.join("")}`)), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; http_port?: number; grpc_port?: number };
        if (entry.msg === "serving" && entry.http_port && entry.grpc_port) {
          clearTimeout(timer);
          resolve({ http: entry.http_port, grpc: entry.grpc_port });
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}:\n${output.join("")}`)));
  });
  return {
    child,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    grpcTarget: `127.0.0.1:${ports.grpc}`,
    output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
