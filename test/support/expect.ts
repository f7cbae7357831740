import { expect } from "chai";
import { SyncError } from "../../src/domain/errors";

/** The SyncError a promise rejects with; fails the test when it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<SyncError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(SyncError);
    return err as SyncError;
  }
  throw new Error("expected a rejection");
}

/** The schema's tables, written out independently of the migration that creates them. */
export const EXPECTED_TABLES = [
  "accounts",
  "api_keys",
  "connections",
  "cache_entries",
  "list_syncs",
  "list_baseline_items",
  "sync_runs",
  "work_queue",
] as const;
