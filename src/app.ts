import type { Knex } from "knex";
import type { Config } from "./config";
import { syncLogObserver } from "./service/sync-log";
import { type SyncObserver, SyncService } from "./service/sync-service";
import { AdminStore } from "./store/admin";
import { createKnex } from "./store/db";
import { classifyDbError, KnexStore } from "./store/knex-store";
import { migrateLatest, migrationStatus } from "./store/migrations";
import type { Logger } from "./telemetry/log";
import { startGrpcServer } from "./transport/grpc/server";
import { startHttpServer } from "./transport/http/server";
import { HttpAccessApi } from "./upstream/http-client";

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

export function openStores(config: Config): Stores {
  const knex = createKnex(config.databaseUrl, { dbTimeoutMs: config.dbTimeoutMs });
  return {
    knex,
    store: new KnexStore(knex, { dbTimeoutMs: config.dbTimeoutMs }),
    admin: new AdminStore(knex),
    close: () => knex.destroy(),
  };
}

export interface Readiness {
  ready: boolean;
  reason?: string;
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

export function createSyncService(
  config: Config,
  stores: Stores,
  upstream: { url: string; apiKey: string },
  observers: SyncObserver[],
): SyncService {
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
    }),
    observer: {
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

export async function startService(options: {
  config: Config;
  upstream: { url: string; apiKey: string };
  log: Logger;
  migrate?: boolean;
  observers?: SyncObserver[];
}): Promise<RunningService> {
  const { config, log } = options;
  const stores = openStores(config);
  try {
    if (options.migrate) {
      const applied = await migrateLatest(stores.knex);
      log.info({ applied }, "migrations applied");
    }
    const service = createSyncService(config, stores, options.upstream, [
      syncLogObserver(log),
      ...(options.observers ?? []),
    ]);
    const grpc = await startGrpcServer({ handler: service }, { host: config.host, port: config.grpcPort });
    const http = await startHttpServer(
      { handler: service, readiness: () => checkReadiness(stores) },
      { host: config.host, port: config.httpPort },
    ).catch(async (err: unknown) => {
      await grpc.close();
      throw err;
    });
    log.info({ http_port: http.port, grpc_port: grpc.port }, "serving");
    return {
      httpPort: http.port,
      grpcPort: grpc.port,
      service,
      stores,
      async close() {
        await Promise.all([http.close(), grpc.close()]);
        await stores.close();
      },
    };
  } catch (err) {
    await stores.close();
    throw err;
  }
}
