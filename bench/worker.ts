import { createConnection } from "mysql2/promise";
import { createSyncService, openStores } from "../src/app";
import { loadConfig } from "../src/config";
import { type MediaItem, toMediaItem } from "../src/domain/media";
import type { SyncCounters } from "../src/domain/planner";
import { HttpAccessApi } from "../src/upstream/http-client";
import { serveParent } from "./children";
import { listItems } from "./lists";
import {
  peakRssMiB,
  RowCounter,
  type RowsWritten,
  SpanTimes,
  type StatementStats,
  sampleRssByPhase,
  watchStatements,
} from "./probes";

/**
 * One measurement in a fresh process (bench/run.ts forks one per run): a sync through the
 * service as wired in production (src/app.ts), the upstream client alone, or the floor
 * insert. Everything that is not measured (module loading, the first database connection,
 * a warm-up sync of a small list) happens before the clock starts; peak RSS is this
 * process's maxRSS at the end, so it includes that baseline.
 */

export interface Endpoints {
  databaseUrl: string;
  upstreamUrl: string;
  upstreamKey: string;
  maxListItems: number;
}

export interface SyncJob extends Endpoints {
  apiKey: string;
  connectionId: string;
  listId: string;
  warm: { connectionId: string; listId: string };
}

export interface SyncMeasurement {
  /** The child's pid: names its .cpuprofile under --profile. */
  pid: number;
  wallMs: number;
  cpuMs: number;
  statements: number;
  rows: RowsWritten;
  peakRssMiB: number;
  /** RSS right before the measured sync (after loading and warm-up). */
  startRssMiB: number;
  counters: SyncCounters;
  /** Span durations by name (SyncList, upstream.fetch_list, plan, apply). */
  spans: Record<string, number>;
  /** Highest RSS sampled during each phase (innermost open span), MiB. */
  rssByPhaseMiB: Record<string, number>;
  db: StatementStats;
}

export interface FetchJob extends Endpoints {
  connectionId: string;
  listId: string;
  warm: { connectionId: string; listId: string };
}

export interface FetchMeasurement {
  pid: number;
  wallMs: number;
  cpuMs: number;
  items: number;
  peakRssMiB: number;
}

/** Rows the sync has to write, per table, for the floor insert. */
export interface InsertJob {
  databaseUrl: string;
  /** Size of the list the rows are taken from (version A). */
  n: number;
  rows: { cache: number; queue: number; baseline: number };
  /** Prefix of the scratch copies of the real tables (CREATE TABLE … LIKE). */
  prefix: string;
}

export interface InsertMeasurement {
  wallMs: number;
  statements: number;
  rows: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

async function measureSync(job: SyncJob): Promise<SyncMeasurement> {
  // The service's tracers are proxies: they follow the global provider installed here.
  const spans = SpanTimes.install();
  const config = loadConfig({
    VAULTPLUS_DATABASE_URL: job.databaseUrl,
    VAULTPLUS_MAX_LIST_ITEMS: String(job.maxListItems),
  });
  const stores = openStores(config);
  const rowCounter = await RowCounter.open(job.databaseUrl);
  try {
    const service = createSyncService(config, stores, { url: job.upstreamUrl, apiKey: job.upstreamKey });
    await service.syncList(job.warm.listId, { apiKey: job.apiKey, connectionId: job.warm.connectionId });
    const startRss = process.memoryUsage().rss / (1024 * 1024);
    spans.reset();
    const before = await rowCounter.read();
    const statements = watchStatements(stores.knex);
    const rss = sampleRssByPhase(spans);
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const result = await service.syncList(job.listId, { apiKey: job.apiKey, connectionId: job.connectionId });
    const wallMs = performance.now() - t0;
    const cpuMs = cpuMsSince(cpu);
    const db = statements.stop();
    const rssByPhaseMiB = rss.stop();
    const after = await rowCounter.read();
    return {
      pid: process.pid,
      wallMs,
      cpuMs,
      statements: db.count,
      rows: RowCounter.delta(before, after),
      peakRssMiB: peakRssMiB(),
      startRssMiB: startRss,
      counters: result.counters,
      spans: Object.fromEntries(spans.ms),
      rssByPhaseMiB,
      db,
    };
  } finally {
    await rowCounter.close();
    await stores.close();
  }
}

async function measureFetch(job: FetchJob): Promise<FetchMeasurement> {
  const config = loadConfig({ VAULTPLUS_MAX_LIST_ITEMS: String(job.maxListItems) });
  // The same client and settings as createSyncService builds.
  const client = new HttpAccessApi({
    baseUrl: job.upstreamUrl,
    apiKey: job.upstreamKey,
    pageSize: config.upstreamPageSize,
    maxListItems: config.maxListItems,
    timeoutMs: config.upstreamTimeoutMs,
    deadlineMs: config.upstreamDeadlineMs,
  });
  await client.fetchList(job.warm.connectionId, job.warm.listId);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const items = await client.fetchList(job.connectionId, job.listId);
  const wallMs = performance.now() - t0;
  return { pid: process.pid, wallMs, cpuMs: cpuMsSince(cpu), items: items.length, peakRssMiB: peakRssMiB() };
}

/**
 * The floor for writing: the rows the sync must write as one batched insert, in one
 * transaction, into empty scratch tables with the same definition and indexes as the real
 * ones: plain multi-row INSERTs (mysql2's `VALUES ?` bulk form; no upsert, no query
 * builder) of FLOOR_ROWS_PER_STATEMENT rows, the fastest statement size on the reference
 * machine (see BENCHMARKS.md: one statement per table is slower than 1,000-row ones).
 */
export const FLOOR_ROWS_PER_STATEMENT = 1000;

const floorItems = new Map<number, MediaItem[]>();

async function measureInsert(job: InsertJob): Promise<InsertMeasurement> {
  let items = floorItems.get(job.n);
  if (!items) {
    items = listItems(job.n, "A").map(toMediaItem);
    floorItems.set(job.n, items);
  }
  const now = Date.now();
  const pool = items;
  const pick = (count: number) => Array.from({ length: count }, (_, i) => pool[i % pool.length] as MediaItem);
  const tables: Array<{ table: string; columns: string[]; rows: unknown[][] }> = [
    {
      table: "cache_entries",
      columns: [
        "connection_id",
        "media_id",
        "fingerprint",
        "metadata",
        "metadata_version",
        "state",
        "created_at",
        "updated_at",
      ],
      rows: pick(job.rows.cache).map((m) => [
        "floor",
        m.id,
        m.fingerprint,
        JSON.stringify(m.metadata),
        1,
        "pending",
        now,
        now,
      ]),
    },
    {
      table: "work_queue",
      columns: ["connection_id", "media_id", "action", "created_at"],
      rows: pick(job.rows.queue).map((m) => ["floor", m.id, "cache", now]),
    },
    {
      table: "list_baseline_items",
      columns: [
        "connection_id",
        "list_id",
        "media_id",
        "fingerprint",
        "first_added_at",
        "last_seen_at",
        "last_synced_at",
      ],
      rows: pick(job.rows.baseline).map((m) => ["floor", "1", m.id, m.fingerprint, now, now, now]),
    },
  ];
  const conn = await createConnection({ uri: job.databaseUrl });
  try {
    for (const t of tables) await conn.query(`TRUNCATE TABLE ${job.prefix}${t.table}`);
    await conn.query("SELECT 1");
    let statements = 0;
    const t0 = performance.now();
    await conn.query("BEGIN");
    for (const t of tables) {
      for (let i = 0; i < t.rows.length; i += FLOOR_ROWS_PER_STATEMENT) {
        const rows = t.rows.slice(i, i + FLOOR_ROWS_PER_STATEMENT);
        await conn.query(`INSERT INTO ${job.prefix}${t.table} (${t.columns.join(", ")}) VALUES ?`, [rows]);
        statements++;
      }
    }
    await conn.query("COMMIT");
    const wallMs = performance.now() - t0;
    return { wallMs, statements, rows: tables.reduce((s, t) => s + t.rows.length, 0) };
  } finally {
    await conn.end();
  }
}

if (require.main === module) {
  serveParent({
    sync: (job: SyncJob) => measureSync(job),
    fetch: (job: FetchJob) => measureFetch(job),
    insert: (job: InsertJob) => measureInsert(job),
  });
}
