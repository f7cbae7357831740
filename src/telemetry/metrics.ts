import { metrics } from "@opentelemetry/api";
import type { SyncObserver } from "../service/sync-service";

/**
 * The service's own metrics (SPEC §6). Labels are low-cardinality on purpose: an
 * outcome or a reason, never a list or connection id.
 */
export interface SyncMetrics extends SyncObserver {
  upstream: { page(): void; retry(reason: string): void };
}

export function createSyncMetrics(): SyncMetrics {
  const meter = metrics.getMeter("vaultplus.sync");
  const duration = meter.createHistogram("vaultplus.sync.duration", {
    description: "Duration of SyncList calls, by outcome (ok or the error kind)",
    unit: "s",
    advice: { explicitBucketBoundaries: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
  });
  const items = meter.createCounter("vaultplus.sync.items", {
    description: "Media items of successful syncs, by outcome (added, updated, removed, unchanged, adopted)",
  });
  const inFlight = meter.createUpDownCounter("vaultplus.sync.in_flight", { description: "Syncs running now" });
  const pages = meter.createCounter("vaultplus.upstream.pages", { description: "Access API list pages received" });
  const retries = meter.createCounter("vaultplus.upstream.retries", {
    description: "Access API requests retried, by reason (status, timeout, network)",
  });

  return {
    syncStarted() {
      inFlight.add(1);
    },
    syncFinished(e) {
      inFlight.add(-1);
      duration.record(e.durationMs / 1000, { outcome: e.outcome });
      if (!e.counters) return;
      items.add(e.counters.addedItems, { outcome: "added" });
      items.add(e.counters.updatedItems, { outcome: "updated" });
      items.add(e.counters.removedItems, { outcome: "removed" });
      items.add(e.counters.unchangedItems, { outcome: "unchanged" });
      items.add(e.counters.adoptedItems, { outcome: "adopted" });
    },
    upstream: {
      page: () => pages.add(1),
      retry: (reason) => retries.add(1, { reason: retryReasonLabel(reason) }),
    },
  };
}

/** "HTTP 503" → "http_5xx": keeps the label set small and fixed. */
function retryReasonLabel(reason: string): string {
  const status = /HTTP (\d)\d\d/.exec(reason);
  if (status) return status[1] === "4" ? "http_429" : "http_5xx";
  if (/timeout|deadline/i.test(reason)) return "timeout";
  return "network";
}
