import type { Knex } from "knex";

/**
 * Initial schema. Times are BIGINT epoch milliseconds so MariaDB/MySQL and SQLite
 * behave identically. On MySQL, tables are InnoDB utf8mb4 with a binary collation:
 * ids are case-sensitive ("Conn" and "conn" are different connections), as in SQLite.
 */

const TABLES = [
  "work_queue",
  "sync_runs",
  "list_baseline_items",
  "list_syncs",
  "cache_entries",
  "connections",
  "api_keys",
  "accounts",
] as const;

export async function up(knex: Knex): Promise<void> {
  const mysql = knex.client.config.client === "mysql2";
  const create = (name: string, build: (t: Knex.CreateTableBuilder) => void) =>
    knex.schema.createTable(name, (t) => {
      if (mysql) {
        t.engine("InnoDB");
        t.charset("utf8mb4");
        t.collate("utf8mb4_bin");
      }
      build(t);
    });

  await create("accounts", (t) => {
    t.string("id", 64).primary();
    t.bigInteger("created_at").notNullable();
  });

  await create("api_keys", (t) => {
    t.string("id", 16).primary();
    t.string("account_id", 64).notNullable().references("id").inTable("accounts");
    t.specificType("secret_hash", "char(64)").notNullable();
    t.string("scopes", 64).notNullable();
    t.bigInteger("revoked_at").nullable();
    t.bigInteger("created_at").notNullable();
    t.index(["account_id"], "api_keys_account_id_idx");
  });

  await create("connections", (t) => {
    t.string("id", 64).primary();
    t.string("account_id", 64).notNullable().references("id").inTable("accounts");
    t.string("status", 16).notNullable().defaultTo("active");
    // Bumped by every sync: the UPDATE is the cross-process per-connection lock.
    t.bigInteger("lock_version").notNullable().defaultTo(0);
    t.bigInteger("created_at").notNullable();
    t.index(["account_id"], "connections_account_id_idx");
  });

  await create("cache_entries", (t) => {
    t.string("connection_id", 64).notNullable();
    t.bigInteger("media_id").notNullable();
    t.specificType("fingerprint", "char(64)").notNullable();
    t.text("metadata").notNullable();
    t.integer("metadata_version").notNullable();
    t.string("state", 16).notNullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.primary(["connection_id", "media_id"]);
  });

  await create("list_syncs", (t) => {
    t.string("connection_id", 64).notNullable();
    t.string("list_id", 20).notNullable();
    t.bigInteger("first_synced_at").notNullable();
    t.bigInteger("last_synced_at").notNullable();
    t.integer("item_count").notNullable();
    t.primary(["connection_id", "list_id"]);
  });

  await create("list_baseline_items", (t) => {
    t.string("connection_id", 64).notNullable();
    t.string("list_id", 20).notNullable();
    t.bigInteger("media_id").notNullable();
    t.specificType("fingerprint", "char(64)").notNullable();
    t.bigInteger("first_added_at").notNullable();
    t.bigInteger("last_seen_at").notNullable();
    t.bigInteger("last_synced_at").notNullable();
    t.primary(["connection_id", "list_id", "media_id"]);
    // Ownership lookups: which other lists of the connection hold these media.
    t.index(["connection_id", "media_id"], "list_baseline_items_owner_idx");
  });

  await create("sync_runs", (t) => {
    t.bigIncrements("id");
    t.string("connection_id", 64).notNullable();
    t.string("list_id", 20).notNullable();
    t.string("outcome", 32).notNullable();
    t.string("error", 255).nullable();
    t.bigInteger("started_at").notNullable();
    t.bigInteger("finished_at").notNullable();
    t.bigInteger("duration_ms").notNullable();
    t.integer("seen").notNullable();
    t.integer("added_items").notNullable();
    t.integer("updated_items").notNullable();
    t.integer("removed_items").notNullable();
    t.integer("unchanged_items").notNullable();
    t.integer("adopted_items").notNullable();
    t.string("trace_id", 32).nullable();
    t.index(["connection_id", "list_id", "started_at"], "sync_runs_list_idx");
  });

  await create("work_queue", (t) => {
    t.bigIncrements("id");
    t.string("connection_id", 64).notNullable();
    t.bigInteger("media_id").notNullable();
    t.string("action", 8).notNullable();
    t.bigInteger("created_at").notNullable();
    t.index(["connection_id", "media_id"], "work_queue_media_idx");
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.schema.dropTableIfExists(table);
}
