import { Writable } from "node:stream";
import { type RunningService, startService } from "../src/app";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/telemetry/log";
import { serveParent } from "./children";
import { type LoopOptions, type LoopResult, runLoop } from "./load";

/**
 * The service for the transport comparison, in its own process: startService as `serve`
 * wires it (gRPC and HTTP ports, log and metrics observers; log lines go to a discarding
 * sink). The in-process figure is measured here too, by calling SyncService directly.
 */

export interface TransportServerJob {
  databaseUrl: string;
  upstreamUrl: string;
  upstreamKey: string;
  apiKey: string;
  connections: string[];
  listId: string;
}

export interface TransportServerInfo {
  httpPort: number;
  grpcPort: number;
}

let running: RunningService | null = null;
let job: TransportServerJob | null = null;

async function start(j: TransportServerJob): Promise<TransportServerInfo> {
  job = j;
  const config = loadConfig({
    VAULTPLUS_DATABASE_URL: j.databaseUrl,
    VAULTPLUS_HTTP_PORT: "0",
    VAULTPLUS_GRPC_PORT: "0",
    VAULTPLUS_HOST: "127.0.0.1",
  });
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  running = await startService({
    config,
    upstream: { url: j.upstreamUrl, apiKey: j.upstreamKey },
    log: createLogger("info", discard),
  });
  // Every connection's first sync, so that what is measured is the no-op re-sync.
  for (const connectionId of j.connections)
    await running.service.syncList(j.listId, { apiKey: j.apiKey, connectionId });
  return { httpPort: running.httpPort, grpcPort: running.grpcPort };
}

async function inProcess(options: LoopOptions): Promise<LoopResult> {
  if (!running || !job) throw new Error("start first");
  const { service } = running;
  const { apiKey, listId, connections } = job;
  return runLoop(
    (k) => service.syncList(listId, { apiKey, connectionId: connections[k % connections.length] as string }),
    options,
  );
}

if (require.main === module) {
  serveParent({
    start: (j: TransportServerJob) => start(j),
    inProcess: (o: LoopOptions) => inProcess(o),
  });
  process.on("disconnect", () => void running?.close());
}
