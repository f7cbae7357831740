import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { CONNECTION_INVALID_MESSAGE, isConnectionId } from "../../src/domain/ids";
import { forEachDatabase } from "../support/databases";
import { EXPECTED_TABLES } from "../support/expect";
import { GrpcSyncClient, restSync, type Stack, startStack, UPSTREAM_KEY } from "../support/stack";
import { INJECTIONS, scenario, stateOf } from "./support";

/**
 * SPEC §2.3 and §3.1 isolation: a key of account A never syncs or observes a connection of
 * account B, whatever the headers say; revoked and scope-less keys are refused; keys are only
 * stored as hashes; no secret reaches a log line or an error; SQL takes values only as bindings.
 * (Traces are checked in traces.test.ts, on a real `serve` process exporting OTLP.)
 */

const L = "7301";

describe("hardening: security", function () {
  this.timeout(30_000);

  forEachDatabase((db) => {
    let stack: Stack;
    let grpc: GrpcSyncClient;
    let keyA: { id: string; token: string };
    let keyB: { id: string; token: string };

    before(async () => {
      stack = await startStack(db);
      grpc = new GrpcSyncClient(stack.grpcTarget);
      keyA = await db.admin.createApiKey("sec_a", ["ACCOUNT"]);
      keyB = await db.admin.createApiKey("sec_b", ["ACCOUNT", "ACCESS"]);
      await db.admin.createConnection("sec_a", "sec_conn_a");
      await db.admin.createConnection("sec_b", "sec_conn_b");
      await db.admin.createConnection("sec_b", "sec_conn_b_off");
      await db.admin.disableConnection("sec_conn_b_off");
      const s = scenario(5_500_000_000);
      for (const conn of ["sec_conn_a", "sec_conn_b", "sec_conn_b_off"]) stack.simulator.setList(conn, L, s.v1);
      // B has state worth stealing or destroying.
      expect(
        (await restSync(stack.httpUrl, L, { apikey: keyB.token, "x-connection-id": "sec_conn_b" })).status,
      ).to.equal(200);
    });
    after(async () => {
      grpc?.close();
      await stack?.close();
    });

    const restOutcome = async (headers: Record<string, string>, listId = L) => {
      const r = await restSync(stack.httpUrl, listId, headers);
      return { status: r.status, body: r.body };
    };
    const grpcOutcome = (md: Record<string, string>, listId = L) =>
      grpc.sync(listId, md).then(
        () => ({ code: GrpcStatus.OK, details: "" }),
        (e: ServiceError) => ({ code: e.code, details: e.details }),
      );
    const connectOutcome = async (headers: Record<string, string>) => {
      const res = await fetch(`${stack.httpUrl}/vaultplus.v1.VaultPlusLists/SyncList`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ listId: L }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    describe("tenant isolation", () => {
      it("a key of account A can never sync or observe a connection of account B, over REST, gRPC and Connect", async () => {
        const stateB = await stateOf(db.admin, "sec_conn_b");
        const runsB = (await db.admin.snapshot("sec_conn_b")).runs;
        const mark = stack.simulator.requests.length;
        // What an unknown connection looks like: B's connections must look exactly the same.
        const unknownRest = await restOutcome({ apikey: keyA.token, "x-connection-id": "no_such_conn" });
        const unknownGrpc = await grpcOutcome({ apikey: keyA.token, "x-connection-id": "no_such_conn" });
        expect(unknownRest).to.deep.equal({ status: 400, body: { error: CONNECTION_INVALID_MESSAGE } });
        expect(unknownGrpc).to.deep.equal({ code: GrpcStatus.INVALID_ARGUMENT, details: CONNECTION_INVALID_MESSAGE });

        for (const conn of ["sec_conn_b", "sec_conn_b_off", " sec_conn_b ", "SEC_CONN_B", "sec_conn_b\t"]) {
          expect(await restOutcome({ apikey: keyA.token, "x-connection-id": conn }), conn).to.deep.equal(unknownRest);
          expect(await restOutcome({ APIKEY: keyA.token, "X-Connection-Id": conn }), conn).to.deep.equal(unknownRest);
          if (conn === conn.trim()) {
            expect(await grpcOutcome({ apikey: keyA.token, "x-connection-id": conn }), conn).to.deep.equal(unknownGrpc);
          }
          const viaConnect = await connectOutcome({ apikey: keyA.token, "x-connection-id": conn });
          expect(viaConnect.status).to.equal(400);
          expect(viaConnect.body).to.deep.equal({ code: "invalid_argument", message: CONNECTION_INVALID_MESSAGE });
        }
        // Two connection headers (joined by the HTTP layer) or two keys are no way around it.
        const doubled = await fetch(`${stack.httpUrl}/v2/vault-plus/lists/${L}/sync`, {
          method: "PUT",
          headers: [
            ["apikey", keyA.token],
            ["x-connection-id", "sec_conn_b"],
            ["x-connection-id", "sec_conn_a"],
          ],
        });
        expect(doubled.status).to.equal(400);
        const twoKeys = await fetch(`${stack.httpUrl}/v2/vault-plus/lists/${L}/sync`, {
          method: "PUT",
          headers: [
            ["apikey", keyB.token],
            ["apikey", keyA.token],
            ["x-connection-id", "sec_conn_b"],
          ],
        });
        expect(twoKeys.status).to.equal(401);
        // gRPC metadata with two values: the first counts, and B's connection is refused for A's key.
        const two = await new Promise<{ code: number }>((resolve) => {
          const m = new Metadata();
          m.set("apikey", keyA.token);
          m.add("x-connection-id", "sec_conn_b");
          m.add("x-connection-id", "sec_conn_a");
          const client = grpc as unknown as { client: Record<string, (...args: unknown[]) => void> };
          client.client.syncList!.call(client.client, L, m, (err: ServiceError | null) =>
            resolve({ code: err ? err.code : 0 }),
          );
        });
        expect(two.code).to.equal(GrpcStatus.INVALID_ARGUMENT);

        // Nothing of B moved, no run was recorded for B, and the upstream never heard of B's connection.
        expect(await stateOf(db.admin, "sec_conn_b")).to.deep.equal(stateB);
        expect((await db.admin.snapshot("sec_conn_b")).runs).to.deep.equal(runsB);
        const asked = stack.simulator.requests.slice(mark).map((r) => r.headers["x-connection-id"]);
        expect(asked.filter((c) => c !== "sec_conn_a")).to.deep.equal([]);
        // A's own connection works with the same key.
        expect((await restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" })).status).to.equal(200);
      });

      it("refuses revoked keys (at once), scope-less keys, wrong secrets and malformed keys with 401 / UNAUTHENTICATED", async () => {
        const access = await db.admin.createApiKey("sec_a", ["ACCESS"]);
        const doomed = await db.admin.createApiKey("sec_a", ["ACCOUNT"]);
        const auth = (apikey: string) => ({ apikey, "x-connection-id": "sec_conn_a" });
        expect((await restOutcome(auth(doomed.token))).status).to.equal(200);
        expect(await db.admin.revokeApiKey(doomed.id)).to.equal(true);
        const secret = keyA.token.slice(-43);
        const wrongSecret = `${keyA.token.slice(0, -43)}${secret.startsWith("A") ? "B" : "A"}${secret.slice(1)}`;
        const mark = stack.simulator.requests.length;
        for (const apikey of [
          doomed.token,
          access.token,
          wrongSecret,
          keyA.token.slice(0, -1),
          `vp_${"0".repeat(16)}_${secret}`,
          `${keyA.id}`,
          `Bearer ${keyA.token}`,
        ]) {
          expect(await restOutcome(auth(apikey)), apikey).to.deep.equal({
            status: 401,
            body: { error: "Unauthorized" },
          });
          expect(await grpcOutcome(auth(apikey)), apikey).to.deep.equal({
            code: GrpcStatus.UNAUTHENTICATED,
            details: "Unauthorized",
          });
        }
        expect(stack.simulator.requests.length).to.equal(mark);
      });
    });

    it("stores keys only as hashes: no table holds a key or its secret", async () => {
      const fresh = await db.admin.createApiKey("sec_hash", ["ACCOUNT"]);
      const secret = fresh.token.slice(-43);
      const row = await db.knex("api_keys").where({ id: fresh.id }).first();
      expect(row.secret_hash).to.equal(createHash("sha256").update(secret).digest("hex"));
      for (const table of EXPECTED_TABLES) {
        const rows = await db.knex(table).select("*");
        const text = JSON.stringify(rows);
        for (const token of [fresh.token, keyA.token, keyB.token]) {
          expect(text, table).not.to.include(token);
          expect(text, table).not.to.include(token.slice(-43));
        }
      }
    });

    it("never puts a secret in a log line or an error: API keys, the upstream key, signed URLs", async () => {
      const secrets = [keyA.token, keyA.token.slice(-43), keyB.token, UPSTREAM_KEY, "Signature=", "Key-Pair-Id"];
      const bodies: string[] = [];
      const from = stack.logs.length;
      const s = scenario(5_500_000_000);
      // A success, a refused key, a foreign connection, upstream failures (one planting a signed URL
      // where a number belongs), a window failure.
      bodies.push(JSON.stringify(await restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" })));
      bodies.push(JSON.stringify(await restOutcome({ apikey: `${keyA.token}x`, "x-connection-id": "sec_conn_a" })));
      bodies.push(JSON.stringify(await restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_b" })));
      const poisoned = s.v1.map((item, i) =>
        i === 3 ? { ...item, duration: item.files?.full?.url as unknown as number } : item,
      );
      stack.simulator.setList("sec_conn_a", L, poisoned);
      bodies.push(JSON.stringify(await restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" })));
      stack.simulator.setList("sec_conn_a", L, s.v1);
      stack.simulator.injectFault({ kind: "status", status: 401, connectionId: "sec_conn_a" });
      bodies.push(JSON.stringify(await restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" })));
      bodies.push(JSON.stringify(await grpcOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" }, "1")));
      stack.simulator.clearFaults();
      const logs = stack.logs.slice(from);
      expect(logs.length).to.be.above(3);
      expect(bodies.join("\n")).to.include("Failed to fetch vault list media");
      for (const secret of secrets) {
        expect(
          logs.filter((l) => l.includes(secret)),
          secret,
        ).to.deep.equal([]);
        expect(
          bodies.filter((b) => b.includes(secret)),
          secret,
        ).to.deep.equal([]);
      }
      // And the failure that met the planted URL names the field instead.
      expect(bodies.join("\n")).to.include("list[3].duration is not a number");
    });

    describe("SQL only through bindings", () => {
      it("answers injection strings in every input with 400/401 and leaves every table as it was", async () => {
        const counts = async () =>
          Object.fromEntries(
            await Promise.all(
              EXPECTED_TABLES.map(async (t) => [t, Number((await db.knex(t).count({ n: "*" }).first())?.n)] as const),
            ),
          );
        const before = await counts();
        const mark = stack.simulator.requests.length;
        for (const p of INJECTIONS) {
          const cases: Array<Promise<{ status: number }>> = [
            restOutcome({ apikey: keyA.token, "x-connection-id": "sec_conn_a" }, encodeURIComponent(p)),
            restOutcome({ apikey: p, "x-connection-id": "sec_conn_a" }),
            restOutcome({ apikey: keyA.token, "x-connection-id": p }),
            restOutcome({ apikey: `vp_${keyA.id}_${p}`, "x-connection-id": "sec_conn_a" }),
            connectOutcome({ apikey: p, "x-connection-id": p }),
          ];
          for (const r of await Promise.all(cases))
            expect([400, 401], `${p}: ${JSON.stringify(r)}`).to.include(r.status);
          const body = await fetch(`${stack.httpUrl}/v2/vault-plus/lists/${L}/sync`, {
            method: "PUT",
            headers: { apikey: keyA.token, "x-connection-id": "sec_conn_a", "content-type": "application/json" },
            body: JSON.stringify({ listId: p, [p]: p }),
          });
          expect(body.status, p).to.equal(400);
          for (const md of [
            { apikey: keyA.token, "x-connection-id": "sec_conn_a", list: p },
            { apikey: p, "x-connection-id": "sec_conn_a", list: L },
            { apikey: keyA.token, "x-connection-id": p, list: L },
          ]) {
            const { list, ...meta } = md;
            const r = await grpcOutcome(meta, list);
            expect([GrpcStatus.INVALID_ARGUMENT, GrpcStatus.UNAUTHENTICATED], `${p}: ${r.details}`).to.include(r.code);
          }
        }
        expect(stack.simulator.requests.length).to.equal(mark);
        expect(await counts()).to.deep.equal(before);
      });

      it("binds values the validation would never let through: the SQL text never holds them", async () => {
        const statements: string[] = [];
        const listener = (q: { sql: string }) => statements.push(q.sql);
        db.knex.on("query", listener);
        try {
          for (const p of INJECTIONS) {
            expect(await db.store.findApiKey(p)).to.equal(null);
            expect(await db.store.findConnection(p)).to.equal(null);
            let refused: unknown;
            try {
              await db.store.withConnectionLock(p, async () => "ran");
            } catch (err) {
              refused = err;
            }
            expect((refused as { kind?: string } | undefined)?.kind).to.equal("invalid_argument");
            await db.store.withConnectionLock("sec_conn_a", async (unit) => {
              expect(await unit.loadBaseline(p)).to.equal(null);
              expect([...(await unit.loadOwnedElsewhere(p, [5_500_000_001]))]).to.deep.equal([5_500_000_001]);
              return null;
            });
            expect(await db.admin.revokeApiKey(p)).to.equal(false);
            expect(await db.admin.disableConnection(p)).to.equal(false);
            expect((await db.admin.snapshot(p)).cacheEntries).to.deep.equal([]);
            // Stored verbatim: a value, never SQL.
            await db.store.recordFailedRun("sec_inject", p.slice(0, 20), new Date(), p, null);
          }
          const stored = await db
            .knex("sync_runs")
            .where({ connection_id: "sec_inject" })
            .orderBy("id")
            .select("list_id", "error");
          expect(stored).to.deep.equal(INJECTIONS.map((p) => ({ list_id: p.slice(0, 20), error: p })));
        } finally {
          db.knex.removeListener("query", listener);
        }
        expect(statements.length).to.be.above(INJECTIONS.length * 5);
        // (Short ones and a quoted identifier would match SQL that knex writes itself.)
        for (const p of INJECTIONS.filter((p) => p.length > 2 && !/^`\w+`$/.test(p))) {
          expect(
            statements.filter((sql) => sql.includes(p)),
            p,
          ).to.deep.equal([]);
        }
        // Admin refuses malformed account and connection ids before any SQL ("_" is a valid id).
        for (const p of INJECTIONS.filter((p) => !isConnectionId(p))) {
          for (const attempt of [
            () => db.admin.createApiKey(p, ["ACCOUNT"]),
            () => db.admin.createConnection("sec_a", p),
          ]) {
            let err: unknown;
            try {
              await attempt();
            } catch (e) {
              err = e;
            }
            expect((err as { kind?: string } | undefined)?.kind, p).to.equal("invalid_argument");
          }
        }
      });
    });
  });

  it("builds no SQL text from values: every interpolation in src/store SQL is on an allow-list", () => {
    const dir = join(__dirname, "..", "..", "..", "src", "store");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: these are the source texts being looked for
    const allowed = new Set(['${ids.map(() => "?").join(", ")}', "${lockWaitSeconds}"]);
    const found: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(dir, file), "utf8");
      // Template literals handed to the raw SQL entry points of knex and mysql2.
      for (const m of text.matchAll(/\b(?:raw|query|whereRaw|havingRaw|orderByRaw|joinRaw)\(\s*`/g)) {
        found.push(...interpolations(text, (m.index ?? 0) + m[0].length));
      }
    }
    expect(found.filter((f) => !allowed.has(f))).to.deep.equal([]);
    expect(found.length).to.be.above(0);
  });
});

/** The ${…} parts of the template literal whose text starts at `from` (just after the backtick). */
function interpolations(text: string, from: number): string[] {
  const out: string[] = [];
  for (let i = from; i < text.length && text[i] !== "`"; i++) {
    if (text[i] !== "$" || text[i + 1] !== "{") continue;
    let depth = 0;
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] === "{") depth++;
      if (text[j] === "}" && --depth === 0) {
        out.push(text.slice(i, j + 1));
        i = j;
        break;
      }
    }
  }
  return out;
}
