import type { Knex } from "knex";
import { DB_UNAVAILABLE_MESSAGE, SyncError } from "../domain/errors";
import { CONNECTION_INVALID_MESSAGE } from "../domain/ids";
import { METADATA_VERSION, type MediaItem } from "../domain/media";
import type { BaselineMember, BaselineWrite, CacheEntryView, EntryState, SyncPlan } from "../domain/planner";
import {
  type ApiKeyRecord,
  type ConnectionRecord,
  type CredentialStore,
  SCOPES,
  type Scope,
  type SyncRunRecord,
  type SyncStore,
  type SyncUnit,
} from "./types";

export { countQueries } from "./db";

export interface KnexStoreOptions {
  dbTimeoutMs: number;
  /** Rows per statement (and ids per IN list). */
  batchSize?: number;
}

const RETRY_CODES = new Set(["ER_LOCK_DEADLOCK"]);
const UNAVAILABLE_CODES = new Set([
  "ER_LOCK_WAIT_TIMEOUT",
  "ER_CON_COUNT_ERROR",
  "ER_TOO_MANY_USER_CONNECTIONS",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
  "ER_QUERY_INTERRUPTED",
  "ER_ACCESS_DENIED_ERROR",
  "ER_DBACCESS_DENIED_ERROR",
  "ER_BAD_DB_ERROR",
  "ER_NET_READ_ERROR",
  "ER_NET_READ_INTERRUPTED",
  "ER_NET_ERROR_ON_WRITE",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "SQLITE_CANTOPEN",
  "SQLITE_FULL",
  "SQLITE_PROTOCOL",
]);

/**
 * "retry": a deadlock or an immediate SQLite busy/locked, where re-running the transaction may
 * succeed; "unavailable": the database cannot be reached or a lock/connection wait timed out;
 * null: anything else (a bug, a constraint, a SyncError).
 */
function dbErrorClass(err: unknown): "retry" | "unavailable" | null {
  if (!(err instanceof Error) || err instanceof SyncError) return null;
  if (err.name === "KnexTimeoutError") return "unavailable";
  const { code, errno, fatal } = err as { code?: unknown; errno?: unknown; fatal?: unknown };
  if (typeof code === "string") {
    if (RETRY_CODES.has(code) || /^SQLITE_(BUSY|LOCKED)/.test(code)) return "retry";
    if (UNAVAILABLE_CODES.has(code) || /^SQLITE_(IOERR|READONLY)/.test(code)) return "unavailable";
  }
  if (errno === 1213) return "retry";
  if (errno === 1205) return "unavailable";
  // mysql2 marks errors that broke the connection as fatal.
  if (fatal === true) return "unavailable";
  return null;
}

/**
 * The db_unavailable SyncError (503 / UNAVAILABLE) for an error meaning the database cannot be
 * used right now (unreachable, lock or connection wait timed out, busy, deadlocked), or null for
 * any other error, which should propagate unchanged. A db_unavailable SyncError maps to itself.
 */
export function classifyDbError(err: unknown): SyncError | null {
  if (err instanceof SyncError) return err.kind === "db_unavailable" ? err : null;
  return dbErrorClass(err) === null ? null : dbUnavailable(err);
}

/** Deadlocks and immediate SQLite busy/locked errors: the whole transaction may be re-run. */
export function isRetryableDbError(err: unknown): boolean {
  return dbErrorClass(err) === "retry";
}

export function dbUnavailable(cause: unknown): SyncError {
  return new SyncError("db_unavailable", DB_UNAVAILABLE_MESSAGE, { cause });
}

const MAX_ATTEMPTS = 3;

export class KnexStore implements SyncStore, CredentialStore {
  private readonly dbTimeoutMs: number;
  private readonly batchSize: number;

  constructor(
    readonly knex: Knex,
    options: KnexStoreOptions,
  ) {
    this.dbTimeoutMs = options.dbTimeoutMs;
    this.batchSize = options.batchSize ?? 500;
  }

  async withConnectionLock<T>(connectionId: string, work: (unit: SyncUnit) => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.knex.transaction(async (trx) => {
          // First statement: the row X lock (MariaDB/MySQL) or the write lock (SQLite), held to commit.
          const locked = await trx("connections")
            .where({ id: connectionId, status: "active" })
            .update({ lock_version: trx.raw("lock_version + 1") });
          if (locked === 0) throw new SyncError("invalid_argument", CONNECTION_INVALID_MESSAGE);
          return work(new KnexSyncUnit(trx, connectionId, this.batchSize));
        });
      } catch (err) {
        const kind = dbErrorClass(err);
        if (kind === null) throw err;
        // Retry only while the time budget lasts: a busy wait that already took dbTimeoutMs is not retried.
        if (kind === "retry" && attempt < MAX_ATTEMPTS && Date.now() - started < this.dbTimeoutMs) {
          await sleep(attempt * 25 + Math.random() * 50);
          continue;
        }
        throw dbUnavailable(err);
      }
    }
  }

  async recordFailedRun(
    connectionId: string,
    listId: string,
    startedAt: Date,
    error: string,
    traceId: string | null,
  ): Promise<void> {
    const finished = Date.now();
    try {
      await this.knex("sync_runs").insert({
        connection_id: connectionId,
        list_id: listId,
        outcome: "failed",
        error: error.slice(0, 255),
        started_at: startedAt.getTime(),
        finished_at: finished,
        duration_ms: Math.max(0, finished - startedAt.getTime()),
        seen: 0,
        added_items: 0,
        updated_items: 0,
        removed_items: 0,
        unchanged_items: 0,
        adopted_items: 0,
        trace_id: validTraceId(traceId),
      });
    } catch {
      // Best effort: the failure being recorded is what the caller reports.
    }
  }

  async findApiKey(keyId: string): Promise<ApiKeyRecord | null> {
    const row = await this.read(() => this.knex("api_keys").where({ id: keyId }).first());
    if (!row) return null;
    return {
      id: row.id,
      accountId: row.account_id,
      secretHash: row.secret_hash,
      scopes: parseScopes(row.scopes),
      revoked: row.revoked_at !== null && row.revoked_at !== undefined,
    };
  }

  async findConnection(connectionId: string): Promise<ConnectionRecord | null> {
    const row = await this.read(() => this.knex("connections").where({ id: connectionId }).first());
    if (!row) return null;
    return { id: row.id, accountId: row.account_id, active: row.status === "active" };
  }

  /** SELECT 1 within dbTimeoutMs; throws a db_unavailable SyncError otherwise. */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(dbUnavailable(new Error("ping timed out"))), this.dbTimeoutMs);
    });
    try {
      await Promise.race([this.read(() => this.knex.raw("SELECT 1")), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.knex.destroy();
  }

  /** Single reads outside the lock: connectivity failures become db_unavailable. */
  private async read<T>(query: () => PromiseLike<T>): Promise<T> {
    try {
      return await query();
    } catch (err) {
      throw classifyDbError(err) ?? err;
    }
  }
}

/** One sync's reads and write, bound to the transaction that holds the connection's lock. */
class KnexSyncUnit implements SyncUnit {
  /**
   * The cache entries of the baseline's members, read together with the baseline (one joined
   * statement), so a re-sync looks up by id only the media that are new to the list. Valid until
   * apply() writes.
   */
  private members: { baseline: Map<number, BaselineMember>; entries: Map<number, CacheEntryView> } | null = null;

  constructor(
    private readonly trx: Knex.Transaction,
    private readonly connectionId: string,
    private readonly batchSize: number,
  ) {}

  async loadBaseline(listId: string): Promise<Map<number, BaselineMember> | null> {
    const where = { connection_id: this.connectionId, list_id: listId };
    const synced = await this.trx("list_syncs").where(where).first("list_id");
    if (!synced) return null;
    const b = "list_baseline_items";
    const c = "cache_entries";
    const rows = await this.trx(b)
      .leftJoin(c, function () {
        this.on(`${c}.connection_id`, "=", `${b}.connection_id`).andOn(`${c}.media_id`, "=", `${b}.media_id`);
      })
      .where({ [`${b}.connection_id`]: this.connectionId, [`${b}.list_id`]: listId })
      .select(
        `${b}.media_id`,
        `${b}.fingerprint`,
        `${b}.first_added_at`,
        `${c}.fingerprint as entry_fingerprint`,
        `${c}.metadata_version`,
        `${c}.state`,
      );
    const baseline = new Map<number, BaselineMember>();
    const entries = new Map<number, CacheEntryView>();
    for (const row of rows) {
      const id = Number(row.media_id);
      baseline.set(id, {
        fingerprint: row.fingerprint,
        firstAddedAt: new Date(Number(row.first_added_at)),
      });
      if (row.state !== null && row.state !== undefined) {
        entries.set(id, {
          fingerprint: row.entry_fingerprint,
          metadataVersion: Number(row.metadata_version),
          state: row.state as EntryState,
        });
      }
    }
    this.members = { baseline, entries };
    return baseline;
  }

  async loadCacheView(mediaIds: readonly number[]): Promise<Map<number, CacheEntryView>> {
    const view = new Map<number, CacheEntryView>();
    const unknown: number[] = [];
    for (const id of mediaIds) {
      if (!this.members?.baseline.has(id)) unknown.push(id);
      else {
        const entry = this.members.entries.get(id);
        if (entry) view.set(id, entry);
      }
    }
    for (const ids of chunks(unknown, this.batchSize)) {
      const rows = await this.trx("cache_entries")
        .where({ connection_id: this.connectionId })
        .whereIn("media_id", ids)
        .select("media_id", "fingerprint", "metadata_version", "state");
      for (const row of rows) {
        view.set(Number(row.media_id), {
          fingerprint: row.fingerprint,
          metadataVersion: Number(row.metadata_version),
          state: row.state as EntryState,
        });
      }
    }
    return view;
  }

  async loadOwnedElsewhere(listId: string, mediaIds: readonly number[]): Promise<Set<number>> {
    const owned = new Set<number>();
    for (const ids of chunks(mediaIds, this.batchSize)) {
      const rows = await this.trx("list_baseline_items")
        .distinct("media_id")
        .where({ connection_id: this.connectionId })
        .whereNot({ list_id: listId })
        .whereIn("media_id", ids);
      for (const row of rows) owned.add(Number(row.media_id));
    }
    return owned;
  }

  async apply(listId: string, plan: SyncPlan, run: SyncRunRecord): Promise<void> {
    const { trx, connectionId } = this;
    this.members = null;
    const now = run.finishedAt.getTime();

    // Removed media: queue deletion of what is stored (only entries that exist), then drop the entries.
    for (const ids of chunks(plan.purge, this.batchSize)) {
      await trx.raw(
        `INSERT INTO work_queue (connection_id, media_id, action, created_at)
         SELECT connection_id, media_id, 'purge', ? FROM cache_entries
         WHERE connection_id = ? AND media_id IN (${ids.map(() => "?").join(", ")})`,
        [now, connectionId, ...ids],
      );
      await trx("cache_entries").where({ connection_id: connectionId }).whereIn("media_id", ids).delete();
    }

    // Rows are built one statement at a time (batches()), so a sync of N items never holds N rows.
    // New and changed media: entries reset to pending with the new metadata.
    const changed = [...plan.create, ...plan.refresh];
    const entryRow = (item: MediaItem) => ({
      connection_id: connectionId,
      media_id: item.id,
      fingerprint: item.fingerprint,
      metadata: JSON.stringify(item.metadata),
      metadata_version: METADATA_VERSION,
      state: "pending",
      created_at: now,
      updated_at: now,
    });
    for (const rows of batches(changed, this.batchSize, entryRow)) {
      await trx("cache_entries")
        .insert(rows)
        .onConflict(["connection_id", "media_id"])
        .merge(["fingerprint", "metadata", "metadata_version", "state", "updated_at"]);
    }

    // Purges of old content come before the caching they make room for (the worker follows id order).
    // Queue position i: a purge of plan.refresh[i], then (past them) caching of changed[i - refresh.length].
    const purges = plan.refresh.length;
    const queueRow = (i: number) => ({
      connection_id: connectionId,
      media_id: (i < purges ? plan.refresh[i] : changed[i - purges])?.id,
      action: i < purges ? "purge" : "cache",
      created_at: now,
    });
    for (let start = 0; start < purges + changed.length; start += this.batchSize) {
      const end = Math.min(start + this.batchSize, purges + changed.length);
      await trx("work_queue").insert(Array.from({ length: end - start }, (_, k) => queueRow(start + k)));
    }

    // B(L) := current. Unchanged members are only re-stamped, by one statement for the whole list.
    const list = { connection_id: connectionId, list_id: listId };
    for (const ids of chunks(plan.leave, this.batchSize)) {
      await trx("list_baseline_items").where(list).whereIn("media_id", ids).delete();
    }
    const memberRow = (w: BaselineWrite) => ({
      ...list,
      media_id: w.mediaId,
      fingerprint: w.fingerprint,
      first_added_at: w.firstAddedAt?.getTime() ?? now,
      last_seen_at: now,
      last_synced_at: now,
    });
    for (const rows of batches(plan.baselineWrites, this.batchSize, memberRow)) {
      await trx("list_baseline_items")
        .insert(rows)
        .onConflict(["connection_id", "list_id", "media_id"])
        .merge(["fingerprint", "last_seen_at", "last_synced_at"]);
    }
    // Members just written above already carry `now`: re-stamping them would rewrite N rows on a first sync.
    await trx("list_baseline_items")
      .where(list)
      .whereNot({ last_synced_at: now })
      .update({ last_seen_at: now, last_synced_at: now });

    await trx("list_syncs")
      .insert({ ...list, first_synced_at: now, last_synced_at: now, item_count: plan.counters.seen })
      .onConflict(["connection_id", "list_id"])
      .merge(["last_synced_at", "item_count"]);

    const c = run.counters;
    await trx("sync_runs").insert({
      ...list,
      outcome: "ok",
      error: null,
      started_at: run.startedAt.getTime(),
      finished_at: now,
      duration_ms: Math.max(0, now - run.startedAt.getTime()),
      seen: c.seen,
      added_items: c.addedItems,
      updated_items: c.updatedItems,
      removed_items: c.removedItems,
      unchanged_items: c.unchangedItems,
      adopted_items: c.adoptedItems,
      trace_id: validTraceId(run.traceId),
    });
  }
}

function validTraceId(traceId: string | null): string | null {
  return traceId && /^[0-9a-f]{32}$/.test(traceId) && !/^0+$/.test(traceId) ? traceId : null;
}

function parseScopes(value: string): Scope[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `items` as rows in statements of `size`: each statement's rows are built only when it is sent. */
function* batches<T, R>(items: readonly T[], size: number, row: (item: T) => R): Generator<R[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size).map(row);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
