import { expect } from "chai";
import { countQueries } from "../../src/store/db";
import { forEachDatabase } from "../support/databases";
import { counters, mediaItems, syncWithStore } from "../support/sync";

const N = 2000;
const ids = Array.from({ length: N }, (_, i) => 1_000_000 + i);

/**
 * Statements per sync are O(N / batch): with batch 500 and N = 2000, each batched step is
 * 4 statements. The bounds below are the exact counts of the current implementation (listed
 * per step) so that a per-item round trip, or an extra unbatched pass, fails the test.
 */
describe("KnexStore batching", () => {
  forEachDatabase((db) => {
    const C = "conn-batch";
    let queries: ReturnType<typeof countQueries>;

    before(async () => {
      await db.admin.createConnection("acct", C);
      queries = countQueries(db.knex);
    });
    after(() => queries.stop());

    const sync = async (items: ReturnType<typeof mediaItems>, minute: number) => {
      queries.reset();
      const result = await syncWithStore(db.store, C, "1", items, new Date(1_700_000_000_000 + minute * 60_000));
      return { result, statements: queries.count };
    };

    it("first sync of 2,000 items", async () => {
      const { result, statements } = await sync(mediaItems(ids), 0);
      expect(result).to.deep.equal(counters({ seen: N, addedItems: N }));
      // begin + lock + list_syncs probe + 4 cache reads + 4 entry upserts + 4 queue inserts
      // + 4 baseline upserts + baseline stamp + list_syncs + run + commit
      expect(statements).to.equal(2 + 1 + 4 + 4 + 4 + 4 + 1 + 1 + 1 + 1);
      const count = async (table: string) =>
        Number((await db.knex(table).where({ connection_id: C }).count({ n: "*" }))[0]?.n);
      expect(await count("cache_entries")).to.equal(N);
      expect(await count("work_queue")).to.equal(N);
      expect(await count("list_baseline_items")).to.equal(N);
    });

    it("re-plan after apply: all 2,000 unchanged", async () => {
      const { result, statements } = await sync(mediaItems(ids), 1);
      expect(result).to.deep.equal(counters({ seen: N, unchangedItems: N }));
      // begin + lock + list_syncs probe + baseline read (joined with the members' cache entries, so no
      // cache reads by id) + baseline stamp + list_syncs + run + commit
      expect(statements).to.equal(2 + 2 + 1 + 1 + 1 + 1);
    });

    it("all 2,000 changed", async () => {
      const variants = Object.fromEntries(ids.map((id) => [id, 1]));
      const { result, statements } = await sync(mediaItems(ids, variants), 2);
      expect(result).to.deep.equal(counters({ seen: N, updatedItems: N }));
      // ... + 4 entry upserts + 8 queue inserts (purge and cache rows) + 4 baseline upserts
      expect(statements).to.equal(2 + 2 + 4 + 8 + 4 + 1 + 1 + 1 + 1);
    });

    it("all 2,000 removed", async () => {
      const { result, statements } = await sync([], 3);
      expect(result).to.deep.equal(counters({ removedItems: N }));
      // begin + lock + list_syncs probe + baseline read + 4 ownership reads
      // + 4 x (queue purge + entry delete) + 4 baseline deletes + stamp + list_syncs + run + commit
      expect(statements).to.equal(2 + 2 + 4 + 8 + 4 + 1 + 1 + 1 + 1);
      expect((await db.admin.snapshot(C)).cacheEntries).to.deep.equal([]);
    });
  });
});
