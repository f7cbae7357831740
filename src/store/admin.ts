import { randomInt } from "node:crypto";
import type { Knex } from "knex";
import { invalidArgument } from "../domain/errors";
import { isConnectionId, requireAccountId } from "../domain/ids";
import type { MediaMetadata } from "../domain/media";
import type { SyncCounters } from "../domain/planner";
import { generateApiKey } from "../service/api-keys";
import { classifyDbError } from "./knex-store";
import { SCOPES, type Scope } from "./types";

export interface CreatedApiKey {
  id: string;
  /** The whole key, shown once; only its hash is stored. */
  token: string;
  accountId: string;
  scopes: Scope[];
}

export interface CreatedConnection {
  id: string;
  accountId: string;
}

/**
 * A connection's state as plain, sorted data without timestamps or generated ids, to compare
 * with deep equality ("a failed sync changed nothing"). `runs` grows with every recorded run,
 * failed ones included (recordFailedRun): leave it out of such comparisons.
 */
export interface StoreSnapshot {
  connection: { accountId: string; status: string } | null;
  cacheEntries: Array<{
    mediaId: number;
    fingerprint: string;
    state: string;
    metadataVersion: number;
    metadata: MediaMetadata;
  }>;
  lists: Array<{ listId: string; itemCount: number; items: Array<{ mediaId: number; fingerprint: string }> }>;
  /** In queue order. */
  workQueue: Array<{ mediaId: number; action: "cache" | "purge" }>;
  /** In insertion order. */
  runs: Array<{ listId: string; outcome: string; error: string | null; counters: SyncCounters }>;
}

const CONNECTION_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Operator commands (CLI `keys` / `connections`) and read helpers for tests. */
export class AdminStore {
  constructor(
    readonly knex: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  async createApiKey(accountId: string, scopes: readonly string[]): Promise<CreatedApiKey> {
    requireAccountId(accountId);
    const valid = requireScopes(scopes);
    const key = generateApiKey();
    await this.guard(() =>
      this.knex.transaction(async (trx) => {
        await this.ensureAccount(trx, accountId);
        await trx("api_keys").insert({
          id: key.id,
          account_id: accountId,
          secret_hash: key.secretHash,
          scopes: valid.join(","),
          revoked_at: null,
          created_at: this.now(),
        });
      }),
    );
    return { id: key.id, token: key.token, accountId, scopes: valid };
  }

  /** True when the key exists (and is now revoked; revoking twice keeps the first time). */
  async revokeApiKey(id: string): Promise<boolean> {
    return this.guard(async () => {
      const key = await this.knex("api_keys").where({ id }).first("id");
      if (!key) return false;
      await this.knex("api_keys").where({ id }).whereNull("revoked_at").update({ revoked_at: this.now() });
      return true;
    });
  }

  async createConnection(accountId: string, id?: string): Promise<CreatedConnection> {
    requireAccountId(accountId);
    const connectionId = id ?? randomConnectionId();
    if (!isConnectionId(connectionId)) {
      throw invalidArgument("connection id must be 1-64 characters of A-Z, a-z, 0-9, _ and -");
    }
    try {
      await this.guard(() =>
        this.knex.transaction(async (trx) => {
          await this.ensureAccount(trx, accountId);
          await trx("connections").insert({
            id: connectionId,
            account_id: accountId,
            status: "active",
            lock_version: 0,
            created_at: this.now(),
          });
        }),
      );
    } catch (err) {
      if (isDuplicateKey(err)) {
        throw invalidArgument(
          `connection ${connectionId} already exists: choose another id, or omit it to generate one`,
        );
      }
      throw err;
    }
    return { id: connectionId, accountId };
  }

  /** True when the connection exists (and is now disabled). */
  async disableConnection(id: string): Promise<boolean> {
    return this.guard(async () => {
      const found = await this.knex("connections").where({ id }).first("id");
      if (!found) return false;
      await this.knex("connections").where({ id }).update({ status: "disabled" });
      return true;
    });
  }

  async snapshot(connectionId: string): Promise<StoreSnapshot> {
    const k = this.knex;
    const conn = await k("connections").where({ id: connectionId }).first("account_id", "status");
    const entries = await k("cache_entries")
      .where({ connection_id: connectionId })
      .orderBy("media_id")
      .select("media_id", "fingerprint", "state", "metadata_version", "metadata");
    const syncs = await k("list_syncs")
      .where({ connection_id: connectionId })
      .orderBy("list_id")
      .select("list_id", "item_count");
    const items = await k("list_baseline_items")
      .where({ connection_id: connectionId })
      .orderBy(["list_id", "media_id"])
      .select("list_id", "media_id", "fingerprint");
    const queue = await k("work_queue")
      .where({ connection_id: connectionId })
      .orderBy("id")
      .select("media_id", "action");
    const runs = await k("sync_runs").where({ connection_id: connectionId }).orderBy("id").select("*");
    return {
      connection: conn ? { accountId: conn.account_id, status: conn.status } : null,
      cacheEntries: entries.map((e) => ({
        mediaId: Number(e.media_id),
        fingerprint: e.fingerprint,
        state: e.state,
        metadataVersion: Number(e.metadata_version),
        metadata: JSON.parse(e.metadata) as MediaMetadata,
      })),
      lists: syncs.map((s) => ({
        listId: s.list_id,
        itemCount: Number(s.item_count),
        items: items
          .filter((i) => i.list_id === s.list_id)
          .map((i) => ({ mediaId: Number(i.media_id), fingerprint: i.fingerprint })),
      })),
      workQueue: queue.map((q) => ({ mediaId: Number(q.media_id), action: q.action })),
      runs: runs.map((r) => ({
        listId: r.list_id,
        outcome: r.outcome,
        error: r.error ?? null,
        counters: {
          seen: Number(r.seen),
          addedItems: Number(r.added_items),
          updatedItems: Number(r.updated_items),
          removedItems: Number(r.removed_items),
          unchangedItems: Number(r.unchanged_items),
          adoptedItems: Number(r.adopted_items),
        },
      })),
    };
  }

  private async ensureAccount(trx: Knex.Transaction, accountId: string): Promise<void> {
    await trx("accounts").insert({ id: accountId, created_at: this.now() }).onConflict("id").ignore();
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw classifyDbError(err) ?? err;
    }
  }
}

function requireScopes(scopes: readonly string[]): Scope[] {
  const known = SCOPES as readonly string[];
  const unknown = scopes.filter((s) => !known.includes(s));
  if (unknown.length > 0) {
    throw invalidArgument(`unknown scope ${unknown.join(", ")}: the known scopes are ${SCOPES.join(", ")}`);
  }
  if (scopes.length === 0) throw invalidArgument(`at least one scope is required: ${SCOPES.join(", ")}`);
  return SCOPES.filter((s) => scopes.includes(s));
}

function randomConnectionId(): string {
  let id = "conn_";
  for (let i = 0; i < 24; i++) id += CONNECTION_ID_ALPHABET[randomInt(CONNECTION_ID_ALPHABET.length)];
  return id;
}

function isDuplicateKey(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ER_DUP_ENTRY" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE";
}
