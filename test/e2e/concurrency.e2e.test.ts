import { expect } from "chai";
import { generateItems, startAccessApiSimulator } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import {
  createTenant,
  GrpcSyncClient,
  restSync,
  type ServeProcess,
  type Stack,
  spawnServe,
  startStack,
  UPSTREAM_KEY,
} from "../support/stack";

/**
 * SPEC §3.1 "serializable per connection": concurrent syncs end as some serial order
 * would, from one process and from two processes sharing one MariaDB.
 */

type Body = Record<string, number | string | boolean>;

const sum = (bodies: Body[], field: string) => bodies.reduce((n, b) => n + Number(b[field]), 0);

forEachDatabase((db, kind) => {
  let stack: Stack;
  let headers: Record<string, string>;
  const CONN = "conn_race";

  before(async () => {
    stack = await startStack(db);
    const tenant = await createTenant(db, "acct_race", CONN);
    headers = { apiKey: tenant.apiKey, "x-connection-id": CONN };
  });
  after(() => stack.close());

  const sync = async (listId: string) => {
    const res = await restSync(stack.httpUrl, listId, headers);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body as Body;
  };

  it("20 parallel first syncs of one list: one adds, nineteen find it unchanged", async () => {
    stack.simulator.setList(CONN, "1", generateItems(60, { startId: 8_000_000_000 }));
    const bodies = await Promise.all(Array.from({ length: 20 }, () => sync("1")));
    expect(sum(bodies, "addedItems")).to.equal(60);
    expect(sum(bodies, "unchangedItems")).to.equal(19 * 60);
    expect(sum(bodies, "adoptedItems") + sum(bodies, "updatedItems") + sum(bodies, "removedItems")).to.equal(0);
    expect(bodies.filter((b) => b.addedItems === 60)).to.have.length(1);
    const snap = await db.admin.snapshot(CONN);
    expect(snap.cacheEntries).to.have.length(60);
    expect(snap.workQueue).to.have.length(60);
    expect(snap.lists).to.deep.equal([{ listId: "1", itemCount: 60, items: snap.lists[0]!.items }]);
    expect(snap.runs.filter((r) => r.outcome === "ok")).to.have.length(20);
  });

  it("two lists dropping shared media at once purge it exactly once", async () => {
    const shared = generateItems(10, { startId: 8_100_000_000 });
    const ownA = generateItems(3, { startId: 8_200_000_000 });
    const ownB = generateItems(4, { startId: 8_300_000_000 });
    stack.simulator.setList(CONN, "2", [...shared, ...ownA]);
    stack.simulator.setList(CONN, "3", [...shared, ...ownB]);
    await sync("2");
    await sync("3");
    stack.simulator.setList(CONN, "2", ownA);
    stack.simulator.setList(CONN, "3", ownB);
    const [a, b] = await Promise.all([sync("2"), sync("3")]);
    // Serially, the first to run sees the other still owning the shared media.
    expect(Number(a!.removedItems) + Number(b!.removedItems)).to.equal(10);
    expect([a!.removedItems, b!.removedItems]).to.have.members([0, 10]);
    const entries = (await db.admin.snapshot(CONN)).cacheEntries.map((e) => e.mediaId);
    for (const m of shared) expect(entries).to.not.include(m.id);
  });

  it("media a concurrent sync adopts is never purged by a list dropping it", async () => {
    const shared = generateItems(8, { startId: 8_400_000_000 });
    stack.simulator.setList(CONN, "4", shared);
    await sync("4");
    stack.simulator.setList(CONN, "4", []);
    stack.simulator.setList(CONN, "5", shared);
    const [drop, take] = await Promise.all([sync("4"), sync("5")]);
    // Either order is serial: drop first purges then re-adds; take first adopts, then drop only leaves.
    const dropFirst = drop!.removedItems === 8 && take!.addedItems === 8;
    const takeFirst = drop!.removedItems === 0 && take!.adoptedItems === 8;
    expect(dropFirst || takeFirst, JSON.stringify({ drop, take })).to.equal(true);
    const snap = await db.admin.snapshot(CONN);
    const entries = snap.cacheEntries.map((e) => e.mediaId);
    for (const m of shared) expect(entries).to.include(m.id);
    expect(snap.lists.find((l) => l.listId === "5")!.items.map((i) => i.mediaId)).to.deep.equal(
      shared.map((m) => m.id),
    );
  });

  if (kind !== "mariadb") return;

  describe("two serve processes sharing one MariaDB", () => {
    let procs: ServeProcess[] = [];
    let simulator: Awaited<ReturnType<typeof startAccessApiSimulator>>;

    before(async function () {
      this.timeout(60_000);
      simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
      const env = {
        VAULTPLUS_DATABASE_URL: db.url,
        VAULTPLUS_UPSTREAM_URL: simulator.url,
        VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      };
      procs = await Promise.all([spawnServe(env), spawnServe(env)]);
    });
    after(async () => {
      await Promise.all(procs.map((p) => p.stop()));
      await simulator.close();
    });

    it("parallel syncs over REST and gRPC through both end as a serial order", async () => {
      const items = generateItems(45, { startId: 8_500_000_000 });
      simulator.setList(CONN, "6", items);
      simulator.setList(CONN, "7", items.slice(0, 20));
      const grpcs = procs.map((p) => new GrpcSyncClient(p.grpcTarget));
      const md = { apikey: headers.apiKey!, "x-connection-id": CONN };
      try {
        const calls: Array<Promise<Body>> = [];
        for (let i = 0; i < 12; i++) {
          const proc = procs[i % 2]!;
          const listId = i % 3 === 0 ? "7" : "6";
          calls.push(
            i % 4 < 2
              ? restSync(proc.httpUrl, listId, headers).then((r) => {
                  expect(r.status, JSON.stringify(r.body)).to.equal(200);
                  return r.body as Body;
                })
              : grpcs[i % 2]!.sync(listId, md).then((r) => ({ ...r }) as unknown as Body),
          );
        }
        const bodies = await Promise.all(calls);
        const list6 = bodies.filter((b) => b.listId === "6");
        const list7 = bodies.filter((b) => b.listId === "7");
        // Whatever the order: the 45 distinct media are added once in total, the 20 that
        // both lists hold are adopted once by whichever list comes second, and every later
        // sync finds its list unchanged.
        expect(sum(bodies, "addedItems")).to.equal(45);
        expect(sum(bodies, "adoptedItems")).to.equal(20);
        expect(sum(list6, "unchangedItems")).to.equal((list6.length - 1) * 45);
        expect(sum(list7, "unchangedItems")).to.equal((list7.length - 1) * 20);
        expect(sum(bodies, "removedItems") + sum(bodies, "updatedItems")).to.equal(0);
        const snap = await db.admin.snapshot(CONN);
        const mine = snap.cacheEntries.filter((e) => e.mediaId >= 8_500_000_000 && e.mediaId < 8_600_000_000);
        expect(mine).to.have.length(45);
        const cacheJobs = snap.workQueue.filter((w) => w.mediaId >= 8_500_000_000 && w.mediaId < 8_600_000_000);
        expect(cacheJobs).to.have.length(45);
      } finally {
        for (const g of grpcs) g.close();
      }
    });
  });
});
