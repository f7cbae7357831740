import type { BaselineMember, CacheEntryView, SyncCounters, SyncPlan } from "../domain/planner";

/**
 * The narrow interfaces the sync service needs from storage. One implementation
 * (knex-store.ts) serves MariaDB/MySQL and SQLite; another database only has to
 * provide these.
 */

export const SCOPES = ["ACCOUNT", "ACCESS"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyRecord {
  id: string;
  accountId: string;
  /** sha256 of the secret, hex. */
  secretHash: string;
  scopes: Scope[];
  revoked: boolean;
}

export interface ConnectionRecord {
  id: string;
  accountId: string;
  active: boolean;
}

export interface CredentialStore {
  findApiKey(keyId: string): Promise<ApiKeyRecord | null>;
  findConnection(connectionId: string): Promise<ConnectionRecord | null>;
}

/** What one successful sync records about itself, in the same transaction as its effect. */
export interface SyncRunRecord {
  listId: string;
  startedAt: Date;
  finishedAt: Date;
  traceId: string | null;
  counters: SyncCounters;
}

/**
 * The reads and the write of one sync, all inside one transaction that holds the
 * connection's lock. Reads are batched: O(N / batch) statements for N ids.
 */
export interface SyncUnit {
  /** B(L), or null when the list has never been synced. */
  loadBaseline(listId: string): Promise<Map<number, BaselineMember> | null>;
  /** Cache entries of the connection among `mediaIds`. */
  loadCacheView(mediaIds: readonly number[]): Promise<Map<number, CacheEntryView>>;
  /** Those of `mediaIds` that a cached list other than `listId` owns. */
  loadOwnedElsewhere(listId: string, mediaIds: readonly number[]): Promise<Set<number>>;
  /** Writes entries, queued work, B(L) := current and the run record. */
  apply(listId: string, plan: SyncPlan, run: SyncRunRecord): Promise<void>;
}

export interface SyncStore {
  /**
   * Runs `work` in one transaction holding an exclusive lock on the connection, shared
   * by every process using the database. Commits when `work` resolves, rolls back when
   * it throws. Lock or connection waits give up after the configured DB timeout with
   * a `db_unavailable` SyncError; deadlocks are retried a bounded number of times.
   */
  withConnectionLock<T>(connectionId: string, work: (unit: SyncUnit) => Promise<T>): Promise<T>;
  /** Records a sync that failed (outcome only, no effect); best effort. */
  recordFailedRun?(
    connectionId: string,
    listId: string,
    startedAt: Date,
    error: string,
    traceId: string | null,
  ): Promise<void>;
}
