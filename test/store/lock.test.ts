import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect } from "chai";
import { DB_UNAVAILABLE_MESSAGE, SyncError } from "../../src/domain/errors";
import { CONNECTION_INVALID_MESSAGE } from "../../src/domain/ids";
import { planSync } from "../../src/domain/planner";
import { createKnex } from "../../src/store/db";
import { classifyDbError, isRetryableDbError, KnexStore } from "../../src/store/knex-store";
import { forEachDatabase } from "../support/databases";
import { rejection } from "../support/expect";
import { mediaItems, syncWithStore } from "../support/sync";

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Another process that holds the connection's lock for `holdMs`; resolves when it holds it. */
async function lockInOtherProcess(url: string, connectionId: string, holdMs: number) {
  const child = spawn(
    process.execPath,
    [join(__dirname, "..", "support", "lock-holder.js"), url, connectionId, String(holdMs)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  const lockedAt = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      const m = /^locked (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
  return { lockedAt, exited };
}

describe("KnexStore.withConnectionLock", () => {
  forEachDatabase((db, kind) => {
    before(async () => {
      await db.admin.createConnection("acct", "c1");
      await db.admin.createConnection("acct", "c2");
      await db.admin.createConnection("acct", "off");
      await db.admin.disableConnection("off");
    });

    it("refuses unknown and disabled connections like invalid ones", async () => {
      for (const id of ["nope", "off", "C1"]) {
        const err = await rejection(db.store.withConnectionLock(id, async () => "ran"));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.message).to.equal(CONNECTION_INVALID_MESSAGE);
      }
    });

    it("returns the work's result and bumps the lock version once", async () => {
      const before = await db.knex("connections").where({ id: "c1" }).first("lock_version");
      expect(await db.store.withConnectionLock("c1", async () => 42)).to.equal(42);
      const after = await db.knex("connections").where({ id: "c1" }).first("lock_version");
      expect(Number(after.lock_version)).to.equal(Number(before.lock_version) + 1);
    });

    it("serializes two units on the same connection: the second waits for the first to commit", async () => {
      const events: string[] = [];
      const release = gate();
      const first = db.store.withConnectionLock("c1", async () => {
        events.push("first:start");
        await release.promise;
        events.push("first:end");
      });
      await sleep(50);
      const second = db.store.withConnectionLock("c1", async () => {
        events.push("second:start");
      });
      await sleep(400);
      expect(events).to.deep.equal(["first:start"]);
      release.open();
      await Promise.all([first, second]);
      expect(events).to.deep.equal(["first:start", "first:end", "second:start"]);
    });

    it("rolls back everything when the work throws", async () => {
      await syncWithStore(db.store, "c2", "100", mediaItems([1, 2, 3]), new Date(1_000));
      const snapshot = await db.admin.snapshot("c2");
      const version = await db.knex("connections").where({ id: "c2" }).first("lock_version");
      const boom = new Error("boom");
      let thrown: unknown;
      try {
        await db.store.withConnectionLock("c2", async (unit) => {
          const current = mediaItems([2, 3, 4], { 3: 1 });
          const previous = await unit.loadBaseline("100");
          expect(previous?.size).to.equal(3);
          const plan = planSync({
            previous,
            cache: await unit.loadCacheView([2, 3, 4]),
            ownedElsewhere: new Set(),
            current,
          });
          await unit.apply("100", plan, {
            listId: "100",
            startedAt: new Date(1_500),
            finishedAt: new Date(2_000),
            traceId: null,
            counters: plan.counters,
          });
          throw boom;
        });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.equal(boom);
      expect(await db.admin.snapshot("c2")).to.deep.equal(snapshot);
      expect(await db.knex("connections").where({ id: "c2" }).first("lock_version")).to.deep.equal(version);
    });

    it("re-runs the work from scratch after a deadlock, a bounded number of times", async () => {
      const version = async () =>
        Number((await db.knex("connections").where({ id: "c2" }).first("lock_version")).lock_version);
      const deadlock = () => Object.assign(new Error("Deadlock found"), { code: "ER_LOCK_DEADLOCK", errno: 1213 });
      const start = await version();
      let runs = 0;
      const result = await db.store.withConnectionLock("c2", async () => {
        runs++;
        if (runs < 3) throw deadlock();
        return "third time";
      });
      expect(result).to.equal("third time");
      expect(runs).to.equal(3);
      expect(await version()).to.equal(start + 1); // the failed attempts rolled back

      runs = 0;
      const err = await rejection(
        db.store.withConnectionLock("c2", async () => {
          runs++;
          throw deadlock();
        }),
      );
      expect(err.kind).to.equal("db_unavailable");
      expect(runs).to.equal(3);
      expect(await version()).to.equal(start + 1);
    });

    it("gives up with db_unavailable when the lock is held past dbTimeoutMs", async () => {
      const knex = createKnex(db.url, { dbTimeoutMs: 1000 });
      const impatient = new KnexStore(knex, { dbTimeoutMs: 1000 });
      const release = gate();
      const holder = db.store.withConnectionLock("c1", () => release.promise);
      try {
        await sleep(50);
        const started = Date.now();
        const err = await rejection(impatient.withConnectionLock("c1", async () => "ran"));
        const elapsed = Date.now() - started;
        expect(err.kind).to.equal("db_unavailable");
        expect(err.message).to.equal(DB_UNAVAILABLE_MESSAGE);
        expect(classifyDbError(err.cause)).to.be.instanceOf(SyncError);
        expect(elapsed).to.be.within(900, 3500);
      } finally {
        release.open();
        await holder;
        await knex.destroy();
      }
      // The lock is free again.
      expect(await db.store.withConnectionLock("c1", async () => "ok")).to.equal("ok");
    });

    it("waits for a lock held by another process, then proceeds", async () => {
      const holdMs = 800;
      const { lockedAt, exited } = await lockInOtherProcess(db.url, "c1", holdMs);
      let startedAt = 0;
      await db.store.withConnectionLock("c1", async () => {
        startedAt = Date.now();
      });
      expect(startedAt).to.be.at.least(lockedAt + holdMs - 20);
      expect(await exited).to.equal(0);
    });

    it("times out on a lock held by another process with db_unavailable", async () => {
      const knex = createKnex(db.url, { dbTimeoutMs: 500 });
      const impatient = new KnexStore(knex, { dbTimeoutMs: 500 });
      try {
        const { exited } = await lockInOtherProcess(db.url, "c1", 2000);
        const started = Date.now();
        const err = await rejection(impatient.withConnectionLock("c1", async () => "ran"));
        expect(err.kind).to.equal("db_unavailable");
        expect(Date.now() - started).to.be.below(2500);
        expect(await exited).to.equal(0);
      } finally {
        await knex.destroy();
      }
    });

    if (kind === "mariadb") {
      it("recovers when the server drops its connections (restart)", async () => {
        expect(await db.store.findConnection("c1")).to.deep.include({ active: true });
        const name = new URL(db.url).pathname.slice(1);
        const killer = createKnex(db.url, { dbTimeoutMs: 5000 });
        try {
          const [rows] = await killer.raw(
            "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
            [name],
          );
          expect(rows.length).to.be.at.least(1);
          for (const row of rows as Array<{ id: number }>) await killer.raw(`KILL ${Number(row.id)}`);
        } finally {
          await killer.destroy();
        }
        await sleep(100);
        expect(await db.store.findConnection("c1")).to.deep.include({ active: true });
        expect(await db.store.withConnectionLock("c1", async () => "ok")).to.equal("ok");
      });

      it("does not block another connection (row locks)", async () => {
        const release = gate();
        const holder = db.store.withConnectionLock("c1", () => release.promise);
        try {
          await sleep(50);
          const started = Date.now();
          expect(await db.store.withConnectionLock("c2", async () => "free")).to.equal("free");
          expect(Date.now() - started).to.be.below(500);
        } finally {
          release.open();
          await holder;
        }
      });
    }
  });
});

describe("database error classification", () => {
  const err = (props: Record<string, unknown>, name = "Error") => Object.assign(new Error("x"), { name }, props);

  it("retries deadlocks and immediate SQLite busy/locked", () => {
    expect(isRetryableDbError(err({ code: "ER_LOCK_DEADLOCK", errno: 1213 }))).to.equal(true);
    expect(isRetryableDbError(err({ code: "SQLITE_BUSY" }))).to.equal(true);
    expect(isRetryableDbError(err({ code: "SQLITE_LOCKED_SHAREDCACHE" }))).to.equal(true);
    expect(isRetryableDbError(err({ code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }))).to.equal(false);
  });

  it("maps unreachable databases and timeouts to db_unavailable, and nothing else", () => {
    for (const e of [
      err({ code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }),
      err({ code: "ECONNREFUSED" }),
      err({ code: "PROTOCOL_CONNECTION_LOST", fatal: true }),
      err({ fatal: true }),
      err({}, "KnexTimeoutError"),
      err({ code: "SQLITE_BUSY" }),
      err({ code: "SQLITE_IOERR_WRITE" }),
    ]) {
      expect(classifyDbError(e)?.kind, String((e as { code?: string }).code ?? e.name)).to.equal("db_unavailable");
    }
    for (const e of [
      err({ code: "ER_DUP_ENTRY", errno: 1062 }),
      err({ code: "SQLITE_CONSTRAINT_PRIMARYKEY" }),
      new Error("bug"),
    ]) {
      expect(classifyDbError(e)).to.equal(null);
    }
    expect(classifyDbError(new SyncError("upstream_failed", "x"))).to.equal(null);
    const unavailable = new SyncError("db_unavailable", DB_UNAVAILABLE_MESSAGE);
    expect(classifyDbError(unavailable)).to.equal(unavailable);
  });

  it("reports an unreachable MySQL server as db_unavailable within the timeout", async () => {
    const knex = createKnex("mysql://u:p@127.0.0.1:1/none", { dbTimeoutMs: 1000, log: () => {} });
    const store = new KnexStore(knex, { dbTimeoutMs: 1000 });
    try {
      const started = Date.now();
      expect((await rejection(store.ping())).kind).to.equal("db_unavailable");
      expect((await rejection(store.findConnection("c1"))).kind).to.equal("db_unavailable");
      expect((await rejection(store.withConnectionLock("c1", async () => 1))).kind).to.equal("db_unavailable");
      expect(Date.now() - started).to.be.below(5000);
    } finally {
      await knex.destroy();
    }
  });
});
