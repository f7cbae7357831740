import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { SyncCounters } from "../../src/domain/planner";
import { type AccessApiMedia, type FaultRule, generateItems } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { GrpcSyncClient, restSync, type Stack, startStack } from "../support/stack";
import { COUNTER_FIELDS, countersOf, expectInvariants, scenario, stateOf, timed } from "./support";

/**
 * SPEC §4 faults against the whole service (REST and gRPC, real HTTP upstream, real database).
 * Every case runs on a twin pair of connections with identical histories: the faulted one (f)
 * and a control (c) that never sees the fault. A failed sync must leave f's state exactly as it
 * was; afterwards a clean sync of f must give the counters c's sync gave, and f's state must
 * equal c's. A transient fault must be retried within the deadline, giving c's counters at once.
 */

const TIMEOUT_MS = 300;
const DEADLINE_MS = 1500;
const PAGE_SIZE = 10;
const WINDOW = 150;
const L = "7001";
const L2 = "7002";
const ACCOUNT = "acct_faults";

interface FaultCase {
  name: string;
  faults: FaultRule[];
  /** The upstream list f sees during the faulted sync only (default: v2). */
  during?: (s: ReturnType<typeof scenario>) => AccessApiMedia[];
  via?: "rest" | "grpc";
  /** Transient: recovers; `retries` is the least number of repeated page requests. */
  recovers?: { retries: number; atLeastMs?: number };
  /** Persistent: fails with this status and message. */
  fails?: { http: number; grpc: GrpcStatus; message: RegExp };
}

const UPSTREAM = { http: 502, grpc: GrpcStatus.UNAVAILABLE };
const WINDOW_FAIL = {
  http: 502,
  grpc: GrpcStatus.RESOURCE_EXHAUSTED,
  message: /^list exceeded the maximum fetch window of 150 items$/,
};

const CASES: FaultCase[] = [
  {
    name: "5xx on a middle page, persistent",
    faults: [{ kind: "status", status: 503, offset: 10, times: "always" }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: the Access API answered HTTP 503/ },
  },
  {
    name: "5xx on a middle page, transient",
    faults: [{ kind: "status", status: 500, offset: 20, times: 2 }],
    recovers: { retries: 2 },
    via: "grpc",
  },
  {
    name: "429 with Retry-After, transient",
    faults: [{ kind: "status", status: 429, retryAfter: "1", offset: 0, times: 1 }],
    recovers: { retries: 1, atLeastMs: 1000 },
  },
  {
    name: "429 with Retry-After, persistent",
    faults: [{ kind: "status", status: 429, retryAfter: "1", offset: 10, times: "always" }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: the Access API answered HTTP 429/ },
    via: "grpc",
  },
  {
    name: "429 without Retry-After, transient",
    faults: [{ kind: "status", status: 429, offset: 10, times: 2 }],
    recovers: { retries: 2 },
  },
  {
    name: "429 without Retry-After, persistent",
    faults: [{ kind: "status", status: 429, offset: 10, times: "always" }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: the Access API answered HTTP 429/ },
  },
  {
    name: "connection reset, transient",
    faults: [{ kind: "reset", offset: 10, times: 1 }],
    recovers: { retries: 1 },
    via: "grpc",
  },
  {
    name: "connection reset, persistent",
    faults: [{ kind: "reset", offset: 20, times: "always" }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: .*connection reset/ },
  },
  {
    name: "a page that hangs past the timeout, transient",
    faults: [{ kind: "hang", offset: 20, times: 1 }],
    recovers: { retries: 1, atLeastMs: TIMEOUT_MS },
  },
  {
    name: "a page that hangs past the timeout, persistent",
    faults: [{ kind: "hang", offset: 10, times: "always" }],
    fails: {
      ...UPSTREAM,
      message:
        /^Failed to fetch vault list media: (the Access API did not answer within 300 ms|no answer within the 1500 ms deadline)/,
    },
    via: "grpc",
  },
  {
    name: "bad JSON on a middle page",
    faults: [{ kind: "badJson", offset: 20 }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: .*offset 20 that is not valid JSON/ },
  },
  {
    name: "a page of the wrong shape",
    faults: [{ kind: "wrongShape", offset: 10 }],
    fails: {
      ...UPSTREAM,
      message: /^Failed to fetch vault list media: .*not the documented shape \(list is missing\)/,
    },
    via: "grpc",
  },
  {
    name: "non-numeric ids",
    faults: [{ kind: "nonNumericIds", offset: 30 }],
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: .*list\[0\]\.id is not a number/ },
  },
  {
    name: "hasMore that never ends (empty pages)",
    faults: [{ kind: "endlessHasMore", times: "always" }],
    fails: { ...UPSTREAM, message: /empty page at offset 32 that claims more items follow/ },
  },
  {
    name: "hasMore that never ends (full pages)",
    faults: [{ kind: "endlessHasMore", fill: true, times: "always" }],
    fails: WINDOW_FAIL,
    via: "grpc",
  },
  {
    name: "a list over the window",
    faults: [],
    during: () => bigList(WINDOW + 1),
    fails: WINDOW_FAIL,
  },
  {
    name: "the overall deadline (every page slow, none past the page timeout)",
    faults: [{ kind: "delay", ms: 120, times: "always" }],
    during: () => bigList(WINDOW), // 15 pages × 120 ms > 1500 ms
    fails: { ...UPSTREAM, message: /^Failed to fetch vault list media: no answer within the 1500 ms deadline/ },
  },
];

/** The fast cases, run on SQLite as well: the store is not involved before the fetch ends. */
const SQLITE_CASES = new Set([
  "5xx on a middle page, persistent",
  "5xx on a middle page, transient",
  "bad JSON on a middle page",
  "a list over the window",
]);

/** v2 followed by new items: `count` items in all. */
function bigList(count: number): AccessApiMedia[] {
  const { v2 } = scenario();
  return [...v2, ...generateItems(count - v2.length, { startId: 6_000_000_000 })];
}

type Outcome = { ok: true; counters: SyncCounters } | { ok: false; http?: number; grpc?: GrpcStatus; message: string };

describe("hardening: upstream faults leave no trace", function () {
  this.timeout(30_000);

  forEachDatabase((db, kind) => {
    let stack: Stack;
    let grpc: GrpcSyncClient;
    let apiKey: string;

    before(async () => {
      stack = await startStack(db, {
        env: {
          VAULTPLUS_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
          VAULTPLUS_UPSTREAM_DEADLINE_MS: String(DEADLINE_MS),
          VAULTPLUS_UPSTREAM_PAGE_SIZE: String(PAGE_SIZE),
          VAULTPLUS_MAX_LIST_ITEMS: String(WINDOW),
        },
      });
      grpc = new GrpcSyncClient(stack.grpcTarget);
      apiKey = (await db.admin.createApiKey(ACCOUNT, ["ACCOUNT"])).token;
    });
    after(async () => {
      grpc?.close();
      await stack?.close();
    });

    async function sync(connectionId: string, listId: string, via: "rest" | "grpc" = "rest"): Promise<Outcome> {
      if (via === "rest") {
        const result = await restSync(stack.httpUrl, listId, { apikey: apiKey, "x-connection-id": connectionId });
        if (result.status === 200) return { ok: true, counters: countersOf(result, listId) };
        expect(Object.keys(result.body)).to.deep.equal(["error"]);
        return { ok: false, http: result.status, message: String(result.body.error) };
      }
      try {
        const res = await grpc.sync(listId, { apikey: apiKey, "x-connection-id": connectionId });
        expect(res.listId).to.equal(listId);
        const counters = Object.fromEntries(COUNTER_FIELDS.map((f) => [f, res[f]])) as unknown as SyncCounters;
        expectInvariants(counters);
        return { ok: true, counters };
      } catch (err) {
        const e = err as ServiceError;
        return { ok: false, grpc: e.code, message: e.details };
      }
    }

    async function mustSync(connectionId: string, listId: string): Promise<SyncCounters> {
      const outcome = await sync(connectionId, listId);
      if (!outcome.ok) throw new Error(`sync of ${listId} for ${connectionId} failed: ${outcome.message}`);
      return outcome.counters;
    }

    CASES.forEach((c, index) => {
      if (kind === "sqlite" && !SQLITE_CASES.has(c.name)) return;
      it(c.name, async () => {
        const s = scenario();
        const f = `f${index}`;
        const ctl = `c${index}`;
        const { simulator } = stack;
        for (const conn of [f, ctl]) {
          await db.admin.createConnection(ACCOUNT, conn);
          simulator.setList(conn, L, s.v1);
          simulator.setList(conn, L2, s.l2);
          expect(await mustSync(conn, L)).to.deep.include({ seen: 35, addedItems: 35 });
          expect(await mustSync(conn, L2)).to.deep.include({ seen: 15, addedItems: 5, adoptedItems: 10 });
          simulator.setList(conn, L, s.v2);
        }
        if (c.during) simulator.setList(f, L, c.during(s));

        const before = await stateOf(db.admin, f);
        for (const rule of c.faults) simulator.injectFault({ ...rule, connectionId: f });
        const mark = simulator.requests.length;
        const run = await timed(sync(f, L, c.via));
        const outcome = run.value as Outcome;
        const requests = simulator.requests.slice(mark).filter((r) => r.headers["x-connection-id"] === f);
        simulator.clearFaults();
        simulator.setList(f, L, s.v2);

        // What the same sync gives without any fault.
        const control = await mustSync(ctl, L);
        expect(control).to.deep.equal(s.expected);

        if (c.recovers) {
          expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
          expect((outcome as { counters: SyncCounters }).counters).to.deep.equal(control);
          // The retries are visible upstream: some page was asked for more than once.
          const perOffset = new Map<string, number>();
          for (const r of requests) perOffset.set(r.query.offset ?? "", (perOffset.get(r.query.offset ?? "") ?? 0) + 1);
          const repeats = [...perOffset.values()].reduce((sum, n) => sum + n - 1, 0);
          expect(repeats).to.equal(c.recovers.retries);
          expect(run.ms).to.be.below(DEADLINE_MS);
          if (c.recovers.atLeastMs) expect(run.ms).to.be.at.least(c.recovers.atLeastMs - 5);
        } else {
          const fails = c.fails!;
          expect(outcome.ok, JSON.stringify(outcome)).to.equal(false);
          const failure = outcome as { http?: number; grpc?: GrpcStatus; message: string };
          if ((c.via ?? "rest") === "rest") expect(failure.http).to.equal(fails.http);
          else expect(failure.grpc).to.equal(fails.grpc);
          expect(failure.message).to.match(fails.message);
          // No internals and no signed URL in the message.
          expect(failure.message).not.to.match(/Signature=|https?:\/\/|\bat \w+ \(|node_modules|\.ts:\d/);
          // Bounded: within 3x the overall deadline.
          expect(run.ms).to.be.below(3 * DEADLINE_MS);
          // Nothing changed: entries, baselines, work queue.
          expect(await stateOf(db.admin, f)).to.deep.equal(before);
          // The later clean sync gives exactly what it would have given without the failure.
          expect(await mustSync(f, L)).to.deep.equal(control);
        }
        expect(await stateOf(db.admin, f)).to.deep.equal(await stateOf(db.admin, ctl));
        // And the next sync of an unchanged list finds everything unchanged.
        expect(await mustSync(f, L)).to.deep.equal({
          ...control,
          addedItems: 0,
          updatedItems: 0,
          removedItems: 0,
          unchangedItems: 32,
        });
      });
    });

    it("duplicate ids: de-duplicated, the first occurrence wins (SPEC §3), same as the de-duplicated list", async () => {
      const s = scenario();
      const f = "fdup";
      const ctl = "cdup";
      const { simulator } = stack;
      for (const conn of [f, ctl]) {
        await db.admin.createConnection(ACCOUNT, conn);
        simulator.setList(conn, L, s.v1);
        simulator.setList(conn, L2, s.l2);
        await mustSync(conn, L);
        await mustSync(conn, L2);
      }
      // Repeats on the same page, across pages (as offset drift produces), and a repeat whose
      // content differs from the first occurrence (it must be ignored).
      const v2 = s.v2;
      const first = v2[0] as AccessApiMedia;
      const withRepeats = [...v2.slice(0, 5), first, ...v2.slice(5, 15), v2[3] as AccessApiMedia, ...v2.slice(15)];
      withRepeats.push({ ...(v2[7] as AccessApiMedia), type: "video" }, v2[31] as AccessApiMedia);
      simulator.setList(f, L, withRepeats);
      simulator.setList(ctl, L, v2);
      const control = await mustSync(ctl, L);
      expect(await mustSync(f, L)).to.deep.equal(control);
      expect(await stateOf(db.admin, f)).to.deep.equal(await stateOf(db.admin, ctl));
    });
  });
});
