import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { type Connection, createConnection } from "mysql2/promise";
import { type AccessApiSimulator, startAccessApiSimulator } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { GrpcSyncClient, restSync, type ServeProcess, spawnServe, UPSTREAM_KEY } from "../support/stack";
import { countersOf, type State, scenario, sleep, stateOf, timed, waitFor } from "./support";

/**
 * Crash safety with real `vaultplus serve` processes: SIGKILL at any point of a sync leaves no
 * partial effect (the transaction is the unit; a killed client's transaction is rolled back by
 * the database), and SIGTERM drains in-flight requests, then exits 0 within a bounded time.
 */

const L = "9001";
const L2 = "9002";
const ACCOUNT = "acct_crash";

describe("hardening: crashes and shutdown", function () {
  this.timeout(40_000);

  let simulator: AccessApiSimulator;
  before(async () => {
    simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
  });
  after(() => simulator?.close());

  forEachDatabase((db, kind) => {
    let apiKey: string | undefined;
    let next = 0;
    const running: ServeProcess[] = [];
    afterEach(async () => {
      for (const p of running.splice(0)) await p.stop("SIGKILL");
    });

    async function serve(): Promise<ServeProcess> {
      apiKey ??= (await db.admin.createApiKey(ACCOUNT, ["ACCOUNT"])).token;
      const p = await spawnServe({
        VAULTPLUS_DATABASE_URL: db.url,
        VAULTPLUS_UPSTREAM_URL: simulator.url,
        VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
        VAULTPLUS_UPSTREAM_PAGE_SIZE: "10",
        VAULTPLUS_DB_TIMEOUT_MS: "5000",
      });
      running.push(p);
      return p;
    }

    const headers = (conn: string) => ({ apikey: apiKey as string, "x-connection-id": conn });

    async function prepared(p: ServeProcess): Promise<{ conn: string; before: State; expected: object }> {
      const conn = `crash${next++}`;
      const s = scenario();
      await db.admin.createConnection(ACCOUNT, conn);
      simulator.setList(conn, L, s.v1);
      simulator.setList(conn, L2, s.l2);
      countersOf(await restSync(p.httpUrl, L, headers(conn)));
      countersOf(await restSync(p.httpUrl, L2, headers(conn)));
      simulator.setList(conn, L, s.v2);
      return { conn, before: await stateOf(db.admin, conn), expected: s.expected };
    }

    it("SIGKILL during a sync (slow upstream) leaves no partial effect; another process then syncs cleanly", async () => {
      const first = await serve();
      const { conn, before, expected } = await prepared(first);
      const slow = simulator.injectFault({ kind: "delay", ms: 5000, offset: 20, connectionId: conn });
      const pending = timed(restSync(first.httpUrl, L, headers(conn)));
      await waitFor("the slow page to be asked for", () => slow.hits === 1);
      expect(await first.stop("SIGKILL")).to.equal(null);
      const cut = await pending;
      expect(cut.error, "the client sees the connection cut, not an answer").to.be.instanceOf(Error);
      expect(await stateOf(db.admin, conn)).to.deep.equal(before);

      simulator.clearFaults();
      const second = await serve();
      expect(countersOf(await restSync(second.httpUrl, L, headers(conn)), L)).to.deep.equal(expected);
    });

    if (kind === "mariadb") {
      it("SIGKILL inside the sync's transaction (its first writes done) leaves no partial effect", async () => {
        const first = await serve();
        const { conn, before, expected } = await prepared(first);
        const monitor = await createConnection({ uri: db.url });
        const t1: Connection = await createConnection({ uri: db.url });
        try {
          // t1 holds list_syncs(conn, L): the sync blocks at its last statements, its entries and queue written.
          await t1.beginTransaction();
          await t1.query("SELECT * FROM list_syncs WHERE connection_id = ? AND list_id = ? FOR UPDATE", [conn, L]);
          const pending = timed(restSync(first.httpUrl, L, headers(conn)));
          await waitFor("the sync to block inside its transaction", async () => {
            await sleep(150); // INNODB_TRX refreshes only when not read for 100 ms
            const [rows] = await monitor.query(
              "SELECT 1 FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
            );
            return (rows as unknown[]).length === 1;
          });
          await monitor.query("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED");
          const [dirty] = await monitor.query(
            "SELECT COUNT(*) AS n FROM cache_entries WHERE connection_id = ? AND media_id >= ?",
            [conn, 5_000_000_040],
          );
          expect(Number((dirty as Array<{ n: number }>)[0]?.n), "uncommitted new entries exist").to.equal(5);

          expect(await first.stop("SIGKILL")).to.equal(null);
          expect((await pending).error).to.be.instanceOf(Error);
          await t1.commit(); // the killed process's statement may now run, but its COMMIT never comes
        } finally {
          await t1.end().catch(() => t1.destroy());
          await monitor.end().catch(() => monitor.destroy());
        }
        expect(await stateOf(db.admin, conn)).to.deep.equal(before);
        const second = await serve();
        expect(countersOf(await restSync(second.httpUrl, L, headers(conn)), L)).to.deep.equal(expected);
        expect(await stateOf(db.admin, conn)).not.to.deep.equal(before);
      });

      it("SIGTERM drains in-flight REST and gRPC syncs, refuses new ones, then exits 0 within the bound", async () => {
        const p = await serve();
        const a = await prepared(p);
        const b = await prepared(p);
        const slowA = simulator.injectFault({ kind: "delay", ms: 1500, offset: 10, connectionId: a.conn });
        const slowB = simulator.injectFault({ kind: "delay", ms: 1500, offset: 10, connectionId: b.conn });
        const grpc = new GrpcSyncClient(p.grpcTarget);
        try {
          const rest = restSync(p.httpUrl, L, headers(a.conn));
          const call = grpc.sync(L, headers(b.conn));
          await waitFor("both slow pages to be asked for", () => slowA.hits === 1 && slowB.hits === 1);
          const exit = timed(p.stop("SIGTERM"));

          // New work is refused while the drain runs (the listeners are closed at once).
          await waitFor("new HTTP connections to be refused", async () => {
            try {
              await fetch(`${p.httpUrl}/healthz`);
              return false;
            } catch {
              return true;
            }
          });
          const late = new GrpcSyncClient(p.grpcTarget);
          try {
            const refused = await timed(late.sync(L, headers(a.conn)));
            expect((refused.error as ServiceError | undefined)?.code).to.equal(GrpcStatus.UNAVAILABLE);
          } finally {
            late.close();
          }

          // In-flight syncs complete with their full result.
          expect(countersOf(await rest, L)).to.deep.equal(a.expected);
          const res = await call;
          expect(res.listId).to.equal(L);
          expect(res.seen).to.equal(32);
          expect(res.removedItems).to.equal(5);

          const exited = await exit;
          expect(exited.value).to.equal(0);
          expect(exited.ms).to.be.below(1500 + 5000);
        } finally {
          grpc.close();
          simulator.clearFaults();
        }
      });
    }
  });
});
