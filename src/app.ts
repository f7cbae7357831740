import type { Knex } from "knex";
import type { Config } from "./config";
import { syncLogObserver } from "./service/sync-log";
import { type SyncObserver, SyncService } from "./service/sync-service";
import { AdminStore } from "./store/admin";
import { createKnex, describeDatabaseUrl } from "./store/db";
import { classifyDbError, KnexStore } from "./store/knex-store";
import { migrateLatest, migrationStatus } from "./store/migrations";
import type { Logger } from "./telemetry/log";
import { createSyncMetrics } from "./telemetry/metrics";
import type { Telemetry } from "./telemetry/setup";
import { GrpcHealth } from "./transport/grpc/health";
import { startGrpcServer } from "./transport/grpc/server";
import { type Readiness, startHttpServer } from "./transport/http/server";
import { HttpAccessApi, type UpstreamObserver } from "./upstream/http-client";

/**
 * The composition root: one place that turns configuration into running parts.
 * Everything else receives its dependencies.
 */

export interface Stores {
  knex: Knex;
  store: KnexStore;
  admin: AdminStore;
  close(): Promise<void>;
}

/** `log` receives knex's own warnings; without it they go to stderr as plain lines. */
export function openStores(config: Config, log?: Logger): Stores {
  const knex = createKnex(config.databaseUrl, {
    dbTimeoutMs: config.dbTimeoutMs,
    ...(log
      ? {
          log: (level, message) =>
            log[level === "error" ? "error" : level === "debug" ? "debug" : "warn"]({ component: "knex" }, message),
        }
      : {}),
  });
  return {
    knex,
    store: new KnexStore(knex, { dbTimeoutMs: config.dbTimeoutMs }),
    admin: new AdminStore(knex),
    close: () => knex.destroy(),
  };
}

export async function checkReadiness(stores: Stores): Promise<Readiness> {
  try {
    await stores.store.ping();
    const status = await migrationStatus(stores.knex);
    if (status.pending > 0) {
      return {
        ready: false,
        reason: `${status.pending} database migration(s) pending: run \`vaultplus migrate\` or serve with --migrate`,
      };
    }
    return { ready: true };
  } catch (err) {
    return { ready: false, reason: classifyDbError(err)?.message ?? "database check failed" };
  }
}

export interface ServiceWiring {
  observers?: SyncObserver[];
  upstreamObserver?: UpstreamObserver;
}

export function createSyncService(
  config: Config,
  stores: Stores,
  upstream: { url: string; apiKey: string },
  wiring: ServiceWiring = {},
): SyncService {
  const observers = wiring.observers ?? [];
  return new SyncService({
    credentials: stores.store,
    store: stores.store,
    upstream: new HttpAccessApi({
      baseUrl: upstream.url,
      apiKey: upstream.apiKey,
      pageSize: config.upstreamPageSize,
      maxListItems: config.maxListItems,
      timeoutMs: config.upstreamTimeoutMs,
      deadlineMs: config.upstreamDeadlineMs,
      ...(wiring.upstreamObserver ? { observer: wiring.upstreamObserver } : {}),
    }),
    observer: {
      syncStarted: () => {
        for (const o of observers) o.syncStarted?.();
      },
      syncFinished: (event) => {
        for (const o of observers) o.syncFinished(event);
      },
    },
  });
}

export interface RunningService {
  httpPort: number;
  grpcPort: number;
  service: SyncService;
  stores: Stores;
  /** Drains in-flight requests (bounded), then releases the database. */
  close(): Promise<void>;
}

/** How often gRPC health follows readiness (database reachable, migrations current). */
const HEALTH_POLL_MS = 5000;

export async function startService(options: {
  config: Config;
  upstream: { url: string; apiKey: string };
  log: Logger;
  migrate?: boolean;
  telemetry?: Telemetry | undefined;
}): Promise<RunningService> {
  const { config, log } = options;
  const stores = openStores(config, log);
  const closers: Array<() => Promise<void>> = [];
  try {
    if (options.migrate) {
      const applied = await migrateLatest(stores.knex);
      log.info({ applied }, applied.length ? "migrations applied" : "database is up to date");
    }
    const metrics = createSyncMetrics();
    const service = createSyncService(config, stores, options.upstream, {
      observers: [syncLogObserver(log), metrics],
      upstreamObserver: metrics.upstream,
    });

    const health = new GrpcHealth(false);
    const readiness = async (): Promise<Readiness> => {
      const state = await checkReadiness(stores);
      health.setServing(state.ready);
      return state;
    };
    const grpc = await startGrpcServer({ handler: service, health }, { host: config.host, port: config.grpcPort });
    closers.push(() => grpc.close());
    const metricsHandler = options.telemetry?.metricsHandler;
    const http = await startHttpServer(
      { handler: service, readiness, ...(metricsHandler ? { metrics: metricsHandler } : {}) },
      { host: config.host, port: config.httpPort },
    );
    closers.push(() => http.close());
    await readiness();
    const poll = setInterval(() => void readiness().catch(() => undefined), HEALTH_POLL_MS);
    poll.unref();

    log.info(
      { http_port: http.port, grpc_port: grpc.port, database: describeDatabaseUrl(config.databaseUrl) },
      "serving",
    );
    return {
      httpPort: http.port,
      grpcPort: grpc.port,
      service,
      stores,
      async close() {
        clearInterval(poll);
        await Promise.all(closers.map((close) => close()));
        await stores.close();
      },
    };
  } catch (err) {
    await Promise.all(closers.map((close) => close()));
    await stores.close();
    throw err;
  }
}
