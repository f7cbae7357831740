import type { Context } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, type ReadableSpan, type Span, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Knex } from "knex";
import { type Connection, createConnection } from "mysql2/promise";

/**
 * What a benchmark child can observe about one sync without changing it: span durations
 * (the service's own SyncList / upstream.fetch_list / plan / apply spans), time spent
 * waiting on each kind of statement (knex's query events), and the rows the server wrote.
 */

/** Sums span durations by name; installs itself as the global tracer provider. */
export class SpanTimes implements SpanProcessor {
  readonly ms = new Map<string, number>();
  /** Names of the spans started and not yet ended, innermost last. */
  readonly open: string[] = [];

  static install(): SpanTimes {
    const times = new SpanTimes();
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [times] }));
    return times;
  }

  reset(): void {
    this.ms.clear();
  }

  onStart(span: Span, _ctx: Context): void {
    this.open.push((span as unknown as ReadableSpan).name);
  }
  onEnd(span: ReadableSpan): void {
    const at = this.open.lastIndexOf(span.name);
    if (at >= 0) this.open.splice(at, 1);
    const [s, ns] = span.duration;
    this.ms.set(span.name, (this.ms.get(span.name) ?? 0) + s * 1000 + ns / 1e6);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface StatementStats {
  /** Statements sent (BEGIN and COMMIT included). */
  count: number;
  /** Time from sending to the response, summed, for statements knex reports a response for. */
  waitMs: number;
  /** By "verb table", e.g. "insert cache_entries": count and summed wait. */
  byKind: Record<string, { count: number; ms: number }>;
}

/** Watches the statements sent through `knex` between start() and stop(). */
export function watchStatements(knex: Knex): { stop(): StatementStats } {
  const started = new Map<string, { at: number; kind: string }>();
  const stats: StatementStats = { count: 0, waitMs: 0, byKind: {} };
  const onQuery = (q: { sql: string; __knexQueryUid?: string }) => {
    stats.count++;
    const kind = statementKind(q.sql);
    const entry = stats.byKind[kind] ?? { count: 0, ms: 0 };
    stats.byKind[kind] = entry;
    entry.count++;
    if (q.__knexQueryUid) started.set(q.__knexQueryUid, { at: performance.now(), kind });
  };
  const onResponse = (_res: unknown, q: { __knexQueryUid?: string }) => {
    const s = q.__knexQueryUid ? started.get(q.__knexQueryUid) : undefined;
    if (!s) return;
    const ms = performance.now() - s.at;
    stats.waitMs += ms;
    (stats.byKind[s.kind] as { ms: number }).ms += ms;
    started.delete(q.__knexQueryUid as string);
  };
  knex.on("query", onQuery);
  knex.on("query-response", onResponse);
  return {
    stop() {
      knex.removeListener("query", onQuery);
      knex.removeListener("query-response", onResponse);
      return stats;
    },
  };
}

function statementKind(sql: string): string {
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? "?";
  const table = /\b(?:from|into|update)\s+[`"]?(\w+)/i.exec(sql)?.[1];
  return table ? `${verb} ${table}` : verb;
}

export interface RowsWritten {
  inserted: number;
  updated: number;
  deleted: number;
  total: number;
}

/**
 * Rows written, from the server's own global handler counters (Handler_write, Handler_update,
 * Handler_delete; MariaDB 10.11 no longer has Innodb_rows_*): the bench owns its MariaDB
 * server and runs one sync at a time, so the delta around a sync is that sync's row
 * operations on real tables (temporary tables count separately, as Handler_tmp_*). An
 * upsert that finds its row counts as one write attempt plus one update, which is the
 * work the engine does; an UPDATE that leaves a row as it was is not counted.
 */
export class RowCounter {
  private constructor(private readonly conn: Connection) {}

  static async open(databaseUrl: string): Promise<RowCounter> {
    return new RowCounter(await createConnection({ uri: databaseUrl }));
  }

  async read(): Promise<RowsWritten> {
    const [rows] = await this.conn.query(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')",
    );
    const v = new Map(
      (rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]),
    );
    const inserted = v.get("Handler_write") ?? Number.NaN;
    const updated = v.get("Handler_update") ?? Number.NaN;
    const deleted = v.get("Handler_delete") ?? Number.NaN;
    return { inserted, updated, deleted, total: inserted + updated + deleted };
  }

  static delta(before: RowsWritten, after: RowsWritten): RowsWritten {
    return {
      inserted: after.inserted - before.inserted,
      updated: after.updated - before.updated,
      deleted: after.deleted - before.deleted,
      total: after.total - before.total,
    };
  }

  close(): Promise<void> {
    return this.conn.end();
  }
}

export const mib = (bytes: number): number => bytes / (1024 * 1024);

/**
 * Samples this process's RSS every few milliseconds and keeps the highest value seen during
 * each phase (the innermost open span: upstream.fetch_list, plan, apply; "SyncList" for the
 * steps between them): where the peak happens, not only how high it is.
 */
export function sampleRssByPhase(spans: SpanTimes, everyMs = 5): { stop(): Record<string, number> } {
  const max: Record<string, number> = {};
  const sample = () => {
    const phase = spans.open[spans.open.length - 1] ?? "outside spans";
    const rss = mib(process.memoryUsage.rss());
    if (rss > (max[phase] ?? 0)) max[phase] = rss;
  };
  const timer = setInterval(sample, everyMs);
  sample();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max;
    },
  };
}

/** Peak resident set size of this process so far, in MiB (maxRSS is in KiB). */
export const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;
