import { expect } from "chai";
import { type AccessApiMedia, generateItems } from "../../src/simulator/access-api";
import type { StoreSnapshot } from "../../src/store/admin";
import { forEachDatabase } from "../support/databases";
import { responseJson } from "../support/responses";
import { createTenant, GrpcSyncClient, restSync, type Stack, startStack } from "../support/stack";
import { counters } from "../support/sync";

/**
 * SPEC §3 end to end: every row of the table and its sequences, through a real grpc-js
 * client and real HTTP, against the Access API simulator and a real database.
 */

const ACCOUNT = "acct_seq";
const CONN = "conn_seq";

function changed(item: AccessApiMedia): AccessApiMedia {
  const full = item.files?.full ?? { url: "https://x.invalid/f" };
  return { ...item, files: { ...item.files, full: { ...full, size: (full.size ?? 0) + 1 } } };
}

forEachDatabase((db) => {
  let stack: Stack;
  let grpc: GrpcSyncClient;
  let headers: Record<string, string>;
  let metadata: Record<string, string>;
  const pool = generateItems(120, { startId: 5_000_000_000 });
  const ids = (items: AccessApiMedia[]) => items.map((m) => m.id);
  const byId = (from: number, to: number) => pool.slice(from, to);

  before(async () => {
    stack = await startStack(db);
    const tenant = await createTenant(db, ACCOUNT, CONN);
    headers = { apiKey: tenant.apiKey, "x-connection-id": CONN };
    metadata = { apikey: tenant.apiKey, "x-connection-id": CONN };
    grpc = new GrpcSyncClient(stack.grpcTarget);
  });
  after(async () => {
    grpc.close();
    await stack.close();
  });

  const setList = (listId: string, items: AccessApiMedia[]) => stack.simulator.setList(CONN, listId, items);
  const rest = async (listId: string) => {
    const res = await restSync(stack.httpUrl, listId, headers);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  };
  const viaGrpc = async (listId: string) => {
    const res = await grpc.sync(listId, metadata);
    return responseJson(res);
  };
  const snapshot = async (): Promise<Omit<StoreSnapshot, "runs">> => {
    const { runs: _runs, ...rest } = await db.admin.snapshot(CONN);
    return rest;
  };
  const entryIds = async () => (await snapshot()).cacheEntries.map((e) => e.mediaId);
  const baselineIds = async (listId: string) =>
    (await snapshot()).lists.find((l) => l.listId === listId)?.items.map((i) => i.mediaId) ?? null;

  it("first sync over three pages adds everything and removes nothing (REST, exact body)", async () => {
    setList("100", byId(0, 95));
    const body = await rest("100");
    expect(body).to.deep.equal({ synced: true, listId: "100", ...counters({ seen: 95, addedItems: 95 }) });
    const pages = stack.simulator.requests.filter((r) => r.listId === "100");
    expect(pages.map((r) => r.query.offset)).to.deep.equal(["0", "40", "80"]);
    const snap = await snapshot();
    expect(snap.cacheEntries).to.have.length(95);
    expect(snap.cacheEntries.every((e) => e.state === "pending")).to.equal(true);
    expect(snap.workQueue.filter((w) => w.action === "cache")).to.have.length(95);
    expect(await baselineIds("100")).to.deep.equal(ids(byId(0, 95)));
  });

  it("the same sync again is all unchanged (gRPC)", async () => {
    const before = await snapshot();
    expect(await viaGrpc("100")).to.deep.equal({
      synced: true,
      listId: "100",
      ...counters({ seen: 95, unchangedItems: 95 }),
    });
    expect(await snapshot()).to.deep.equal(before);
  });

  it("adds, updates and removes exactly what changed", async () => {
    // 5 leave (0-4), 2 change (5, 6), 3 join (95-97)
    setList("100", [changed(pool[5]!), changed(pool[6]!), ...byId(7, 98)]);
    expect(await rest("100")).to.deep.equal({
      synced: true,
      listId: "100",
      ...counters({ seen: 93, addedItems: 3, updatedItems: 2, removedItems: 5, unchangedItems: 88 }),
    });
    const snap = await snapshot();
    expect(snap.cacheEntries.map((e) => e.mediaId)).to.not.include.members(ids(byId(0, 5)));
    expect(snap.cacheEntries).to.have.length(93);
    const queueTail = snap.workQueue.slice(95);
    expect(
      queueTail
        .filter((w) => w.action === "purge")
        .map((w) => w.mediaId)
        .sort(),
    ).to.deep.equal([...ids(byId(0, 7))].sort());
    expect(
      queueTail
        .filter((w) => w.action === "cache")
        .map((w) => w.mediaId)
        .sort(),
    ).to.deep.equal([pool[5]!.id, pool[6]!.id, ...ids(byId(95, 98))].sort());
  });

  it("a second list adopts media another list already cached, and its first sync removes nothing", async () => {
    setList("200", [...byId(10, 20), ...byId(100, 102)]);
    expect(await viaGrpc("200")).to.deep.equal({
      synced: true,
      listId: "200",
      ...counters({ seen: 12, addedItems: 2, adoptedItems: 10 }),
    });
    expect(await rest("200")).to.deep.equal({
      synced: true,
      listId: "200",
      ...counters({ seen: 12, unchangedItems: 12 }),
    });
  });

  it("media that leaves a list but another cached list owns is not purged", async () => {
    // list 100 drops 10-13 (owned by 200) and 20 (owned by nobody else)
    setList("100", [changed(pool[5]!), changed(pool[6]!), ...byId(7, 10), ...byId(14, 20), ...byId(21, 98)]);
    expect(await rest("100")).to.deep.equal({
      synced: true,
      listId: "100",
      ...counters({ seen: 88, removedItems: 1, unchangedItems: 88 }),
    });
    const entries = await entryIds();
    expect(entries).to.include.members(ids(byId(10, 14)));
    expect(entries).to.not.include(pool[20]!.id);
    expect(await baselineIds("100")).to.not.include.members(ids(byId(10, 14)));
  });

  it("media that comes back after being purged is added again", async () => {
    setList("100", [changed(pool[5]!), changed(pool[6]!), ...byId(7, 10), ...byId(14, 98)]);
    expect(await rest("100")).to.deep.equal({
      synced: true,
      listId: "100",
      ...counters({ seen: 89, addedItems: 1, unchangedItems: 88 }),
    });
  });

  it("an empty list removes what no other list owns", async () => {
    // list 200 holds 10-19 and 100-101; list 100 still owns 14-19
    setList("200", []);
    expect(await viaGrpc("200")).to.deep.equal({ synced: true, listId: "200", ...counters({ removedItems: 6 }) });
    const entries = await entryIds();
    expect(entries).to.not.include.members([...ids(byId(10, 14)), ...ids(byId(100, 102))]);
    expect(entries).to.include.members(ids(byId(14, 20)));
    expect(await baselineIds("200")).to.deep.equal([]);
    // A cached empty list is not a first sync: syncing it again changes nothing.
    expect(await rest("200")).to.deep.equal({ synced: true, listId: "200", ...counters({}) });
  });

  it("duplicate ids in the upstream list count once", async () => {
    setList("300", [...byId(100, 104), pool[100]!, pool[101]!, ...byId(100, 102)]);
    expect(await rest("300")).to.deep.equal({ synced: true, listId: "300", ...counters({ seen: 4, addedItems: 4 }) });
    expect(await baselineIds("300")).to.deep.equal(ids(byId(100, 104)));
  });

  it("stale metadata and failed entries are updated even when the fingerprint is the same", async () => {
    await db
      .knex("cache_entries")
      .where({ connection_id: CONN, media_id: pool[100]!.id })
      .update({ metadata_version: 0 });
    await db.knex("cache_entries").where({ connection_id: CONN, media_id: pool[101]!.id }).update({ state: "failed" });
    await db.knex("cache_entries").where({ connection_id: CONN, media_id: pool[102]!.id }).update({ state: "stored" });
    expect(await viaGrpc("300")).to.deep.equal({
      synced: true,
      listId: "300",
      ...counters({ seen: 4, updatedItems: 2, unchangedItems: 2 }),
    });
    const snap = await snapshot();
    const entry = (id: number) => snap.cacheEntries.find((e) => e.mediaId === id);
    expect(entry(pool[100]!.id)).to.include({ state: "pending", metadataVersion: 1 });
    expect(entry(pool[101]!.id)).to.include({ state: "pending" });
    expect(entry(pool[102]!.id)).to.include({ state: "stored" });
  });

  it("keeps firstAddedAt of baseline members across syncs and stamps lastSyncedAt", async () => {
    const row = () =>
      db.knex("list_baseline_items").where({ connection_id: CONN, list_id: "300", media_id: pool[103]!.id }).first();
    const first = await row();
    await new Promise((r) => setTimeout(r, 5));
    await rest("300");
    const second = await row();
    expect(Number(second.first_added_at)).to.equal(Number(first.first_added_at));
    expect(Number(second.last_synced_at)).to.be.greaterThan(Number(first.last_synced_at));
  });

  it("records one run per successful sync with its counters", async () => {
    const { runs } = await db.admin.snapshot(CONN);
    const last = runs.at(-1)!;
    expect(last).to.deep.include({ listId: "300", outcome: "ok" });
    expect(last.counters).to.deep.equal(counters({ seen: 4, unchangedItems: 4 }));
  });
});
