import type { Knex } from "knex";
import * as initial from "./001_initial";

/**
 * Migrations as static imports, so they run from dist/ (or a bundle) without globbing
 * the filesystem. Append new ones here; never rename or edit an applied one.
 */
const MIGRATIONS: ReadonlyArray<{ name: string; migration: Knex.Migration }> = [
  { name: "001_initial", migration: initial },
];

class StaticMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    return MIGRATIONS.map((m) => m.name);
  }

  getMigrationName(name: string): string {
    return name;
  }

  async getMigration(name: string): Promise<Knex.Migration> {
    const found = MIGRATIONS.find((m) => m.name === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found.migration;
  }
}

/** knex's default bookkeeping table. */
const MIGRATIONS_TABLE = "knex_migrations";
const config: Knex.MigratorConfig = { migrationSource: new StaticMigrationSource(), tableName: MIGRATIONS_TABLE };

export const MIGRATION_NAMES: readonly string[] = MIGRATIONS.map((m) => m.name);

/** Applies pending migrations; returns the names applied now (empty when already current). */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest(config)) as [number, string[]];
  return applied;
}

export interface MigrationStatus {
  current: boolean;
  /** Number of migrations not applied yet. */
  pending: number;
  applied: string[];
  pendingNames: string[];
}

/** Read-only (unlike knex.migrate.list, which creates its bookkeeping tables): safe for /readyz. */
export async function migrationStatus(knex: Knex): Promise<MigrationStatus> {
  const applied = (await knex.schema.hasTable(MIGRATIONS_TABLE))
    ? (await knex(MIGRATIONS_TABLE).orderBy("id").select("name")).map((r: { name: string }) => r.name)
    : [];
  const pendingNames = MIGRATION_NAMES.filter((name) => !applied.includes(name));
  return { current: pendingNames.length === 0, pending: pendingNames.length, applied, pendingNames };
}
