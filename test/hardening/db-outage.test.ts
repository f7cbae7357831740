import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { type Connection, createConnection } from "mysql2/promise";
import { DB_UNAVAILABLE_MESSAGE } from "../../src/domain/errors";
import { mysqlStatementTimeoutMs } from "../../src/store/db";
import { createTestDatabase, type TestDatabase } from "../support/databases";
import { type MariaDbServer, startMariaDb } from "../support/mariadb";
import { GrpcSyncClient, restSync, type Stack, startStack } from "../support/stack";
import { countersOf, type State, scenario, sleep, stateOf, timed, waitFor } from "./support";

/**
 * SPEC §4 database bounds on a MariaDB server of its own, which these tests stop, kill, freeze
 * and restart on the same port and datadir (the shared server of the other suites is never
 * touched). The service keeps running throughout: it must answer 503 / UNAVAILABLE within a
 * bounded time, report not ready, and recover by itself once the database is back.
 */

const DB_TIMEOUT_MS = 1000;
/** Generous: "fails within a bounded time" means within 3x the configured bound. */
const BOUND_MS = 3 * mysqlStatementTimeoutMs(DB_TIMEOUT_MS);
const L = "8001";
const L2 = "8002";
const ACCOUNT = "acct_outage";

describe("hardening: database outages", function () {
  this.timeout(60_000);

  let server: MariaDbServer;
  let db: TestDatabase;
  let stack: Stack;
  let grpc: GrpcSyncClient;
  let apiKey: string;
  let next = 0;

  before(async function () {
    this.timeout(120_000);
    server = await startMariaDb();
    db = await createTestDatabase("mariadb", { serverUrl: server.url, dbTimeoutMs: DB_TIMEOUT_MS });
    stack = await startStack(db, {
      env: { VAULTPLUS_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS), VAULTPLUS_UPSTREAM_PAGE_SIZE: "10" },
    });
    grpc = new GrpcSyncClient(stack.grpcTarget);
    apiKey = (await db.admin.createApiKey(ACCOUNT, ["ACCOUNT"])).token;
  });

  after(async () => {
    grpc?.close();
    await stack?.close();
    await db?.knex.destroy();
    await server?.stop(); // removes the datadir, databases included
  });

  /** The database must be back after every test, whatever happened in it. */
  afterEach(async () => {
    server.thaw();
    if (server.pid === undefined) await server.restart();
  });

  const headers = (connectionId: string) => ({ apikey: apiKey, "x-connection-id": connectionId });
  const sync = (connectionId: string, listId = L, s: Stack = stack) =>
    restSync(s.httpUrl, listId, headers(connectionId));
  const readyz = async (s: Stack = stack) => {
    const res = await fetch(`${s.httpUrl}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** A connection with L v1 and L2 synced, and L v2 waiting upstream (see scenario()). */
  async function prepared(
    s: Stack = stack,
  ): Promise<{ conn: string; before: State; expected: ReturnType<typeof scenario>["expected"] }> {
    const conn = `out${next++}`;
    const sc = scenario();
    await db.admin.createConnection(ACCOUNT, conn);
    s.simulator.setList(conn, L, sc.v1);
    s.simulator.setList(conn, L2, sc.l2);
    countersOf(await sync(conn, L, s));
    countersOf(await sync(conn, L2, s));
    s.simulator.setList(conn, L, sc.v2);
    return { conn, before: await stateOf(db.admin, conn), expected: sc.expected };
  }

  /** REST, gRPC and /readyz, concurrently: each must answer within the bound. */
  async function expectUnavailable(conn: string): Promise<void> {
    const [rest, call, ready] = await Promise.all([
      timed(sync(conn)),
      timed(grpc.sync(L, headers(conn))),
      timed(readyz()),
    ]);
    expect(rest.value?.status, JSON.stringify(rest.value?.body)).to.equal(503);
    expect(rest.value?.body).to.deep.equal({ error: DB_UNAVAILABLE_MESSAGE });
    expect(rest.ms).to.be.below(BOUND_MS);

    expect((call.error as ServiceError | undefined)?.code).to.equal(GrpcStatus.UNAVAILABLE);
    expect((call.error as ServiceError).details).to.equal(DB_UNAVAILABLE_MESSAGE);
    expect(call.ms).to.be.below(BOUND_MS);

    expect(ready.value?.status).to.equal(503);
    expect(ready.value?.body.status).to.equal("not ready");
    expect(String(ready.value?.body.error)).not.to.match(/ECONN|127\.0\.0\.1|mysql:|password|\bat /);
    expect(ready.ms).to.be.below(BOUND_MS);
    // The process itself is alive.
    expect((await fetch(`${stack.httpUrl}/healthz`)).status).to.equal(200);
  }

  /** Back without restarting the service: ready again, and the pending sync gives exactly the expected counters. */
  async function expectRecovered(conn: string, before: State, expected: object): Promise<void> {
    await waitFor("readyz 200", async () => (await readyz()).status === 200, 20_000);
    expect(await stateOf(db.admin, conn)).to.deep.equal(before);
    expect(countersOf(await sync(conn), L)).to.deep.equal(expected);
  }

  it("stopped between syncs: 503 / UNAVAILABLE within the bound, not ready; recovers when it is back", async () => {
    const { conn, before, expected } = await prepared();
    await server.halt("SIGTERM");
    await expectUnavailable(conn);
    await server.restart();
    await expectRecovered(conn, before, expected);
  });

  it("frozen between syncs (TCP up, no answers) with warm pooled connections: bounded, then recovers", async () => {
    const { conn, before, expected } = await prepared();
    // Warm pool: idle connections that a sync will pick up, and whose statements get no answer.
    await Promise.all([readyz(), readyz(), readyz()]);
    server.freeze();
    await expectUnavailable(conn);
    server.thaw();
    await expectRecovered(conn, before, expected);
  });

  it("stopped while the sync fetches from a slow upstream: 503, nothing changed", async () => {
    const { conn, before, expected } = await prepared();
    const slow = stack.simulator.injectFault({ kind: "delay", ms: 600, offset: 10, connectionId: conn });
    const pending = timed(sync(conn));
    await waitFor("the slow page to be asked for", () => slow.hits === 1);
    await server.halt("SIGTERM");
    const result = await pending;
    expect(result.value?.status).to.equal(503);
    expect(result.value?.body).to.deep.equal({ error: DB_UNAVAILABLE_MESSAGE });
    expect(result.ms).to.be.below(600 + BOUND_MS);
    await server.restart();
    await expectRecovered(conn, before, expected);
  });

  describe("inside the sync's transaction", () => {
    // Lock waits here must outlast the test's reaction time: a stack with a 4 s bound.
    let patient: Stack;
    let monitor: Connection;
    before(async () => {
      patient = await startStack(db, {
        env: { VAULTPLUS_DB_TIMEOUT_MS: "4000", VAULTPLUS_UPSTREAM_PAGE_SIZE: "10" },
        simulator: stack.simulator,
      });
    });
    after(() => patient?.close());
    beforeEach(async () => {
      monitor = await createConnection({ uri: db.url });
    });
    afterEach(async () => {
      await monitor?.end().catch(() => monitor.destroy());
    });

    /**
     * Transactions waiting for a row lock. InnoDB refreshes INNODB_TRX only when it was not read for
     * 100 ms, so this waits 150 ms first: polling faster would keep reading a stale snapshot.
     */
    async function lockWaiters(): Promise<number> {
      await sleep(150);
      const [rows] = await monitor.query(
        "SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
      );
      return (rows as unknown[]).length;
    }

    /** Holds list_syncs(conn, L) so the sync blocks at its last statements, cache entries and work queue written. */
    async function blocker(conn: string): Promise<Connection> {
      const t1 = await createConnection({ uri: db.url });
      await t1.query("SET SESSION innodb_lock_wait_timeout = 10");
      await t1.beginTransaction();
      await t1.query("SELECT * FROM list_syncs WHERE connection_id = ? AND list_id = ? FOR UPDATE", [conn, L]);
      return t1;
    }

    it("killed (SIGKILL) mid-transaction: 503 within the bound; after crash recovery nothing changed", async () => {
      const { conn, before, expected } = await prepared(patient);
      const t1 = await blocker(conn);
      const pending = timed(sync(conn, L, patient));
      await waitFor("the sync to block inside its transaction", async () => (await lockWaiters()) === 1);
      // Its uncommitted writes exist right now (read uncommitted shows them)...
      const [dirty] = await monitor.query("SELECT COUNT(*) AS n FROM work_queue WHERE connection_id = ?", [conn]);
      await monitor.query("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED");
      const [uncommitted] = await monitor.query("SELECT COUNT(*) AS n FROM work_queue WHERE connection_id = ?", [conn]);
      expect(Number((uncommitted as Array<{ n: number }>)[0]?.n)).to.be.above(
        Number((dirty as Array<{ n: number }>)[0]?.n),
      );
      monitor.destroy();

      await server.halt("SIGKILL");
      t1.destroy();
      const result = await pending;
      expect(result.value?.status).to.equal(503);
      expect(result.value?.body).to.deep.equal({ error: DB_UNAVAILABLE_MESSAGE });
      expect(result.ms).to.be.below(BOUND_MS + 4000);

      await server.restart(); // InnoDB crash recovery rolls the open transaction back
      await waitFor("readyz 200", async () => (await readyz(patient)).status === 200, 20_000);
      expect(await stateOf(db.admin, conn)).to.deep.equal(before);
      expect(countersOf(await sync(conn, L, patient), L)).to.deep.equal(expected);
    });

    it("a lock-wait timeout is 503 within the bound and changes nothing; the lock's release brings syncs back", async () => {
      const { conn, before, expected } = await prepared();
      // Another transaction holds the connection's row lock (as a stuck sync elsewhere would).
      const t1 = await createConnection({ uri: db.url });
      try {
        await t1.beginTransaction();
        await t1.query("UPDATE connections SET lock_version = lock_version WHERE id = ?", [conn]);
        const result = await timed(sync(conn));
        expect(result.value?.status).to.equal(503);
        expect(result.value?.body).to.deep.equal({ error: DB_UNAVAILABLE_MESSAGE });
        // The lock wait is bounded by VAULTPLUS_DB_TIMEOUT_MS (1 s here), and not retried past it.
        expect(result.ms).to.be.within(DB_TIMEOUT_MS - 50, 2 * DB_TIMEOUT_MS + 500);
        expect(await stateOf(db.admin, conn)).to.deep.equal(before);
      } finally {
        await t1.rollback();
        await t1.end();
      }
      expect(countersOf(await sync(conn), L)).to.deep.equal(expected);
    });

    it("a deadlock is retried: the sync, chosen as the victim, re-runs and commits the right counters", async () => {
      const { conn, expected } = await prepared(patient);
      // A heavier transaction (many undo records) so InnoDB picks the sync as the deadlock victim.
      const t1 = await createConnection({ uri: db.url });
      try {
        await t1.query("SET SESSION innodb_lock_wait_timeout = 10");
        await t1.beginTransaction();
        const rows = Array.from({ length: 3000 }, (_, i) => ["zz_heavy", i, "cache", 0]);
        await t1.query("INSERT INTO work_queue (connection_id, media_id, action, created_at) VALUES ?", [rows]);
        await t1.query("SELECT * FROM list_syncs WHERE connection_id = ? AND list_id = ? FOR UPDATE", [conn, L]);

        const pending = timed(sync(conn, L, patient));
        await waitFor("the sync to wait for list_syncs", async () => (await lockWaiters()) === 1);
        // Close the cycle: t1 now wants the connection row the sync holds.
        await t1.query("UPDATE connections SET lock_version = lock_version WHERE id = ?", [conn]);
        // t1 got it, so the sync was rolled back as the victim; its retry now waits for t1.
        await waitFor("the retried sync to wait for t1", async () => (await lockWaiters()) === 1);
        await t1.rollback();
        const result = await pending;
        expect(countersOf(result.value!, L)).to.deep.equal(expected);
        const [status] = await monitor.query("SHOW ENGINE INNODB STATUS");
        expect(String((status as Array<{ Status: string }>)[0]?.Status)).to.include("LATEST DETECTED DEADLOCK");
      } finally {
        await t1.end().catch(() => t1.destroy());
      }
      // Exactly one sync committed (one run recorded ok, the failed attempt left nothing).
      const runs = (await db.admin.snapshot(conn)).runs.filter((r) => r.listId === L);
      expect(runs.map((r) => r.outcome)).to.deep.equal(["ok", "ok"]);
    });
  });
});
