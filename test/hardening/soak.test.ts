import type { ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { toMediaItem } from "../../src/domain/media";
import type { SyncCounters } from "../../src/domain/planner";
import { type AccessApiMedia, generateItems, startAccessApiSimulator } from "../../src/simulator/access-api";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/databases";
import { GrpcSyncClient, restSync, type ServeProcess, spawnServe, UPSTREAM_KEY } from "../support/stack";
import { syncWithStore } from "../support/sync";
import { COUNTER_FIELDS, changed, countersOf, expectInvariants, stateOf } from "./support";

/**
 * Load on loopback, bounded in count and time: two `vaultplus serve` processes on one database,
 * several connections whose lists share media, and in every phase many parallel syncs over REST
 * and gRPC to both processes, mixed with intended failures (refused keys, foreign connections,
 * a list whose upstream page is broken, transient 503s that must be retried away).
 *
 * Checked: no error but the intended ones; the invariants on every response; every response's
 * counters are those of a committed run; and replaying the committed runs one by one, in commit
 * order, on a fresh database gives the same counters for every run and the same final state:
 * the concurrent execution was equivalent to a serial one (SPEC §3.1).
 *
 * VAULTPLUS_SOAK_PHASES (default 4) and VAULTPLUS_SOAK_REPEATS (default 4) scale it up by hand.
 */

const PHASES = Number(process.env.VAULTPLUS_SOAK_PHASES ?? 4);
const REPEATS = Number(process.env.VAULTPLUS_SOAK_REPEATS ?? 4);
const CONNECTIONS = ["soak_c0", "soak_c1", "soak_c2", "soak_c3"];
const LISTS = ["6001", "6002", "6003", "6004"];
const POOL = generateItems(90, { startId: 5_700_000_000 });
const ACCOUNT = "acct_soak";

/** The list `li` of connection `ci` in phase `k`: overlapping windows of one media pool, some content changed. */
function version(k: number, ci: number, li: number): AccessApiMedia[] {
  const from = li * 10 + ci * 2 + k * 3;
  const out: AccessApiMedia[] = [];
  for (let i = from; i < from + 40; i++) {
    if ((i + li + k) % 4 === 0) continue; // some members leave and come back between phases
    const item = POOL[i % POOL.length] as AccessApiMedia;
    out.push((i + k) % 9 === 0 ? changed(item, k + 1) : item);
  }
  return out;
}

interface Outcome {
  phase: number;
  conn: string;
  listId: string;
  counters: SyncCounters;
}

describe("hardening: soak, two serve processes on one database", function () {
  this.timeout(120_000);

  const kind = DATABASE_KINDS[0] ?? "mariadb";
  let db: TestDatabase;
  let replay: TestDatabase;
  const servers: ServeProcess[] = [];
  const clients: GrpcSyncClient[] = [];
  let simulator: Awaited<ReturnType<typeof startAccessApiSimulator>>;
  let apiKey: string;

  before(async function () {
    this.timeout(120_000);
    db = await createTestDatabase(kind);
    replay = await createTestDatabase(kind);
    simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
    apiKey = (await db.admin.createApiKey(ACCOUNT, ["ACCOUNT"])).token;
    for (const conn of CONNECTIONS) {
      await db.admin.createConnection(ACCOUNT, conn);
      await replay.admin.createConnection(ACCOUNT, conn);
    }
    await db.admin.createConnection("acct_other", "soak_foreign");
    const env = {
      VAULTPLUS_DATABASE_URL: db.url,
      VAULTPLUS_UPSTREAM_URL: simulator.url,
      VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      VAULTPLUS_UPSTREAM_PAGE_SIZE: "10",
      VAULTPLUS_UPSTREAM_TIMEOUT_MS: "2000",
      VAULTPLUS_UPSTREAM_DEADLINE_MS: "10000",
      VAULTPLUS_LOG_LEVEL: "info",
    };
    servers.push(...(await Promise.all([spawnServe(env), spawnServe(env)])));
    for (const s of servers) clients.push(new GrpcSyncClient(s.grpcTarget));
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop("SIGKILL");
    await simulator?.close();
    await db?.drop();
    await replay?.drop();
  });

  it("runs every phase with only the intended errors, then equals a serial replay of its commits", async () => {
    const outcomes: Outcome[] = [];
    const unexpected: string[] = [];
    const intended = { unauthorized: 0, foreign: 0, brokenList: 0 };
    const phaseEnds: number[] = [];
    const started = performance.now();
    let requests = 0;

    for (let k = 0; k < PHASES; k++) {
      for (const [ci, conn] of CONNECTIONS.entries()) {
        for (const [li, listId] of LISTS.entries()) simulator.setList(conn, listId, version(k, ci, li));
      }
      // This phase's intended upstream trouble: one list broken for good (never retried), transient 503s elsewhere.
      const broken = { conn: CONNECTIONS[k % CONNECTIONS.length] as string, listId: LISTS[k % LISTS.length] as string };
      simulator.clearFaults();
      simulator.injectFault({ kind: "badJson", connectionId: broken.conn, listId: broken.listId, times: "always" });
      // At most 3: even if one sync met them all, it would still succeed on its 4th attempt (of 5).
      simulator.injectFault({ kind: "status", status: 503, offset: 10, times: 3 });

      const work: Array<Promise<void>> = [];
      let n = 0;
      for (let r = 0; r < REPEATS; r++) {
        for (const [ci, conn] of CONNECTIONS.entries()) {
          for (const [li, listId] of LISTS.entries()) {
            const server = n % servers.length;
            const viaGrpc = (n >> 1) % 2 === 1;
            const isBroken = conn === broken.conn && listId === broken.listId;
            const expectedSeen = new Set(version(k, ci, li).map((m) => m.id)).size;
            n++;
            work.push(
              (async () => {
                const headers = { apikey: apiKey, "x-connection-id": conn };
                let counters: SyncCounters | null = null;
                let failure: string | null = null;
                if (viaGrpc) {
                  try {
                    const res = await (clients[server] as GrpcSyncClient).sync(listId, headers);
                    counters = Object.fromEntries(COUNTER_FIELDS.map((f) => [f, res[f]])) as unknown as SyncCounters;
                    expectInvariants(counters);
                    expect(res.synced).to.equal(true);
                  } catch (err) {
                    failure = `gRPC ${(err as ServiceError).code} ${(err as ServiceError).details}`;
                  }
                } else {
                  const res = await restSync((servers[server] as ServeProcess).httpUrl, listId, headers);
                  if (res.status === 200) counters = countersOf(res, listId);
                  else failure = `HTTP ${res.status} ${JSON.stringify(res.body)}`;
                }
                if (isBroken && failure && /not valid JSON/.test(failure)) intended.brokenList++;
                else if (failure) unexpected.push(`phase ${k} ${conn} ${listId}: ${failure}`);
                else if (isBroken) unexpected.push(`phase ${k} ${conn} ${listId}: synced a broken list`);
                else if (counters) {
                  expect(counters.seen, `${conn}/${listId}`).to.equal(expectedSeen);
                  outcomes.push({ phase: k, conn, listId, counters });
                }
              })(),
            );
          }
        }
        // Intended refusals, interleaved with the real work.
        work.push(
          restSync((servers[r % 2] as ServeProcess).httpUrl, LISTS[0] as string, {
            apikey: `${apiKey.slice(0, -2)}xx`,
            "x-connection-id": CONNECTIONS[0] as string,
          }).then((res) => {
            if (res.status === 401) intended.unauthorized++;
            else unexpected.push(`bad key answered ${res.status}`);
          }),
          (clients[(r + 1) % 2] as GrpcSyncClient)
            .sync(LISTS[1] as string, { apikey: apiKey, "x-connection-id": "soak_foreign" })
            .then(
              () => {
                unexpected.push("a foreign connection synced");
              },
              (err: ServiceError) => {
                if (err.code === 3) intended.foreign++;
                else unexpected.push(`foreign connection answered ${err.code}`);
              },
            ),
        );
      }
      requests += work.length;
      await Promise.all(work);
      const last = await db.knex("sync_runs").max({ id: "id" }).first();
      phaseEnds.push(Number(last?.id ?? 0));
    }
    const elapsedMs = performance.now() - started;

    expect(unexpected).to.deep.equal([]);
    expect(intended).to.deep.equal({
      unauthorized: PHASES * REPEATS,
      foreign: PHASES * REPEATS,
      brokenList: PHASES * REPEATS,
    });
    expect(outcomes.length).to.equal(PHASES * REPEATS * (CONNECTIONS.length * LISTS.length - 1));
    console.log(
      `      soak: ${requests} requests (${outcomes.length} syncs) in ${Math.round(elapsedMs)} ms on ${kind}, two processes`,
    );

    // Every response is a committed run, and every committed run was answered.
    const runs = await db.knex("sync_runs").where({ outcome: "ok" }).orderBy("id").select("*");
    const phaseOf = (id: number) => phaseEnds.findIndex((end) => id <= end);
    const key = (o: { phase: number; conn: string; listId: string; counters: SyncCounters }) =>
      `${o.phase}|${o.conn}|${o.listId}|${COUNTER_FIELDS.map((f) => o.counters[f]).join(",")}`;
    const committed = runs.map((r) => ({
      id: Number(r.id),
      phase: phaseOf(Number(r.id)),
      conn: r.connection_id as string,
      listId: r.list_id as string,
      counters: Object.fromEntries(
        COUNTER_FIELDS.map((f) => [f, Number(r[f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)])]),
      ) as unknown as SyncCounters,
    }));
    expect(committed.map(key).sort()).to.deep.equal(outcomes.map(key).sort());

    // The serial replay, connection by connection in commit order, on a fresh database.
    for (const run of committed) {
      const ci = CONNECTIONS.indexOf(run.conn);
      const li = LISTS.indexOf(run.listId);
      const items = version(run.phase, ci, li).map(toMediaItem);
      const counters = await syncWithStore(
        replay.store,
        run.conn,
        run.listId,
        items,
        new Date(1_800_000_000_000 + run.id),
      );
      expect(counters, `run ${run.id} (${run.conn}/${run.listId}, phase ${run.phase})`).to.deep.equal(run.counters);
    }
    for (const conn of CONNECTIONS) {
      expect(await stateOf(db.admin, conn), conn).to.deep.equal(await stateOf(replay.admin, conn));
    }
    // Both processes did real work, and neither logged an unexpected failure.
    for (const s of servers) {
      expect(s.output.join("\n")).not.to.include('"sync failed unexpectedly"');
      expect(s.output.filter((l) => l.includes('"outcome":"ok"')).length).to.be.above(0);
    }
  });
});
