import { type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { SyncError, asSyncError } from "../domain/errors";
import { requireListId } from "../domain/ids";
import { toMediaItem } from "../domain/media";
import { type SyncCounters, planSync, removalCandidates } from "../domain/planner";
import type { CredentialStore, SyncStore } from "../store/types";
import type { AccessApi, FetchProgress } from "../upstream/types";
import { type Credentials, authorize } from "./auth";

export interface SyncResult {
  listId: string;
  counters: SyncCounters;
}

export interface SyncOptions {
  signal?: AbortSignal;
  onProgress?: FetchProgress;
}

/** Called once per finished sync, success or failure: metrics and the log line hang here. */
export interface SyncObserver {
  syncFinished(event: {
    listId: string | null;
    connectionId: string | null;
    outcome: "ok" | SyncError["kind"];
    durationMs: number;
    counters: SyncCounters | null;
    error: SyncError | null;
    traceId: string | null;
  }): void;
}

export interface SyncServiceDeps {
  credentials: CredentialStore;
  store: SyncStore;
  upstream: AccessApi;
  observer?: SyncObserver;
  now?: () => Date;
}

const tracer = trace.getTracer("vaultplus.sync");

/**
 * The one implementation of SyncList; gRPC, the REST gateway, Connect and the CLI
 * only translate to and from it. The upstream fetch runs outside any database lock;
 * re-reading the baseline, planning and applying run under the connection's lock in
 * one transaction, so concurrent syncs behave as some serial order.
 */
export class SyncService {
  private readonly now: () => Date;

  constructor(private readonly deps: SyncServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  syncList(listId: string, credentials: Credentials, options: SyncOptions = {}): Promise<SyncResult> {
    return tracer.startActiveSpan("SyncList", async (span) => {
      const started = performance.now();
      const startedAt = this.now();
      const traceId = span.spanContext().traceId;
      let connectionId: string | null = null;
      let validListId: string | null = null;
      try {
        const principal = await authorize(this.deps.credentials, credentials);
        connectionId = principal.connectionId;
        span.setAttribute("vaultplus.connection_id", connectionId);
        validListId = requireListId(listId);
        span.setAttribute("vaultplus.list_id", validListId);

        const counters = await this.reconcile(connectionId, validListId, startedAt, traceId, options);
        setCounterAttributes(span, counters);
        this.deps.observer?.syncFinished({
          listId: validListId,
          connectionId,
          outcome: "ok",
          durationMs: performance.now() - started,
          counters,
          error: null,
          traceId,
        });
        return { listId: validListId, counters };
      } catch (err) {
        const error = asSyncError(err);
        span.recordException(error.kind === "internal" && err instanceof Error ? err : error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        span.setAttribute("vaultplus.error_kind", error.kind);
        this.deps.observer?.syncFinished({
          listId: validListId,
          connectionId,
          outcome: error.kind,
          durationMs: performance.now() - started,
          counters: null,
          error,
          traceId,
        });
        throw error;
      } finally {
        span.end();
      }
    });
  }

  private async reconcile(
    connectionId: string,
    listId: string,
    startedAt: Date,
    traceId: string,
    options: SyncOptions,
  ): Promise<SyncCounters> {
    const fetched = await this.deps.upstream.fetchList(connectionId, listId, options);
    const current = fetched.map(toMediaItem);
    const currentIds = [...new Set(current.map((item) => item.id))];

    return this.deps.store.withConnectionLock(connectionId, async (unit) => {
      const previous = await unit.loadBaseline(listId);
      const cache = await unit.loadCacheView(currentIds);
      const candidates = removalCandidates(previous, new Set(currentIds));
      const ownedElsewhere = await unit.loadOwnedElsewhere(listId, candidates);
      const plan = tracer.startActiveSpan("plan", (span) => {
        try {
          return planSync({ previous, cache, ownedElsewhere, current });
        } finally {
          span.end();
        }
      });
      await tracer.startActiveSpan("apply", async (span) => {
        try {
          await unit.apply(listId, plan, current, {
            listId,
            startedAt,
            finishedAt: this.now(),
            traceId,
            counters: plan.counters,
          });
        } finally {
          span.end();
        }
      });
      return plan.counters;
    });
  }
}

function setCounterAttributes(span: Span, counters: SyncCounters): void {
  span.setAttributes({
    "vaultplus.seen": counters.seen,
    "vaultplus.added_items": counters.addedItems,
    "vaultplus.updated_items": counters.updatedItems,
    "vaultplus.removed_items": counters.removedItems,
    "vaultplus.unchanged_items": counters.unchangedItems,
    "vaultplus.adopted_items": counters.adoptedItems,
  });
}
