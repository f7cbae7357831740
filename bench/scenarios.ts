import { join } from "node:path";
import type { SyncCounters } from "../src/domain/planner";
import { Child, once } from "./children";
import { createBenchDatabase } from "./database";
import { listIdFor, WARM_LIST_ID } from "./lists";
import type { SetListCommand, SimulatorInfo } from "./simulator-process";
import { type Spread, spread } from "./stats";
import type { FetchJob, FetchMeasurement, InsertJob, InsertMeasurement, SyncJob, SyncMeasurement } from "./worker";

/**
 * The sync scenarios (first sync, no-op re-sync, 10% churn) at each list size, and the
 * limit they are compared with (upstream fetch alone + one batched insert of the rows the
 * sync must write), all in one run against the same MariaDB and simulator.
 */

export type ScenarioName = "first" | "noop" | "churn";
export const SCENARIOS: readonly ScenarioName[] = ["first", "noop", "churn"];
export const SCENARIO_TITLES: Record<ScenarioName, string> = {
  first: "first sync",
  noop: "no-op re-sync",
  churn: "re-sync, 10% added/removed/changed",
};

export const PAGE_SIZE = 40;
export const BATCH_SIZE = 500;

export interface ScenarioOptions {
  /** mysql://u:p@host:port/ (ends in "/"): the bench creates its databases there. */
  serverUrl: string;
  simulator: Child<SimulatorInfo>;
  sizes: readonly number[];
  runs: number;
  /** Which scenarios to measure (default all). */
  only?: readonly ScenarioName[];
  /** Pause before each run, so the database's background work after a large write settles. */
  settleMs: number;
  /** Extra node flags for the measuring children (e.g. --cpu-prof). */
  execArgv: string[];
  log: (line: string) => void;
}

export interface Limit {
  fetchMs: Spread;
  /** Every fetch-only and floor-insert run, ms. */
  fetchRunsMs: number[];
  insertRunsMs: number[];
  /** Rows the sync must write (entries, queue, baseline members new or changed). */
  insertRows: number;
  insertMs: Spread | null;
  /** median fetch + median insert */
  totalMs: number;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  n: number;
  pages: number;
  counters: SyncCounters;
  wallMs: Spread;
  cpuMs: Spread;
  statements: Spread;
  rowsWritten: Spread;
  peakRssMiB: Spread;
  /** Medians of the phases inside the sync (span durations and summed statement waits). */
  phasesMs: { fetch: number; plan: number; apply: number; dbWait: number };
  /** Median wait per statement kind ("insert cache_entries"…), for the write-up. */
  dbByKind: Record<string, { count: number; ms: number }>;
  limit: Limit;
  /** median wall / limit */
  ratioToLimit: number;
  /** median wall / median fetch-only */
  ratioToFetch: number;
  /** pages + N/500 + 20 (the statement target) */
  statementBound: number;
  runs: SyncMeasurement[];
}

const WORKER = join(__dirname, "worker.js");
const WARM_CONNECTION = "warm";
const PREFIX = "floor_";

/** Rows of the real write set, per table, as the floor inserts them. */
export function rowsToWrite(c: SyncCounters): InsertJob["rows"] {
  return {
    cache: c.addedItems + c.updatedItems,
    queue: c.addedItems + 2 * c.updatedItems + c.removedItems,
    baseline: c.addedItems + c.updatedItems + c.adoptedItems,
  };
}

export async function runScenarios(options: ScenarioOptions): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const n of options.sizes) results.push(...(await runSize(options, n)));
  return results;
}

async function runSize(options: ScenarioOptions, n: number): Promise<ScenarioResult[]> {
  const { simulator, runs, log } = options;
  const databaseUrl = `${options.serverUrl}vp_bench_${n}`;
  const connections = Array.from({ length: runs }, (_, i) => `first-${i}`);
  if (!connections.includes("first-0")) connections.push("first-0");
  const apiKey = await createBenchDatabase(options.serverUrl, `vp_bench_${n}`, [WARM_CONNECTION, ...connections], {
    prefix: PREFIX,
    tables: ["cache_entries", "work_queue", "list_baseline_items"],
  });
  const listId = listIdFor(n);
  await simulator.call("setList", { connectionId: "*", listId, n, version: "A" } satisfies SetListCommand);

  const endpoints = {
    databaseUrl,
    upstreamUrl: simulator.info.url,
    upstreamKey: simulator.info.apiKey,
    // The default fetch window is 10,000 items: raised for the larger lists only.
    maxListItems: Math.max(10_000, n),
  };
  const warm = { connectionId: WARM_CONNECTION, listId: WARM_LIST_ID };
  const settle = () => new Promise((resolve) => setTimeout(resolve, options.settleMs));
  const fork = async <T>(cmd: string, payload: unknown) => {
    await settle();
    return once<T>(WORKER, `bench worker (${cmd})`, cmd, payload, { execArgv: options.execArgv });
  };
  const sync = async (scenario: ScenarioName, r: number, connectionId: string) => {
    const m = await fork<SyncMeasurement>("sync", {
      ...endpoints,
      apiKey,
      connectionId,
      listId,
      warm,
    } satisfies SyncJob);
    log(
      `N=${n} ${scenario} #${r + 1}: ${m.wallMs.toFixed(1)} ms, ${m.statements} statements, ${m.rows.total} rows, peak RSS ${m.peakRssMiB.toFixed(0)} MiB (pid ${m.pid})`,
    );
    return m;
  };
  // The floor inserts share one child (their memory is not measured; it builds the rows once).
  const floorChild = await Child.start(WORKER, "bench worker (floor insert)", { execArgv: options.execArgv });
  const floor = async (scenario: ScenarioName, r: number) => {
    const rows = rowsToWrite(expectedCounters(scenario, n));
    if (rows.cache + rows.queue + rows.baseline === 0) return null;
    await settle();
    const m = await floorChild.call<InsertMeasurement>("insert", {
      databaseUrl,
      n,
      rows,
      prefix: PREFIX,
    } satisfies InsertJob);
    log(`N=${n} ${scenario} floor insert #${r + 1}: ${m.rows} rows in ${m.wallMs.toFixed(1)} ms`);
    return m;
  };

  const wanted = SCENARIOS.filter((x) => (options.only ?? SCENARIOS).includes(x));
  const fetches: FetchMeasurement[] = [];
  const measured: Record<ScenarioName, SyncMeasurement[]> = { first: [], noop: [], churn: [] };
  const floors: Record<ScenarioName, InsertMeasurement[]> = { first: [], noop: [], churn: [] };
  // Rounds interleave every kind of run, so slow drift of the machine spreads over all of them.
  // first-r gets the first sync of round r; first-0 then serves the no-op and the churn runs
  // (churn flips its upstream list A→B→A…, and the next no-op re-syncs whatever it holds).
  try {
    if (!wanted.includes("first")) await sync("first", 0, "first-0"); // preparation only, not reported
    let version: "A" | "B" = "A";
    for (let r = 0; r < runs; r++) {
      const f = await fork<FetchMeasurement>("fetch", {
        ...endpoints,
        connectionId: "fetch-only",
        listId,
        warm,
      } satisfies FetchJob);
      if (f.items !== n) throw new Error(`fetch-only got ${f.items} items, expected ${n}`);
      fetches.push(f);
      log(`N=${n} fetch-only #${r + 1}: ${f.wallMs.toFixed(1)} ms (pid ${f.pid})`);
      for (const scenario of wanted) {
        const m = await floor(scenario, r);
        if (m) floors[scenario].push(m);
      }
      if (wanted.includes("first")) measured.first.push(await sync("first", r, connections[r] as string));
      if (wanted.includes("noop")) measured.noop.push(await sync("noop", r, "first-0"));
      if (wanted.includes("churn")) {
        version = version === "A" ? "B" : "A"; // each flip is 10% added, 10% removed, 10% changed
        await simulator.call("setList", { connectionId: "first-0", listId, n, version } satisfies SetListCommand);
        measured.churn.push(await sync("churn", r, "first-0"));
      }
    }
  } finally {
    await floorChild.stop();
  }
  const fetchMs = spread(fetches.map((m) => m.wallMs));

  const results: ScenarioResult[] = [];
  for (const scenario of wanted) {
    const ms = measured[scenario];
    checkCounters(scenario, n, ms);
    const counters = (ms[0] as SyncMeasurement).counters;
    const rows = rowsToWrite(counters);
    const insertRows = rows.cache + rows.queue + rows.baseline;
    const insertMs = floors[scenario].length > 0 ? spread(floors[scenario].map((m) => m.wallMs)) : null;
    const limitMs = fetchMs.median + (insertMs?.median ?? 0);
    const wallMs = spread(ms.map((m) => m.wallMs));
    const pages = Math.ceil(n / PAGE_SIZE);
    results.push({
      scenario,
      n,
      pages,
      counters,
      wallMs,
      cpuMs: spread(ms.map((m) => m.cpuMs)),
      statements: spread(ms.map((m) => m.statements)),
      rowsWritten: spread(ms.map((m) => m.rows.total)),
      peakRssMiB: spread(ms.map((m) => m.peakRssMiB)),
      phasesMs: {
        fetch: spread(ms.map((m) => m.spans["upstream.fetch_list"] ?? 0)).median,
        plan: spread(ms.map((m) => m.spans.plan ?? 0)).median,
        apply: spread(ms.map((m) => m.spans.apply ?? 0)).median,
        dbWait: spread(ms.map((m) => m.db.waitMs)).median,
      },
      dbByKind: medianByKind(ms),
      limit: {
        fetchMs,
        fetchRunsMs: fetches.map((m) => m.wallMs),
        insertRunsMs: floors[scenario].map((m) => m.wallMs),
        insertRows,
        insertMs,
        totalMs: limitMs,
      },
      ratioToLimit: wallMs.median / limitMs,
      ratioToFetch: wallMs.median / fetchMs.median,
      statementBound: pages + n / BATCH_SIZE + 20,
      runs: ms,
    });
  }
  return results;
}

/** What each scenario must report (first syncs run on fresh connections, so nothing is adopted). */
export function expectedCounters(scenario: ScenarioName, n: number): SyncCounters {
  const tenth = Math.floor(n / 10);
  const zero = { seen: n, addedItems: 0, updatedItems: 0, removedItems: 0, unchangedItems: 0, adoptedItems: 0 };
  if (scenario === "first") return { ...zero, addedItems: n };
  if (scenario === "noop") return { ...zero, unchangedItems: n };
  return { ...zero, addedItems: tenth, updatedItems: tenth, removedItems: tenth, unchangedItems: n - 2 * tenth };
}

/** The scenarios must do what they say, or their figures mean nothing. */
function checkCounters(scenario: ScenarioName, n: number, ms: SyncMeasurement[]): void {
  const expected = expectedCounters(scenario, n);
  for (const m of ms) {
    for (const [k, v] of Object.entries(expected)) {
      if (m.counters[k as keyof SyncCounters] !== v) {
        throw new Error(
          `${scenario} N=${n}: counters ${JSON.stringify(m.counters)} do not match ${JSON.stringify(expected)}`,
        );
      }
    }
  }
}

function medianByKind(ms: SyncMeasurement[]): Record<string, { count: number; ms: number }> {
  const kinds = new Set(ms.flatMap((m) => Object.keys(m.db.byKind)));
  const out: Record<string, { count: number; ms: number }> = {};
  for (const kind of kinds) {
    out[kind] = {
      count: spread(ms.map((m) => m.db.byKind[kind]?.count ?? 0)).median,
      ms: spread(ms.map((m) => m.db.byKind[kind]?.ms ?? 0)).median,
    };
  }
  return out;
}
