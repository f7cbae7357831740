import { expect } from "chai";
import { createKnex, describeDatabaseUrl } from "../../src/store/db";
import { MIGRATION_NAMES, migrateLatest, migrationStatus } from "../../src/store/migrations";
import { forEachDatabase } from "../support/databases";
import { EXPECTED_TABLES } from "../support/expect";

describe("store migrations", () => {
  forEachDatabase(
    (db) => {
      it("reports pending migrations on an empty database without creating anything", async () => {
        const status = await migrationStatus(db.knex);
        expect(status).to.deep.equal({ current: false, pending: 1, applied: [], pendingNames: ["001_initial"] });
        expect(await db.knex.schema.hasTable("knex_migrations")).to.equal(false);
      });

      it("migrates from scratch, then is idempotent and current", async () => {
        expect(await migrateLatest(db.knex)).to.deep.equal(["001_initial"]);
        for (const table of EXPECTED_TABLES) expect(await db.knex.schema.hasTable(table), table).to.equal(true);
        expect(await migrateLatest(db.knex)).to.deep.equal([]);
        expect(await migrationStatus(db.knex)).to.deep.equal({
          current: true,
          pending: 0,
          applied: [...MIGRATION_NAMES],
          pendingNames: [],
        });
      });

      it("stores epoch milliseconds and 53-bit media ids exactly", async () => {
        const big = Number.MAX_SAFE_INTEGER;
        const at = Date.UTC(2100, 0, 1, 12, 30, 45, 678);
        await db.knex("work_queue").insert({ connection_id: "c", media_id: big, action: "cache", created_at: at });
        const row = await db.knex("work_queue").first("media_id", "created_at");
        expect(row).to.deep.equal({ media_id: big, created_at: at });
      });

      it("compares ids case-sensitively", async () => {
        await db.knex("accounts").insert([
          { id: "acct", created_at: 1 },
          { id: "ACCT", created_at: 2 },
        ]);
        expect(await db.knex("accounts").where({ id: "ACCT" }).select("created_at")).to.deep.equal([{ created_at: 2 }]);
      });
    },
    { migrate: false },
  );
});

describe("database URLs", () => {
  it("redacts the password of a mysql URL", () => {
    expect(describeDatabaseUrl("mysql://vault:s3cret@db.internal:3307/vaultplus")).to.equal(
      "mysql://vault:***@db.internal:3307/vaultplus",
    );
    expect(describeDatabaseUrl("sqlite:.vaultplus/vaultplus.db")).to.equal("sqlite:.vaultplus/vaultplus.db");
  });

  it("refuses an unknown scheme", () => {
    expect(() => createKnex("postgres://x/y", { dbTimeoutMs: 1000 })).to.throw(/mysql:\/\/.*sqlite:PATH/);
  });
});
