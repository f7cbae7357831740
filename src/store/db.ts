import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Knex, knex } from "knex";

export interface DbOptions {
  /** Bound on acquiring a connection or a lock (VAULTPLUS_DB_TIMEOUT_MS). */
  dbTimeoutMs: number;
  /** Where knex's own warnings go; default one line on stderr (knex would print to stdout). */
  log?: (level: "warn" | "error" | "deprecate" | "debug", message: string) => void;
}

function knexLog(opts: DbOptions): Knex.Config["log"] {
  const log =
    opts.log ??
    ((level: string, message: string) => {
      process.stderr.write(`knex ${level}: ${message.split("\n")[0]}\n`);
    });
  const to = (level: "warn" | "error" | "deprecate" | "debug") => (message: unknown) =>
    log(level, typeof message === "string" ? message : String(message));
  return { warn: to("warn"), error: to("error"), deprecate: to("deprecate"), debug: to("debug") };
}

export type DatabaseKind = "mysql" | "sqlite";

export function databaseKind(databaseUrl: string): DatabaseKind {
  if (databaseUrl.startsWith("mysql://")) return "mysql";
  if (databaseUrl.startsWith("sqlite:")) return "sqlite";
  throw new Error("database URL must be mysql://user:pass@host:port/db or sqlite:PATH");
}

/** Knex for `mysql://user:pass@host:port/db` (MariaDB / MySQL) or `sqlite:PATH`. */
export function createKnex(databaseUrl: string, opts: DbOptions): Knex {
  return databaseKind(databaseUrl) === "mysql" ? mysqlKnex(databaseUrl, opts) : sqliteKnex(databaseUrl, opts);
}

function mysqlKnex(databaseUrl: string, opts: DbOptions): Knex {
  const { dbTimeoutMs } = opts;
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  const lockWaitSeconds = Math.max(1, Math.ceil(dbTimeoutMs / 1000));
  const statementTimeoutMs = mysqlStatementTimeoutMs(dbTimeoutMs);
  return knex({
    client: "mysql2",
    connection: {
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"), // [::1] -> ::1
      port: url.port ? Number(url.port) : 3306,
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      ...(database ? { database } : {}),
      connectTimeout: dbTimeoutMs,
      charset: "utf8mb4",
    },
    // min 0: no connection is kept that could be stale after the database restarts.
    pool: {
      min: 0,
      max: 10,
      afterCreate(conn: RawMysqlConnection, done: (err: Error | null, conn: unknown) => void) {
        boundStatements(conn, statementTimeoutMs);
        // The lock wait bound makes a locked connection fail as db_unavailable instead of hanging;
        // READ COMMITTED avoids gap locks, the per-connection row lock serializes syncs.
        conn.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`, (err) => {
          if (err) return done(err, conn);
          conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", (err2) => done(err2, conn));
        });
      },
    },
    acquireConnectionTimeout: dbTimeoutMs,
    log: knexLog(opts),
  });
}

interface RawMysqlConnection {
  query(sql: string, cb: (err: Error | null) => void): void;
  destroy(): void;
}

/**
 * The bound on any one statement against MariaDB/MySQL: the server's own lock wait bound plus a
 * second, so a live server answers a lock wait with ER_LOCK_WAIT_TIMEOUT first, and only a server
 * that stopped answering (frozen, partitioned: TCP up, no replies) meets this bound.
 */
export function mysqlStatementTimeoutMs(dbTimeoutMs: number): number {
  return Math.max(1, Math.ceil(dbTimeoutMs / 1000)) * 1000 + 1000;
}

type QueryCallback = (err: (Error & { code?: string; fatal?: boolean }) | null, ...rest: unknown[]) => void;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * Gives every statement on a pooled mysql2 connection a timeout, so a sync never hangs on a
 * database that stopped answering mid-transaction (acquiring a connection and connecting were
 * already bounded; a statement on a connection taken from the pool was not). On timeout mysql2
 * only reports PROTOCOL_SEQUENCE_TIMEOUT and keeps the connection, with the unanswered statement
 * still queued on it: such a connection is useless, so it is destroyed (the server then rolls its
 * transaction back) and the error marked fatal, which the store reports as db_unavailable and the
 * pool never hands out again.
 */
function boundStatements(conn: RawMysqlConnection, timeoutMs: number): void {
  const query = conn.query as (this: RawMysqlConnection, ...args: unknown[]) => unknown;
  (conn as { query: unknown }).query = function (this: RawMysqlConnection, ...args: unknown[]) {
    const [sql] = args;
    // Knex passes a plain { sql, ... } object; a prepared Query command or an explicit timeout is left alone.
    if (isPlainObject(sql) && sql.timeout === undefined) {
      args[0] = { ...sql, timeout: timeoutMs };
    } else if (typeof sql === "string") {
      args[0] = { sql, timeout: timeoutMs };
    }
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === "function") {
      args[last] = ((err, ...rest) => {
        if (err?.code === "PROTOCOL_SEQUENCE_TIMEOUT") {
          err.fatal = true;
          conn.destroy();
        }
        (callback as QueryCallback)(err, ...rest);
      }) satisfies QueryCallback;
    }
    return query.apply(this, args);
  };
}

interface RawSqliteConnection {
  pragma(source: string): unknown;
}

function sqliteKnex(databaseUrl: string, opts: DbOptions): Knex {
  const { dbTimeoutMs } = opts;
  const path = databaseUrl.slice("sqlite:".length);
  const filename = path === ":memory:" ? path : resolve(path);
  if (filename !== ":memory:") mkdirSync(dirname(filename), { recursive: true });
  return knex({
    client: "better-sqlite3",
    connection: { filename },
    useNullAsDefault: true,
    // One connection: SQLite has one writer anyway, and in-process waits then queue on the pool (bounded below).
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: RawSqliteConnection, done: (err: Error | null, conn: unknown) => void) {
        try {
          conn.pragma("journal_mode = WAL");
          conn.pragma(`busy_timeout = ${Math.max(1, Math.floor(dbTimeoutMs))}`);
          conn.pragma("foreign_keys = ON");
          done(null, conn);
        } catch (err) {
          done(err as Error, conn);
        }
      },
    },
    acquireConnectionTimeout: dbTimeoutMs,
    log: knexLog(opts),
  });
}

/** The URL with its password replaced, fit for logs. */
export function describeDatabaseUrl(databaseUrl: string): string {
  if (!databaseUrl.startsWith("mysql://")) return databaseUrl;
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "mysql://(unparseable URL)";
  }
}

export interface QueryCounter {
  readonly count: number;
  reset(): void;
  stop(): void;
}

/** Counts statements sent through `knex` (transactions included), for tests and benchmarks. */
export function countQueries(db: Knex): QueryCounter {
  let count = 0;
  const listener = () => {
    count++;
  };
  db.on("query", listener);
  return {
    get count() {
      return count;
    },
    reset() {
      count = 0;
    },
    stop() {
      db.removeListener("query", listener);
    },
  };
}
