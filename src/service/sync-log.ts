import type { Logger } from "../telemetry/log";
import type { SyncObserver } from "./sync-service";

/** One log line per finished sync: outcome, counters, duration and trace id, all keys snake_case. */
export function syncLogObserver(log: Logger): SyncObserver {
  return {
    syncFinished(e) {
      const line = {
        event: "sync",
        outcome: e.outcome,
        list_id: e.listId,
        connection_id: e.connectionId,
        duration_ms: Math.round(e.durationMs * 10) / 10,
        trace_id: e.traceId,
        ...(e.counters
          ? {
              seen: e.counters.seen,
              added_items: e.counters.addedItems,
              updated_items: e.counters.updatedItems,
              removed_items: e.counters.removedItems,
              unchanged_items: e.counters.unchangedItems,
              adopted_items: e.counters.adoptedItems,
            }
          : {}),
      };
      if (e.outcome === "ok") log.info(line, "sync finished");
      else if (e.outcome === "internal") {
        // The cause stays in the log only: clients get a generic message.
        const cause = e.error?.cause instanceof Error ? e.error.cause : undefined;
        log.error({ ...line, err: cause }, "sync failed unexpectedly");
      } else log.warn({ ...line, error: e.error?.message }, "sync failed");
    },
  };
}
