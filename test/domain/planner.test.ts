import { expect } from "chai";
import { METADATA_VERSION, type MediaItem } from "../../src/domain/media";
import {
  type BaselineMember,
  type CacheEntryView,
  type EntryState,
  type PlanInput,
  planSync,
} from "../../src/domain/planner";
import { plannedItem } from "../support/sync";

const T0 = new Date("2026-01-01T00:00:00Z");

function item(id: number, fp = `fp${id}`): MediaItem {
  return plannedItem(id, fp);
}

function entry(fp: string, state: EntryState = "stored", metadataVersion = METADATA_VERSION): CacheEntryView {
  return { fingerprint: fp, metadataVersion, state };
}

function baseline(...ids: number[]): Map<number, BaselineMember> {
  return new Map(ids.map((id) => [id, { fingerprint: `fp${id}`, firstAddedAt: T0 }]));
}

function plan(input: Partial<PlanInput> & Pick<PlanInput, "current">) {
  return planSync({ previous: null, cache: new Map(), ownedElsewhere: new Set(), ...input });
}

describe("planSync: SPEC §3 table", () => {
  it("no cache entry → addedItems, entry created", () => {
    const p = plan({ current: [item(1)] });
    expect(p.counters).to.deep.equal({
      seen: 1,
      addedItems: 1,
      updatedItems: 0,
      removedItems: 0,
      unchangedItems: 0,
      adoptedItems: 0,
    });
    expect(p.create.map((m) => m.id)).to.deep.equal([1]);
    expect(p.baselineWrites).to.deep.equal([{ mediaId: 1, fingerprint: "fp1", firstAddedAt: null }]);
    expect(p.firstSync).to.equal(true);
  });

  it("fingerprint differs → updatedItems, entry refreshed, baseline keeps firstAddedAt", () => {
    const p = plan({ previous: baseline(1), cache: new Map([[1, entry("old")]]), current: [item(1)] });
    expect(p.counters.updatedItems).to.equal(1);
    expect(p.counters.unchangedItems).to.equal(0);
    expect(p.refresh.map((m) => m.id)).to.deep.equal([1]);
    expect(p.baselineWrites).to.deep.equal([]);
  });

  it("stale metadata version → updatedItems even with the same fingerprint", () => {
    const p = plan({ cache: new Map([[1, entry("fp1", "stored", METADATA_VERSION - 1)]]), current: [item(1)] });
    expect(p.counters.updatedItems).to.equal(1);
    expect(p.refresh).to.have.length(1);
  });

  it("failed entry → updatedItems", () => {
    const p = plan({ previous: baseline(1), cache: new Map([[1, entry("fp1", "failed")]]), current: [item(1)] });
    expect(p.counters.updatedItems).to.equal(1);
  });

  it("pending entry with the same fingerprint is current, not stale", () => {
    const p = plan({ previous: baseline(1), cache: new Map([[1, entry("fp1", "pending")]]), current: [item(1)] });
    expect(p.counters.unchangedItems).to.equal(1);
    expect(p.refresh).to.deep.equal([]);
  });

  it("current entry in the previous baseline → unchangedItems, nothing written", () => {
    const p = plan({ previous: baseline(1), cache: new Map([[1, entry("fp1")]]), current: [item(1)] });
    expect(p.counters).to.deep.equal({
      seen: 1,
      addedItems: 0,
      updatedItems: 0,
      removedItems: 0,
      unchangedItems: 1,
      adoptedItems: 0,
    });
    expect(p.create).to.deep.equal([]);
    expect(p.refresh).to.deep.equal([]);
    expect(p.baselineWrites).to.deep.equal([]);
    expect(p.firstSync).to.equal(false);
  });

  it("current entry not in the previous baseline → adoptedItems, joins the baseline", () => {
    const p = plan({ previous: baseline(), cache: new Map([[1, entry("fp1")]]), current: [item(1)] });
    expect(p.counters.adoptedItems).to.equal(1);
    expect(p.baselineWrites).to.deep.equal([{ mediaId: 1, fingerprint: "fp1", firstAddedAt: null }]);
  });

  it("first sync adopts every current entry and removes nothing", () => {
    const p = plan({
      cache: new Map([
        [1, entry("fp1")],
        [9, entry("fp9")],
      ]),
      current: [item(1), item(2)],
    });
    expect(p.counters).to.deep.equal({
      seen: 2,
      addedItems: 1,
      updatedItems: 0,
      removedItems: 0,
      unchangedItems: 0,
      adoptedItems: 1,
    });
    expect(p.leave).to.deep.equal([]);
    expect(p.purge).to.deep.equal([]);
  });

  it("a member that left and no other list owns → removedItems and purged", () => {
    const p = plan({ previous: baseline(1, 2), cache: new Map([[1, entry("fp1")]]), current: [item(1)] });
    expect(p.counters.removedItems).to.equal(1);
    expect(p.leave).to.deep.equal([2]);
    expect(p.purge).to.deep.equal([2]);
  });

  it("a member that left but another cached list owns → only leaves the baseline, not counted", () => {
    const p = plan({
      previous: baseline(1, 2, 3),
      cache: new Map([[1, entry("fp1")]]),
      ownedElsewhere: new Set([2]),
      current: [item(1)],
    });
    expect(p.counters.removedItems).to.equal(1);
    expect(p.leave).to.deep.equal([2, 3]);
    expect(p.purge).to.deep.equal([3]);
  });

  it("de-duplicates the current list: the first occurrence wins", () => {
    const p = plan({ current: [item(1, "a"), item(2), item(1, "b")] });
    expect(p.counters.seen).to.equal(2);
    expect(p.counters.addedItems).to.equal(2);
    expect(p.create.map((m) => [m.id, m.fingerprint])).to.deep.equal([
      [1, "a"],
      [2, "fp2"],
    ]);
  });

  it("an empty current list after a baseline removes every unowned member", () => {
    const p = plan({ previous: baseline(1, 2), current: [] });
    expect(p.counters).to.deep.equal({
      seen: 0,
      addedItems: 0,
      updatedItems: 0,
      removedItems: 2,
      unchangedItems: 0,
      adoptedItems: 0,
    });
  });

  it("a baseline member whose upstream fingerprint changed gets its baseline row rewritten", () => {
    const prev = new Map([[1, { fingerprint: "old", firstAddedAt: T0 }]]);
    const p = plan({ previous: prev, cache: new Map([[1, entry("old")]]), current: [item(1)] });
    expect(p.counters.updatedItems).to.equal(1);
    expect(p.baselineWrites).to.deep.equal([{ mediaId: 1, fingerprint: "fp1", firstAddedAt: T0 }]);
  });
});
