import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Knex } from "knex";
import { AdminStore } from "../../src/store/admin";
import { createKnex } from "../../src/store/db";
import { KnexStore } from "../../src/store/knex-store";
import { migrateLatest } from "../../src/store/migrations";
import { type MariaDbServer, startMariaDb } from "./mariadb";

/**
 * Fresh, empty databases for tests, on MariaDB and on SQLite.
 *
 *   forEachDatabase((db) => {
 *     it("works", async () => {
 *       await db.admin.createConnection("acct", "c1");
 *       // db.url is the VAULTPLUS_DATABASE_URL to hand to a server or a child process
 *     });
 *   });
 *
 * defines `describe("mariadb")` and `describe("sqlite")`, each with its own new database
 * (migrated unless `migrate: false`), created before the suite and dropped after it. `db`'s
 * fields are filled in by a `before` hook, so read them only inside hooks and tests; the
 * callback's second argument, the kind, is known at definition time.
 *
 * MariaDB: the server at VAULTPLUS_TEST_MYSQL_URL (mysql://user:pass@host:port/, a user who
 * may create databases; `npm test` starts one and sets it). When unset, a throwaway server is
 * started once per process, on first use, and stopped when mocha finishes.
 * VAULTPLUS_TEST_DATABASES=sqlite (or mariadb) limits the run when testing by hand.
 */

export type DatabaseKind = "mariadb" | "sqlite";

export interface TestDatabase {
  kind: DatabaseKind;
  /** Database URL (mysql://… or sqlite:PATH), as VAULTPLUS_DATABASE_URL takes it. */
  url: string;
  knex: Knex;
  store: KnexStore;
  admin: AdminStore;
  /** Closes `knex` and deletes the database. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Run migrations (default true). */
  migrate?: boolean;
  /** dbTimeoutMs for knex and the store (default 5000). */
  dbTimeoutMs?: number;
  /** KnexStore batch size (default the store's, 500). */
  batchSize?: number;
  /** MariaDB only: the server (mysql://user:pass@host:port/) to create the database on; default the shared one. */
  serverUrl?: string;
}

export const DATABASE_KINDS: readonly DatabaseKind[] = (["mariadb", "sqlite"] as const).filter((kind) => {
  const only = process.env.VAULTPLUS_TEST_DATABASES;
  return !only || only.split(",").includes(kind);
});

/** Defines one describe block per database kind, each with a fresh database (see above). */
export function forEachDatabase(
  fn: (db: TestDatabase, kind: DatabaseKind) => void,
  options: TestDatabaseOptions = {},
): void {
  for (const kind of DATABASE_KINDS) {
    describe(kind, () => {
      const db = {} as TestDatabase;
      before(async function () {
        this.timeout(120_000); // the first use may start a MariaDB server
        Object.assign(db, await createTestDatabase(kind, options));
      });
      after(async () => {
        await db.drop?.();
      });
      fn(db, kind);
    });
  }
}

export async function createTestDatabase(kind: DatabaseKind, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const dbTimeoutMs = options.dbTimeoutMs ?? 5000;
  const { url, remove } = kind === "mariadb" ? await createMariaDbDatabase(options.serverUrl) : createSqliteDatabase();
  const knex = createKnex(url, { dbTimeoutMs });
  try {
    if (options.migrate !== false) await migrateLatest(knex);
  } catch (err) {
    await knex.destroy();
    await remove();
    throw err;
  }
  return {
    kind,
    url,
    knex,
    store: new KnexStore(knex, { dbTimeoutMs, ...(options.batchSize ? { batchSize: options.batchSize } : {}) }),
    admin: new AdminStore(knex),
    async drop() {
      await knex.destroy();
      await remove();
    },
  };
}

/** The MariaDB server URL (ending in "/") on which tests may create databases. */
export async function mysqlServerUrl(): Promise<string> {
  const fromEnv = process.env.VAULTPLUS_TEST_MYSQL_URL;
  if (fromEnv) {
    const url = new URL(fromEnv);
    url.pathname = "/";
    return url.toString();
  }
  lazyServer ??= startMariaDb();
  return (await lazyServer).url;
}

let lazyServer: Promise<MariaDbServer> | null = null;

// Stops a server this process started itself, once all suites are done (a root-level mocha hook).
if (typeof after === "function") {
  after(async () => {
    const server = lazyServer;
    lazyServer = null;
    if (server) await (await server).stop();
  });
}

async function createMariaDbDatabase(server?: string): Promise<{ url: string; remove(): Promise<void> }> {
  const serverUrl = server ?? (await mysqlServerUrl());
  const name = `vp_${randomBytes(6).toString("hex")}`;
  await onServer(serverUrl, (k) => k.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
  return {
    url: `${serverUrl}${name}`,
    remove: () => onServer(serverUrl, (k) => k.raw(`DROP DATABASE IF EXISTS \`${name}\``)),
  };
}

async function onServer(serverUrl: string, work: (knex: Knex) => PromiseLike<unknown>): Promise<void> {
  const knex = createKnex(serverUrl, { dbTimeoutMs: 10_000 });
  try {
    await work(knex);
  } finally {
    await knex.destroy();
  }
}

function createSqliteDatabase(): { url: string; remove(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "vaultplus-sqlite-"));
  return {
    url: `sqlite:${join(dir, "vaultplus.db")}`,
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}
