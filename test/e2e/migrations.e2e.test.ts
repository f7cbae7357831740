import { expect } from "chai";
import { startAccessApiSimulator } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { spawnServe, UPSTREAM_KEY } from "../support/stack";

/** SPEC §5: `serve` migrates only when asked; until then /readyz reports what is pending. */
forEachDatabase(
  (db) => {
    it("serve on an unmigrated database is live but not ready; serve --migrate makes it ready", async function () {
      this.timeout(60_000);
      const simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
      const env = {
        VAULTPLUS_DATABASE_URL: db.url,
        VAULTPLUS_UPSTREAM_URL: simulator.url,
        VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      };
      try {
        const plain = await spawnServe(env);
        try {
          expect((await fetch(`${plain.httpUrl}/healthz`)).status).to.equal(200);
          const ready = await fetch(`${plain.httpUrl}/readyz`);
          expect(ready.status).to.equal(503);
          expect(((await ready.json()) as { error: string }).error).to.equal(
            "1 database migration(s) pending: run `vaultplus migrate` or serve with --migrate",
          );
        } finally {
          expect(await plain.stop()).to.equal(0);
        }
        expect(await db.knex.schema.hasTable("cache_entries")).to.equal(false);

        const migrating = await spawnServe(env, ["--migrate"]);
        try {
          const ready = await fetch(`${migrating.httpUrl}/readyz`);
          expect(ready.status).to.equal(200);
          expect(await ready.json()).to.deep.equal({ status: "ready" });
        } finally {
          expect(await migrating.stop()).to.equal(0);
        }
        expect(await db.knex.schema.hasTable("cache_entries")).to.equal(true);
      } finally {
        await simulator.close();
      }
    });
  },
  { migrate: false },
);
