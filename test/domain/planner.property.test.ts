import { expect } from "chai";
import fc from "fast-check";
import { METADATA_VERSION, type MediaItem } from "../../src/domain/media";
import {
  type BaselineMember,
  type CacheEntryView,
  type PlanInput,
  planSync,
  removalCandidates,
  type SyncPlan,
} from "../../src/domain/planner";
import { plannedItem } from "../support/sync";

/**
 * Invariants of SPEC §3 over random worlds: a small id space so lists, caches and
 * baselines overlap often. `applyPlan` is a pure model of what the store does with
 * a plan, so "apply then re-plan" can be checked without I/O (the store tests check
 * the real store against the same expectation).
 */

const ids = fc.integer({ min: 1, max: 30 });
const fingerprints = fc.constantFrom("a", "b", "c");

const itemArb: fc.Arbitrary<MediaItem> = fc
  .record({ id: ids, fp: fingerprints })
  .map(({ id, fp }) => plannedItem(id, fp));

const entryArb: fc.Arbitrary<CacheEntryView> = fc.record({
  fingerprint: fingerprints,
  metadataVersion: fc.constantFrom(METADATA_VERSION, METADATA_VERSION - 1),
  state: fc.constantFrom("pending", "stored", "failed"),
});

const worldArb = fc.record({
  previous: fc.option(fc.uniqueArray(ids, { maxLength: 20 }), { nil: null }),
  cache: fc.array(fc.tuple(ids, entryArb), { maxLength: 25 }),
  otherOwned: fc.uniqueArray(ids, { maxLength: 15 }),
  current: fc.array(itemArb, { maxLength: 30 }),
});

type World = {
  previous: Map<number, BaselineMember> | null;
  cache: Map<number, CacheEntryView>;
  otherOwned: Set<number>;
};

function toWorld(w: { previous: number[] | null; cache: [number, CacheEntryView][]; otherOwned: number[] }): World {
  const at = new Date(0);
  return {
    previous: w.previous ? new Map(w.previous.map((id) => [id, { fingerprint: "a", firstAddedAt: at }])) : null,
    cache: new Map(w.cache),
    otherOwned: new Set(w.otherOwned),
  };
}

function planIn(world: World, current: MediaItem[]): SyncPlan {
  const currentIds = new Set(current.map((m) => m.id));
  const owned = new Set(removalCandidates(world.previous, currentIds).filter((id) => world.otherOwned.has(id)));
  const input: PlanInput = { previous: world.previous, cache: world.cache, ownedElsewhere: owned, current };
  return planSync(input);
}

/** What the store does with a plan, as a pure function of the world. */
function applyPlan(world: World, plan: SyncPlan, current: MediaItem[]): World {
  const cache = new Map(world.cache);
  for (const m of [...plan.create, ...plan.refresh]) {
    cache.set(m.id, { fingerprint: m.fingerprint, metadataVersion: METADATA_VERSION, state: "pending" });
  }
  for (const id of plan.purge) cache.delete(id);
  const previous = new Map<number, BaselineMember>();
  for (const m of current) {
    if (!previous.has(m.id)) previous.set(m.id, { fingerprint: m.fingerprint, firstAddedAt: new Date(0) });
  }
  return { previous, cache, otherOwned: world.otherOwned };
}

describe("planSync: invariants (property-based)", () => {
  it("seen = added + updated + unchanged + adopted = distinct current ids", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { counters: c } = planIn(toWorld(w), w.current);
        expect(c.seen).to.equal(new Set(w.current.map((m) => m.id)).size);
        expect(c.addedItems + c.updatedItems + c.unchangedItems + c.adoptedItems).to.equal(c.seen);
      }),
    );
  });

  it("a first sync removes nothing", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const p = planIn(toWorld({ ...w, previous: null }), w.current);
        expect(p.counters.removedItems).to.equal(0);
        expect(p.purge).to.deep.equal([]);
        expect(p.leave).to.deep.equal([]);
      }),
    );
  });

  it("never purges media that is current or owned by another cached list", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const world = toWorld(w);
        const p = planIn(world, w.current);
        const currentIds = new Set(w.current.map((m) => m.id));
        for (const id of p.purge) {
          expect(currentIds.has(id)).to.equal(false);
          expect(world.otherOwned.has(id)).to.equal(false);
          expect(world.previous?.has(id)).to.equal(true);
        }
        expect(p.counters.removedItems).to.equal(p.purge.length);
      }),
    );
  });

  it("applying the plan and syncing the same list again is all unchanged", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const first = planIn(toWorld(w), w.current);
        const after = applyPlan(toWorld(w), first, w.current);
        const again = planIn(after, w.current);
        expect(again.counters).to.deep.equal({
          seen: first.counters.seen,
          addedItems: 0,
          updatedItems: 0,
          removedItems: 0,
          unchangedItems: first.counters.seen,
          adoptedItems: 0,
        });
        expect(again.create).to.deep.equal([]);
        expect(again.refresh).to.deep.equal([]);
        expect(again.baselineWrites).to.deep.equal([]);
        expect(again.leave).to.deep.equal([]);
      }),
    );
  });

  it("every previous member missing from the list leaves the baseline; each is purged or owned elsewhere", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const world = toWorld(w);
        const p = planIn(world, w.current);
        const currentIds = new Set(w.current.map((m) => m.id));
        const expected = [...(world.previous?.keys() ?? [])].filter((id) => !currentIds.has(id));
        expect(p.leave).to.deep.equal(expected);
        expect([...p.purge].sort()).to.deep.equal(expected.filter((id) => !world.otherOwned.has(id)).sort());
      }),
    );
  });
});
