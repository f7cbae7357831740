import { Command, Option } from "commander";
import { createSyncService, openStores, type RunningService, startService } from "../app";
import { type Config, ConfigError, loadConfig, requireUpstream } from "../config";
import { SyncError } from "../domain/errors";
import { migrateLatest } from "../store/migrations";
import { SCOPES, type Scope } from "../store/types";
import { createLogger } from "../telemetry/log";
import { telemetry } from "../telemetry/setup";
import { runLocal } from "./local";
import { progressReporter } from "./progress";

/** `vaultplus`: serve, migrate, keys, connections, sync, local (SPEC §5). */
export function buildProgram(): Command {
  const program = new Command("vaultplus")
    .description("Vault+ list sync: keeps the media cache in step with OnlyFans vault lists")
    .showHelpAfterError("(run `vaultplus --help` for usage)");

  program
    .command("serve")
    .description("serve gRPC (VAULTPLUS_GRPC_PORT) and the REST gateway (VAULTPLUS_HTTP_PORT)")
    .option("--migrate", "apply pending database migrations before serving")
    .action(async (opts: { migrate?: boolean }) => {
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      const running = await startService({
        config,
        upstream: requireUpstream(config),
        log,
        migrate: opts.migrate === true,
        telemetry: telemetry(), // serves /metrics
      });
      drainOnSignals(running, log.info.bind(log));
    });

  program
    .command("migrate")
    .description("apply pending database migrations")
    .action(() =>
      withStores(async ({ knex }) => {
        const applied = await migrateLatest(knex);
        console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
      }),
    );

  const keys = program.command("keys").description("manage API keys");
  keys
    .command("create")
    .description("create an API key; its secret is printed once and stored only as a hash")
    .requiredOption("--account <id>", "account id (created when new)")
    .addOption(new Option("--scopes <list>", `comma-separated scopes of ${SCOPES.join(", ")}`).default("ACCOUNT"))
    .option("--json", "print one JSON object")
    .action((opts: { account: string; scopes: string; json?: boolean }) =>
      withStores(async ({ admin }) => {
        const scopes = opts.scopes
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean) as Scope[];
        const key = await admin.createApiKey(opts.account, scopes);
        if (opts.json) console.log(JSON.stringify({ id: key.id, accountId: opts.account, scopes, apiKey: key.token }));
        else console.log(`key id:  ${key.id}\napi key: ${key.token}\n(shown once: store it now)`);
      }),
    );
  keys
    .command("revoke <id>")
    .description("revoke an API key")
    .action((id: string) =>
      withStores(async ({ admin }) => {
        if (!(await admin.revokeApiKey(id))) fail(`no API key with id ${JSON.stringify(id)}`);
        console.log(`revoked ${id}`);
      }),
    );

  const connections = program.command("connections").description("manage connections");
  connections
    .command("create")
    .description("create an active connection for an account")
    .requiredOption("--account <id>", "account id (created when new)")
    .option("--id <id>", "connection id (default: generated)")
    .option("--json", "print one JSON object")
    .action((opts: { account: string; id?: string; json?: boolean }) =>
      withStores(async ({ admin }) => {
        const conn = await admin.createConnection(opts.account, opts.id);
        if (opts.json) console.log(JSON.stringify({ id: conn.id, accountId: conn.accountId, status: "active" }));
        else console.log(`connection ${conn.id} created for account ${conn.accountId}`);
      }),
    );
  connections
    .command("disable <id>")
    .description("disable a connection: syncs for it are refused like for an unknown one")
    .action((id: string) =>
      withStores(async ({ admin }) => {
        if (!(await admin.disableConnection(id))) fail(`no connection with id ${JSON.stringify(id)}`);
        console.log(`disabled ${id}`);
      }),
    );

  program
    .command("sync <listId>")
    .description("sync one list of a connection now, in this process")
    .requiredOption("--connection <id>", "connection id")
    .option("--json", "print one JSON object")
    .action((listId: string, opts: { connection: string; json?: boolean }) =>
      withStores(async (stores, config) => {
        const service = createSyncService(config, stores, requireUpstream(config));
        const progress = progressReporter(process.stderr);
        try {
          const { counters } = await service.syncConnection(opts.connection, listId, { onProgress: progress.update });
          progress.done();
          if (opts.json) console.log(JSON.stringify({ synced: true, listId, ...counters }));
          else {
            console.log(
              `synced list ${listId}: seen ${counters.seen}, added ${counters.addedItems}, updated ${counters.updatedItems}, removed ${counters.removedItems}, unchanged ${counters.unchangedItems}, adopted ${counters.adoptedItems}`,
            );
          }
        } finally {
          progress.done();
        }
      }),
    );

  program
    .command("local")
    .description("local mode (npm start): SQLite, built-in Access API simulator, demo credentials")
    .action(async () => {
      await runLocal();
    });

  return program;
}

async function withStores(
  work: (stores: ReturnType<typeof openStores>, config: Config) => Promise<void>,
): Promise<void> {
  const config = loadConfig();
  const stores = openStores(config);
  try {
    await work(stores, config);
  } finally {
    await stores.close();
  }
}

export function drainOnSignals(running: RunningService, log: (msg: string) => void, boundMs = 15000): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    log(`${signal}: draining in-flight requests`);
    const timer = setTimeout(() => process.exit(1), boundMs);
    timer.unref();
    running
      .close()
      .then(() => telemetry()?.shutdown())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

class CliError extends Error {}

function fail(message: string): never {
  throw new CliError(message);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof SyncError || err instanceof CliError) {
      console.error(`vaultplus: ${err.message}`);
      process.exitCode = err instanceof ConfigError ? 2 : 1;
    } else {
      console.error(`vaultplus: unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  }
}
