import { setTimeout as delay } from "node:timers/promises";
import { context, propagation, type Span, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { SyncError } from "../domain/errors";
import type { UpstreamMedia } from "../domain/media";
import { parsePage, type UpstreamPage } from "./schema";
import type { AccessApi, FetchListOptions, PageHandler } from "./types";

/** Counts for metrics (SPEC §6: upstream pages and retries). */
export interface UpstreamObserver {
  page(): void;
  retry(reason: string): void;
}

export interface HttpAccessApiOptions {
  baseUrl: string;
  apiKey: string;
  /** Items per page request, 1–40 (the Access API's maximum). */
  pageSize?: number;
  /** A list holding more items than this fails with `window_exceeded`. */
  maxListItems?: number;
  /** Per page request, body included. */
  timeoutMs?: number;
  /** The whole fetch, every page and retry included. */
  deadlineMs?: number;
  /** Attempts per page before giving up (the deadline may end it sooner). */
  maxAttempts?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  observer?: UpstreamObserver;
  tracer?: Tracer;
  /** Test seams: jitter source, abortable sleep, wall clock (epoch ms). */
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

const FAILED = "Failed to fetch vault list media";
const MAX_PAGE_SIZE = 40;

function upstreamFailed(detail: string, cause?: unknown): SyncError {
  return new SyncError("upstream_failed", `${FAILED}: ${detail}`, cause === undefined ? undefined : { cause });
}

/** State of one fetchList call. */
interface Run {
  connectionId: string;
  listId: string;
  span: Span;
  caller: AbortSignal | undefined;
  /** caller or deadline: what stops everything, sleeps included. */
  stop: AbortSignal;
  deadlineAt: number;
  retries: number;
}

/** What one failed-but-retryable attempt tells the retry loop. */
interface Transient {
  reason: string; // short, for span events and metrics: "HTTP 503", "timeout", "connection reset"
  detail: string; // for the final message: "the Access API answered HTTP 503"
  retryAfterMs?: number;
}

export class HttpAccessApi implements AccessApi {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly pageSize: number;
  private readonly maxListItems: number;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxAttempts: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly observer: UpstreamObserver | undefined;
  private readonly tracer: Tracer;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;

  constructor(options: HttpAccessApiOptions) {
    const url = new URL(options.baseUrl); // throws early on a malformed base URL
    this.baseUrl = url.href.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.pageSize = options.pageSize ?? MAX_PAGE_SIZE;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > MAX_PAGE_SIZE) {
      throw new RangeError(`pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}`);
    }
    this.maxListItems = options.maxListItems ?? 10000;
    this.timeoutMs = options.timeoutMs ?? 10000;
    this.deadlineMs = options.deadlineMs ?? 60000;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.baseBackoffMs = options.baseBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.observer = options.observer;
    this.tracer = options.tracer ?? trace.getTracer("vaultplus.upstream");
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }));
    this.now = options.now ?? Date.now;
  }

  fetchList(connectionId: string, listId: string, options: FetchListOptions = {}): Promise<UpstreamMedia[]> {
    const items: UpstreamMedia[] = [];
    const collect = (page: UpstreamMedia[]) => {
      for (const item of page) items.push(item);
    };
    return this.fetchPages(connectionId, listId, collect, options).then(() => items);
  }

  fetchPages(
    connectionId: string,
    listId: string,
    onPage: PageHandler,
    options: FetchListOptions = {},
  ): Promise<number> {
    const attributes = { "vaultplus.list_id": listId };
    return this.tracer.startActiveSpan("upstream.fetch_list", { attributes }, async (span) => {
      // Own timer rather than AbortSignal.timeout so it is cleared as soon as the fetch ends.
      const deadlineController = new AbortController();
      const timer = setTimeout(() => deadlineController.abort(), this.deadlineMs);
      const deadline = deadlineController.signal;
      const caller = options.signal;
      const run: Run = {
        connectionId,
        listId,
        span,
        caller,
        stop: caller ? AbortSignal.any([caller, deadline]) : deadline,
        deadlineAt: this.now() + this.deadlineMs,
        retries: 0,
      };
      let pages = 0;
      try {
        let received = 0;
        for (;;) {
          const offset = received;
          const page = await this.requestPage(run, offset);
          pages++;
          this.observer?.page();
          if (received + page.list.length > this.maxListItems) {
            throw new SyncError(
              "window_exceeded",
              `list exceeded the maximum fetch window of ${this.maxListItems} items`,
            );
          }
          received += page.list.length;
          onPage(page.list);
          options.onProgress?.(received);
          if (!page.hasMore) return received;
          if (page.list.length === 0) {
            // Following offset by zero items would ask for the same page forever.
            throw upstreamFailed(
              `the Access API sent an empty page at offset ${offset} that claims more items follow (hasMore true); retry later`,
            );
          }
        }
      } catch (err) {
        const failure = err instanceof SyncError ? err : upstreamFailed("unexpected error; retry later", err);
        span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
        throw failure;
      } finally {
        clearTimeout(timer);
        span.setAttribute("vaultplus.upstream.pages", pages);
        span.setAttribute("vaultplus.upstream.retries", run.retries);
        span.end();
      }
    });
  }

  /** One page, retried on 429, 5xx, resets and timeouts with capped, fully jittered backoff. */
  private async requestPage(run: Run, offset: number): Promise<UpstreamPage> {
    const url = `${this.baseUrl}/v2/access/vault/lists/${encodeURIComponent(run.listId)}/media?limit=${this.pageSize}&offset=${offset}`;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(run, url, offset);
      if (!("reason" in outcome)) return outcome;
      if (attempt >= this.maxAttempts) {
        throw upstreamFailed(`${outcome.detail} after ${attempt} attempts; retry later`);
      }
      const waitMs = outcome.retryAfterMs ?? this.backoff(attempt);
      if (this.now() + waitMs >= run.deadlineAt) {
        throw upstreamFailed(
          `${outcome.detail}, and waiting ${waitMs} ms to retry would pass the ${this.deadlineMs} ms deadline; retry later`,
        );
      }
      run.retries++;
      this.observer?.retry(outcome.reason);
      run.span.addEvent("retry", { attempt, reason: outcome.reason, delay_ms: waitMs });
      try {
        await this.sleep(waitMs, run.stop);
      } catch {
        throw this.stopped(run);
      }
    }
  }

  /** Returns the page, or a Transient to retry; throws a SyncError for what must not be retried. */
  private async attempt(run: Run, url: string, offset: number): Promise<UpstreamPage | Transient> {
    const headers: Record<string, string> = {
      apiKey: this.apiKey,
      "x-connection-id": run.connectionId,
      accept: "application/json",
    };
    // W3C traceparent of the active (upstream.fetch_list) span; a later instrumentation
    // that sets the same key simply overwrites it.
    propagation.inject(context.active(), headers);
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = AbortSignal.any([run.stop, timeout]);
    let text: string;
    let status: number;
    try {
      // redirect "manual": following one would hand the apiKey header to another host.
      const response = await fetch(url, { headers, signal, redirect: "manual" });
      status = response.status;
      if (status < 200 || status >= 300) {
        const retryAfter = response.headers.get("retry-after");
        await response.body?.cancel().catch(() => {});
        return this.classifyStatus(status, retryAfter);
      }
      text = await response.text();
    } catch (err) {
      if (err instanceof SyncError) throw err;
      if (run.stop.aborted) throw this.stopped(run);
      if (timeout.aborted) {
        return { reason: "timeout", detail: `the Access API did not answer within ${this.timeoutMs} ms` };
      }
      const reason = networkReason(err);
      return { reason, detail: `the Access API could not be reached (${reason})` };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw upstreamFailed(`the Access API sent a page at offset ${offset} that is not valid JSON; retry later`);
    }
    const parsed = parsePage(body);
    if (!parsed.ok) {
      throw upstreamFailed(
        `the Access API sent a page at offset ${offset} that is not the documented shape (${parsed.problem}); retry later`,
      );
    }
    return parsed.page;
  }

  private classifyStatus(status: number, retryAfter: string | null): Transient {
    const detail = `the Access API answered HTTP ${status}`;
    if (status === 429) {
      const retryAfterMs = this.parseRetryAfter(retryAfter);
      return retryAfterMs === undefined ? { reason: "HTTP 429", detail } : { reason: "HTTP 429", detail, retryAfterMs };
    }
    if (status >= 500) return { reason: `HTTP ${status}`, detail };
    if (status === 401 || status === 403) {
      throw upstreamFailed(
        `${detail}: it refused Vault+'s upstream API key; the operator must check VAULTPLUS_UPSTREAM_API_KEY`,
      );
    }
    if (status >= 300 && status < 400) {
      throw upstreamFailed(
        `${detail} (a redirect, which is not followed); the operator must check VAULTPLUS_UPSTREAM_URL`,
      );
    }
    throw upstreamFailed(`${detail} (check the list id and the connection)`);
  }

  /** Retry-After is either delta-seconds or an HTTP date; anything else falls back to the backoff. */
  private parseRetryAfter(value: string | null): number | undefined {
    if (value === null) return undefined;
    const trimmed = value.trim();
    if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
    const at = Date.parse(trimmed);
    return Number.isNaN(at) ? undefined : Math.max(0, at - this.now());
  }

  /** Full jitter: uniform in [0, min(cap, base·2^(attempt-1))). */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
    return Math.floor(this.random() * ceiling);
  }

  /** The caller's abort wins over the deadline when both happened. */
  private stopped(run: Run): SyncError {
    if (run.caller?.aborted) return upstreamFailed("the fetch was cancelled before it completed");
    return upstreamFailed(`no answer within the ${this.deadlineMs} ms deadline; retry later`);
  }
}

/** A short, secret-free name for a transport failure (undici puts the cause's code on `cause`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  switch (code) {
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
    case "EPIPE":
      return "connection reset";
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connect timeout";
    default:
      return "network error";
  }
}
