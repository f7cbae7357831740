import { isSpanContextValid, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { asSyncError, invalidArgument, type SyncError } from "../domain/errors";
import { isConnectionId, requireListId } from "../domain/ids";
import { type MediaItem, toMediaItem, type UpstreamMedia } from "../domain/media";
import { planSync, removalCandidates, type SyncCounters } from "../domain/planner";
import type { CredentialStore, SyncStore } from "../store/types";
import type { AccessApi, FetchProgress } from "../upstream/types";
import { authorize, type Credentials } from "./auth";

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
  syncStarted?(): void;
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

  /** SyncList as clients call it: API key first, then the connection, then the list id. */
  syncList(listId: string, credentials: Credentials, options: SyncOptions = {}): Promise<SyncResult> {
    return this.traced(listId, options, () =>
      authorize(this.deps.credentials, credentials).then((p) => p.connectionId),
    );
  }

  /**
   * The operator's path (CLI `sync`): whoever holds the database credentials may sync
   * any active connection, no API key involved.
   */
  syncConnection(connectionId: string, listId: string, options: SyncOptions = {}): Promise<SyncResult> {
    return this.traced(listId, options, async () => {
      const connection = isConnectionId(connectionId) ? await this.deps.credentials.findConnection(connectionId) : null;
      if (!connection?.active)
        throw invalidArgument(
          `connection ${JSON.stringify(connectionId)} is unknown or disabled; see \`vaultplus connections create\``,
        );
      return connection.id;
    });
  }

  private traced(listId: string, options: SyncOptions, authorizeCall: () => Promise<string>): Promise<SyncResult> {
    return tracer.startActiveSpan("SyncList", async (span) => {
      const started = performance.now();
      const startedAt = this.now();
      this.deps.observer?.syncStarted?.();
      const traceId = isSpanContextValid(span.spanContext()) ? span.spanContext().traceId : null;
      let connectionId: string | null = null;
      let validListId: string | null = null;
      try {
        connectionId = await authorizeCall();
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
        span.recordException(error);
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
        if (connectionId && validListId && error.kind !== "db_unavailable") {
          await this.deps.store.recordFailedRun?.(connectionId, validListId, startedAt, error.message, traceId);
        }
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
    traceId: string | null,
    options: SyncOptions,
  ): Promise<SyncCounters> {
    const current = await fetchCurrent(this.deps.upstream, connectionId, listId, options);
    const currentIds = [...new Set(current.map((item) => item.id))];

    return this.deps.store.withConnectionLock(connectionId, async (unit) => {
      // "plan" covers what planning needs: the reads under the lock, then the pure planner.
      const plan = await inSpan("plan", async () => {
        const previous = await unit.loadBaseline(listId);
        const cache = await unit.loadCacheView(currentIds);
        const candidates = removalCandidates(previous, new Set(currentIds));
        const ownedElsewhere = await unit.loadOwnedElsewhere(listId, candidates);
        return planSync({ previous, cache, ownedElsewhere, current });
      });
      await inSpan("apply", () =>
        unit.apply(listId, plan, {
          listId,
          startedAt,
          finishedAt: this.now(),
          traceId,
          counters: plan.counters,
        }),
      );
      return plan.counters;
    });
  }
}

/**
 * The live list as MediaItems, converted page by page: each page is fingerprinted in a
 * setImmediate callback, that is while the request for the next page is already in flight, so
 * the work overlaps the upstream's latency; and the raw items (signed URLs included) are dropped
 * page by page instead of being held all at once. Only a complete list is returned.
 */
async function fetchCurrent(
  upstream: AccessApi,
  connectionId: string,
  listId: string,
  options: SyncOptions,
): Promise<MediaItem[]> {
  const current: MediaItem[] = [];
  const pending: UpstreamMedia[][] = [];
  let scheduled = false;
  const failures: unknown[] = [];
  const convert = () => {
    scheduled = false;
    try {
      for (let page = pending.shift(); page; page = pending.shift()) {
        for (const item of page) current.push(toMediaItem(item));
      }
    } catch (error) {
      failures.push(error); // thrown below, never from the callback
    }
  };
  await upstream.fetchPages(
    connectionId,
    listId,
    (items) => {
      pending.push(items);
      if (!scheduled) {
        scheduled = true;
        setImmediate(convert);
      }
    },
    options,
  );
  convert();
  if (failures.length > 0) throw failures[0];
  return current;
}

/** A child span around one step; a step that throws marks its span failed (the safe message only). */
function inSpan<T>(name: string, step: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await step();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: asSyncError(err).message });
      throw err;
    } finally {
      span.end();
    }
  });
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
