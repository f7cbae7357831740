import { AdminStore } from "../src/store/admin";
import { createKnex } from "../src/store/db";
import { migrateLatest } from "../src/store/migrations";

export const BENCH_ACCOUNT = "bench";

/**
 * A fresh, migrated database `name` on the server at `serverUrl` (ends in "/"), with one
 * account, an ACCOUNT-scoped API key (returned) and the given connections. Each `scratch` table
 * gets an empty copy named prefix+table (CREATE TABLE … LIKE: same indexes).
 */
export async function createBenchDatabase(
  serverUrl: string,
  name: string,
  connections: readonly string[],
  scratch: { prefix: string; tables: readonly string[] } | null = null,
): Promise<string> {
  const server = createKnex(serverUrl, { dbTimeoutMs: 10_000 });
  try {
    await server.raw(`DROP DATABASE IF EXISTS \`${name}\``);
    await server.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await server.destroy();
  }
  const knex = createKnex(`${serverUrl}${name}`, { dbTimeoutMs: 10_000 });
  try {
    await migrateLatest(knex);
    for (const table of scratch?.tables ?? []) {
      await knex.raw(`CREATE TABLE \`${scratch?.prefix}${table}\` LIKE \`${table}\``);
    }
    const admin = new AdminStore(knex);
    const key = await admin.createApiKey(BENCH_ACCOUNT, ["ACCOUNT"]);
    for (const id of connections) await admin.createConnection(BENCH_ACCOUNT, id);
    return key.token;
  } finally {
    await knex.destroy();
  }
}
