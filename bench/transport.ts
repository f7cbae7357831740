import { join } from "node:path";
import autocannon from "autocannon";
import { GrpcSyncClient } from "../test/support/stack";
import { Child } from "./children";
import { createBenchDatabase } from "./database";
import { WARM_LIST_ID, WARM_LIST_SIZE } from "./lists";
import { type LoopOptions, type LoopResult, runLoop } from "./load";
import type { SimulatorInfo } from "./simulator-process";
import { type LatencySummary, latencySummary, type Spread, spread } from "./stats";
import type { TransportServerInfo, TransportServerJob } from "./transport-server";

/**
 * Transport overhead on a no-op re-sync of a 100-item list (3 upstream pages, a few
 * statements): the same SyncService called in-process, over gRPC (grpc-js client), over
 * the REST gateway and over the Connect protocol (autocannon for both HTTP routes).
 * Latency at concurrency 1, throughput at concurrency 32. Calls go round-robin over 32
 * connections so that concurrent calls rarely queue on one connection's lock.
 */

export const TRANSPORTS = ["in-process", "grpc", "rest", "connect"] as const;
export type TransportName = (typeof TRANSPORTS)[number];

export interface TransportOptions {
  serverUrl: string;
  simulator: Child<SimulatorInfo>;
  quick: boolean;
  rounds: number;
  execArgv: string[];
  log: (line: string) => void;
}

export interface RoundFigures {
  c1: LatencySummary;
  c32: LatencySummary & { rps: number; errors: number };
}

export interface TransportResult {
  transport: TransportName;
  c1: { p50: Spread; p99: Spread };
  c32: { rps: Spread; p50: Spread; p99: Spread };
  rounds: RoundFigures[];
}

export interface TransportReport {
  listSize: number;
  concurrency: { latency: 1; throughput: 32 };
  callsAtC1: number;
  secondsAtC32: number;
  results: TransportResult[];
}

const CONNECTIONS = Array.from({ length: 32 }, (_, i) => `t${String(i).padStart(2, "0")}`);

export async function runTransport(options: TransportOptions): Promise<TransportReport> {
  const { simulator, log } = options;
  const dbName = "vp_bench_transport";
  const apiKey = await createBenchDatabase(options.serverUrl, dbName, CONNECTIONS);
  const callsAtC1 = options.quick ? 100 : 300;
  const secondsAtC32 = options.quick ? 1 : 4;

  const server = await Child.start(join(__dirname, "transport-server.js"), "transport server", {
    execArgv: options.execArgv,
  });
  try {
    const info = await server.call<TransportServerInfo>("start", {
      databaseUrl: `${options.serverUrl}${dbName}`,
      upstreamUrl: simulator.info.url,
      upstreamKey: simulator.info.apiKey,
      apiKey,
      connections: CONNECTIONS,
      listId: WARM_LIST_ID,
    } satisfies TransportServerJob);
    const httpUrl = `http://127.0.0.1:${info.httpPort}`;
    const grpc = new GrpcSyncClient(`127.0.0.1:${info.grpcPort}`);
    const connectionFor = (k: number) => CONNECTIONS[k % CONNECTIONS.length] as string;

    const drivers: Record<TransportName, (o: LoopOptions) => Promise<LoopResult>> = {
      "in-process": (o) => server.call<LoopResult>("inProcess", o),
      grpc: (o) => runLoop((k) => grpc.sync(WARM_LIST_ID, { apikey: apiKey, "x-connection-id": connectionFor(k) }), o),
      rest: (o) =>
        httpLoad(
          {
            url: `${httpUrl}/v2/vault-plus/lists/${WARM_LIST_ID}/sync`,
            method: "PUT",
            headers: { apikey: apiKey },
          },
          connectionFor,
          o,
        ),
      connect: (o) =>
        httpLoad(
          {
            url: `${httpUrl}/vaultplus.v1.VaultPlusLists/SyncList`,
            method: "POST",
            headers: { apikey: apiKey, "content-type": "application/json", "connect-protocol-version": "1" },
            body: JSON.stringify({ listId: WARM_LIST_ID }),
          },
          connectionFor,
          o,
        ),
    };

    const rounds = new Map<TransportName, RoundFigures[]>(TRANSPORTS.map((t) => [t, []]));
    for (let round = 0; round < options.rounds; round++) {
      for (const transport of TRANSPORTS) {
        const drive = drivers[transport];
        await drive({ concurrency: 1, count: 20 }).then(check(transport)); // warm-up
        const c1 = check(transport)(await drive({ concurrency: 1, count: callsAtC1 }));
        const c32 = check(transport)(await drive({ concurrency: 32, durationMs: secondsAtC32 * 1000 }));
        const figures: RoundFigures = {
          c1: latencySummary(c1.latencies),
          c32: {
            ...latencySummary(c32.latencies),
            rps: (c32.latencies.length / c32.elapsedMs) * 1000,
            errors: c32.errors,
          },
        };
        rounds.get(transport)?.push(figures);
        log(
          `round ${round + 1} ${transport}: c=1 p50 ${figures.c1.p50.toFixed(2)} ms p99 ${figures.c1.p99.toFixed(2)} ms; c=32 ${figures.c32.rps.toFixed(0)} syncs/s`,
        );
      }
    }
    grpc.close();

    return {
      listSize: WARM_LIST_SIZE,
      concurrency: { latency: 1, throughput: 32 },
      callsAtC1,
      secondsAtC32,
      results: TRANSPORTS.map((transport) => {
        const r = rounds.get(transport) ?? [];
        return {
          transport,
          c1: { p50: spread(r.map((f) => f.c1.p50)), p99: spread(r.map((f) => f.c1.p99)) },
          c32: {
            rps: spread(r.map((f) => f.c32.rps)),
            p50: spread(r.map((f) => f.c32.p50)),
            p99: spread(r.map((f) => f.c32.p99)),
          },
          rounds: r,
        };
      }),
    };
  } finally {
    await server.stop();
  }
}

/** A transport that failed calls is broken, not slow: stop the benchmark. */
function check(transport: TransportName) {
  return (result: LoopResult): LoopResult => {
    if (result.errors > 0) throw new Error(`${transport}: ${result.errors} calls failed, first: ${result.firstError}`);
    return result;
  };
}

/** autocannon with precise per-response latencies (its own histogram rounds to whole ms). */
function httpLoad(
  request: { url: string; method: string; headers: Record<string, string>; body?: string },
  connectionFor: (k: number) => string,
  o: LoopOptions,
): Promise<LoopResult> {
  let k = 0;
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | null = null;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const instance = autocannon(
      {
        url: request.url,
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
        connections: o.concurrency,
        ...(o.count !== undefined ? { amount: o.count } : {}),
        ...(o.durationMs !== undefined ? { duration: o.durationMs / 1000 } : {}),
        timeout: 30,
        requests: [
          {
            setupRequest: (req) => ({ ...req, headers: { ...req.headers, "x-connection-id": connectionFor(k++) } }),
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err);
        const errors = failed + result.errors + result.timeouts;
        if (errors > 0 && firstError === null) firstError = `${result.errors} errors, ${result.timeouts} timeouts`;
        resolve({ latencies, errors, firstError, elapsedMs: performance.now() - t0 });
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
      else {
        failed++;
        firstError ??= `HTTP ${statusCode}`;
      }
    });
  });
}
