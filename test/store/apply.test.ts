import { expect } from "chai";
import { METADATA_VERSION } from "../../src/domain/media";
import type { SyncPlan } from "../../src/domain/planner";
import { forEachDatabase } from "../support/databases";
import { counters, mediaItems, syncWithStore } from "../support/sync";

const T1 = 1_700_000_000_000;
const at = (minutes: number) => new Date(T1 + minutes * 60_000);
const TRACE = "0af7651916cd43dd8448eb211c80319c";

const item = (id: number, variant = 0) => mediaItems([id], { [id]: variant })[0]!;
const entry = (id: number, variant = 0) => ({
  mediaId: id,
  fingerprint: item(id, variant).fingerprint,
  state: "pending",
  metadataVersion: METADATA_VERSION,
  metadata: item(id, variant).metadata,
});
const member = (id: number, variant = 0) => ({ mediaId: id, fingerprint: item(id, variant).fingerprint });
const queued = (action: "cache" | "purge", ...ids: number[]) => ids.map((mediaId) => ({ mediaId, action }));

describe("KnexStore SyncUnit.apply", () => {
  forEachDatabase((db) => {
    const C = "conn-apply";

    const baselineRows = (listId: string) =>
      db
        .knex("list_baseline_items")
        .where({ connection_id: C, list_id: listId })
        .orderBy("media_id")
        .select("media_id", "fingerprint", "first_added_at", "last_seen_at", "last_synced_at");
    const listSync = (listId: string) =>
      db
        .knex("list_syncs")
        .where({ connection_id: C, list_id: listId })
        .first("first_synced_at", "last_synced_at", "item_count");
    const entryTimes = (id: number) =>
      db.knex("cache_entries").where({ connection_id: C, media_id: id }).first("created_at", "updated_at");

    before(async () => {
      await db.admin.createConnection("acct", C);
      await db.admin.createConnection("acct", "conn-other");
    });

    it("first sync: creates pending entries, queues caching, stores the baseline and the run", async () => {
      let plan: SyncPlan | undefined;
      const result = await syncWithStore(db.store, C, "10", mediaItems([1, 2, 3, 2]), at(0), {
        traceId: TRACE,
        inspect: (p) => {
          plan = p;
          return true;
        },
      });
      expect(result).to.deep.equal(counters({ seen: 3, addedItems: 3 }));
      expect(plan?.firstSync).to.equal(true);

      const snap = await db.admin.snapshot(C);
      expect(snap.connection).to.deep.equal({ accountId: "acct", status: "active" });
      expect(snap.cacheEntries).to.deep.equal([entry(1), entry(2), entry(3)]);
      expect(snap.workQueue).to.deep.equal(queued("cache", 1, 2, 3));
      expect(snap.lists).to.deep.equal([{ listId: "10", itemCount: 3, items: [member(1), member(2), member(3)] }]);
      expect(snap.runs).to.deep.equal([{ listId: "10", outcome: "ok", error: null, counters: result }]);

      const t = at(0).getTime();
      expect(await baselineRows("10")).to.deep.equal(
        [1, 2, 3].map((id) => ({
          media_id: id,
          fingerprint: item(id).fingerprint,
          first_added_at: t,
          last_seen_at: t,
          last_synced_at: t,
        })),
      );
      expect(await listSync("10")).to.deep.equal({ first_synced_at: t, last_synced_at: t, item_count: 3 });
      expect(await entryTimes(2)).to.deep.equal({ created_at: t, updated_at: t });
      const run = await db.knex("sync_runs").where({ connection_id: C }).first();
      expect(run).to.deep.include({
        started_at: t - 5,
        finished_at: t,
        duration_ms: 5,
        trace_id: TRACE,
        seen: 3,
        added_items: 3,
      });
    });

    it("the same list again: all unchanged, nothing written but timestamps, firstAddedAt kept", async () => {
      let plan: SyncPlan | undefined;
      const result = await syncWithStore(db.store, C, "10", mediaItems([3, 2, 1]), at(1), {
        inspect: (p) => {
          plan = p;
          return true;
        },
      });
      expect(result).to.deep.equal(counters({ seen: 3, unchangedItems: 3 }));
      expect(plan).to.deep.include({
        create: [],
        refresh: [],
        baselineWrites: [],
        leave: [],
        purge: [],
        firstSync: false,
      });

      const snap = await db.admin.snapshot(C);
      expect(snap.cacheEntries).to.deep.equal([entry(1), entry(2), entry(3)]);
      expect(snap.workQueue).to.deep.equal(queued("cache", 1, 2, 3));
      expect(
        (await baselineRows("10")).map((r) => [r.media_id, r.first_added_at, r.last_seen_at, r.last_synced_at]),
      ).to.deep.equal([1, 2, 3].map((id) => [id, at(0).getTime(), at(1).getTime(), at(1).getTime()]));
      expect(await listSync("10")).to.deep.equal({
        first_synced_at: at(0).getTime(),
        last_synced_at: at(1).getTime(),
        item_count: 3,
      });
      const runs = await db
        .knex("sync_runs")
        .where({ connection_id: C })
        .orderBy("id")
        .select("trace_id", "unchanged_items");
      expect(runs).to.deep.equal([
        { trace_id: TRACE, unchanged_items: 0 },
        { trace_id: null, unchanged_items: 3 },
      ]);
    });

    it("a later sync purges what left, refreshes what changed, adds what is new", async () => {
      let plan: SyncPlan | undefined;
      const result = await syncWithStore(db.store, C, "10", [item(2), item(3, 1), item(4)], at(2), {
        traceId: "00000000000000000000000000000000",
        inspect: (p) => {
          plan = p;
          return true;
        },
      });
      expect(result).to.deep.equal(
        counters({ seen: 3, addedItems: 1, updatedItems: 1, removedItems: 1, unchangedItems: 1 }),
      );
      expect(plan?.leave).to.deep.equal([1]);
      expect(plan?.purge).to.deep.equal([1]);

      const snap = await db.admin.snapshot(C);
      expect(snap.cacheEntries).to.deep.equal([entry(2), entry(3, 1), entry(4)]);
      expect(snap.workQueue).to.deep.equal([
        ...queued("cache", 1, 2, 3),
        ...queued("purge", 1), // removed: its stored content
        ...queued("purge", 3), // changed: old content out before the new is cached
        ...queued("cache", 4, 3),
      ]);
      expect(snap.lists).to.deep.equal([{ listId: "10", itemCount: 3, items: [member(2), member(3, 1), member(4)] }]);
      expect(
        (await baselineRows("10")).map((r) => [r.media_id, r.fingerprint, r.first_added_at, r.last_seen_at]),
      ).to.deep.equal([
        [2, item(2).fingerprint, at(0).getTime(), at(2).getTime()],
        [3, item(3, 1).fingerprint, at(0).getTime(), at(2).getTime()],
        [4, item(4).fingerprint, at(2).getTime(), at(2).getTime()],
      ]);
      expect(await entryTimes(3)).to.deep.equal({ created_at: at(0).getTime(), updated_at: at(2).getTime() });
      const run = await db.knex("sync_runs").where({ connection_id: C }).orderBy("id", "desc").first("trace_id");
      expect(run).to.deep.equal({ trace_id: null });
    });

    it("refreshes stale entries: failed state or older metadata version", async () => {
      await db.knex("cache_entries").where({ connection_id: C, media_id: 2 }).update({ state: "failed" });
      await db
        .knex("cache_entries")
        .where({ connection_id: C, media_id: 4 })
        .update({ metadata_version: METADATA_VERSION - 1, state: "stored" });
      await db.knex("cache_entries").where({ connection_id: C, media_id: 3 }).update({ state: "stored" });
      const result = await syncWithStore(db.store, C, "10", [item(2), item(3, 1), item(4)], at(3));
      expect(result).to.deep.equal(counters({ seen: 3, updatedItems: 2, unchangedItems: 1 }));
      const snap = await db.admin.snapshot(C);
      expect(snap.cacheEntries).to.deep.equal([entry(2), { ...entry(3, 1), state: "stored" }, entry(4)]);
      expect(snap.workQueue.slice(7)).to.deep.equal([...queued("purge", 2, 4), ...queued("cache", 2, 4)]);
    });

    it("adopts media cached for another list; keeps media another cached list owns", async () => {
      const adopt = await syncWithStore(db.store, C, "20", mediaItems([4, 5]), at(4));
      expect(adopt).to.deep.equal(counters({ seen: 2, addedItems: 1, adoptedItems: 1 }));
      const queueBefore = (await db.admin.snapshot(C)).workQueue;
      expect(queueBefore.slice(-1)).to.deep.equal(queued("cache", 5));

      let plan: SyncPlan | undefined;
      const keep = await syncWithStore(db.store, C, "10", [item(2), item(3, 1)], at(5), {
        inspect: (p) => {
          plan = p;
          return true;
        },
      });
      expect(keep).to.deep.equal(counters({ seen: 2, unchangedItems: 2 }));
      expect(plan?.leave).to.deep.equal([4]);
      expect(plan?.purge).to.deep.equal([]);
      const snap = await db.admin.snapshot(C);
      expect(snap.workQueue).to.deep.equal(queueBefore);
      expect(snap.cacheEntries.map((e) => e.mediaId)).to.deep.equal([2, 3, 4, 5]);
      expect(snap.lists).to.deep.equal([
        { listId: "10", itemCount: 2, items: [member(2), member(3, 1)] },
        { listId: "20", itemCount: 2, items: [member(4), member(5)] },
      ]);
    });

    it("an emptied list purges what no other list owns and stays a cached list", async () => {
      const emptied = await syncWithStore(db.store, C, "20", [], at(6));
      expect(emptied).to.deep.equal(counters({ removedItems: 2 }));
      const snap = await db.admin.snapshot(C);
      expect(snap.cacheEntries.map((e) => e.mediaId)).to.deep.equal([2, 3]);
      expect(snap.workQueue.slice(-2)).to.deep.equal(queued("purge", 4, 5));
      expect(snap.lists).to.deep.include({ listId: "20", itemCount: 0, items: [] });

      const baseline = await db.store.withConnectionLock(C, (unit) => unit.loadBaseline("20"));
      expect(baseline).to.be.instanceOf(Map);
      expect(baseline?.size).to.equal(0);
      expect(await db.store.withConnectionLock(C, (unit) => unit.loadBaseline("99"))).to.equal(null);

      // Media that comes back after being purged is new again.
      const back = await syncWithStore(db.store, C, "20", mediaItems([4]), at(7));
      expect(back).to.deep.equal(counters({ seen: 1, addedItems: 1 }));
      expect(await listSync("20")).to.deep.equal({
        first_synced_at: at(4).getTime(),
        last_synced_at: at(7).getTime(),
        item_count: 1,
      });
    });

    it("a first sync of an empty list creates an empty baseline", async () => {
      expect(await syncWithStore(db.store, C, "30", [], at(8))).to.deep.equal(counters({}));
      expect(await listSync("30")).to.deep.equal({
        first_synced_at: at(8).getTime(),
        last_synced_at: at(8).getTime(),
        item_count: 0,
      });
    });

    it("counts a removed member without an entry but queues no purge for it", async () => {
      await db.knex("cache_entries").where({ connection_id: C, media_id: 3 }).delete();
      const queueBefore = (await db.admin.snapshot(C)).workQueue;
      const result = await syncWithStore(db.store, C, "10", [item(2)], at(9));
      expect(result).to.deep.equal(counters({ seen: 1, unchangedItems: 1, removedItems: 1 }));
      expect((await db.admin.snapshot(C)).workQueue).to.deep.equal(queueBefore);
    });

    it("keeps connections apart", async () => {
      const before = await db.admin.snapshot(C);
      const other = await syncWithStore(db.store, "conn-other", "10", mediaItems([2, 4]), at(10));
      expect(other).to.deep.equal(counters({ seen: 2, addedItems: 2 }));
      expect(await db.admin.snapshot(C)).to.deep.equal(before);
      expect((await db.admin.snapshot("conn-other")).lists).to.deep.equal([
        { listId: "10", itemCount: 2, items: [member(2), member(4)] },
      ]);
      const owned = await db.store.withConnectionLock("conn-other", (unit) => unit.loadOwnedElsewhere("99", [2, 4, 5]));
      expect([...owned].sort()).to.deep.equal([2, 4]);
    });

    it("records failed runs, best effort", async () => {
      await db.store.recordFailedRun?.(C, "40", at(11), "upstream fetch failed: HTTP 503", TRACE);
      const row = await db
        .knex("sync_runs")
        .where({ connection_id: C, list_id: "40" })
        .first("outcome", "error", "seen", "trace_id", "started_at");
      expect(row).to.deep.equal({
        outcome: "failed",
        error: "upstream fetch failed: HTTP 503",
        seen: 0,
        trace_id: TRACE,
        started_at: at(11).getTime(),
      });
    });
  });
});
