import { randomBytes } from "node:crypto";
import { context, TraceFlags, trace } from "@opentelemetry/api";
import { expect } from "chai";
import { type AccessApiSimulator, type FaultRule, startAccessApiSimulator } from "../../src/simulator/access-api";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/databases";
import { restSync, type ServeProcess, spawnServe, UPSTREAM_KEY } from "../support/stack";
import {
  countersOf,
  type OtlpCollector,
  type OtlpSpan,
  otlpEnv,
  scenario,
  startOtlpCollector,
  waitFor,
} from "./support";

/**
 * The exported trace of a real `vaultplus serve` (OTLP/HTTP JSON to an in-test collector):
 * transient upstream faults show as retry events on the upstream fetch span, every upstream
 * request carries the trace on, and no secret (API key, upstream key, database password,
 * signed URL) appears anywhere in what the process exports or logs.
 */

const L = "7401";

describe("hardening: traces show retries and hold no secrets", function () {
  this.timeout(40_000);

  const kind = DATABASE_KINDS[0] ?? "mariadb";
  const dbPassword = `Pw-${randomBytes(12).toString("hex")}`;
  let db: TestDatabase;
  let simulator: AccessApiSimulator;
  let collector: OtlpCollector;
  let serve: ServeProcess;
  let apiKey: string;
  let dbUrl: string;
  let dropUser = async () => {};

  before(async function () {
    this.timeout(120_000);
    db = await createTestDatabase(kind);
    dbUrl = db.url;
    if (kind === "mariadb") {
      // A user of its own, with a password worth looking for.
      const url = new URL(db.url);
      const name = url.pathname.slice(1);
      const user = `vp_tr_${randomBytes(4).toString("hex")}`;
      for (const host of ["%", "localhost"]) {
        await db.knex.raw(`CREATE USER '${user}'@'${host}' IDENTIFIED BY '${dbPassword}'`);
        await db.knex.raw(`GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${user}'@'${host}'`);
      }
      url.username = user;
      url.password = dbPassword;
      dbUrl = url.toString();
      dropUser = async () => {
        for (const host of ["%", "localhost"]) await db.knex.raw(`DROP USER IF EXISTS '${user}'@'${host}'`);
      };
    }
    simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
    collector = await startOtlpCollector();
    serve = await spawnServe({
      VAULTPLUS_DATABASE_URL: dbUrl,
      VAULTPLUS_UPSTREAM_URL: simulator.url,
      VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      VAULTPLUS_UPSTREAM_PAGE_SIZE: "10",
      VAULTPLUS_UPSTREAM_TIMEOUT_MS: "300",
      VAULTPLUS_UPSTREAM_DEADLINE_MS: "3000",
      ...otlpEnv(collector),
    });
    apiKey = (await db.admin.createApiKey("acct_traces", ["ACCOUNT"])).token;
  });

  after(async () => {
    await serve?.stop("SIGKILL");
    await collector?.close();
    await simulator?.close();
    await dropUser();
    await db?.drop();
  });

  const cases: Array<{ name: string; fault: FaultRule; reason: string; retries: number }> = [
    { name: "5xx", fault: { kind: "status", status: 503, offset: 10, times: 2 }, reason: "HTTP 503", retries: 2 },
    {
      name: "429 with Retry-After",
      fault: { kind: "status", status: 429, retryAfter: "0", offset: 0, times: 1 },
      reason: "HTTP 429",
      retries: 1,
    },
    {
      name: "429 without Retry-After",
      fault: { kind: "status", status: 429, offset: 20, times: 1 },
      reason: "HTTP 429",
      retries: 1,
    },
    {
      name: "connection reset",
      fault: { kind: "reset", offset: 10, times: 1 },
      reason: "connection reset",
      retries: 1,
    },
    { name: "page timeout", fault: { kind: "hang", offset: 30, times: 1 }, reason: "timeout", retries: 1 },
  ];

  const traceIds = new Map<string, string>();
  const traceparent = (traceId: string) => `00-${traceId}-${randomBytes(8).toString("hex")}-01`;
  /**
   * Sends the request in trace `traceId`: as a header, and as the active span context, so that a
   * test process with its own OpenTelemetry (which injects traceparent into fetch) still sends it.
   */
  const inTrace = <T>(traceId: string, work: () => Promise<T>): Promise<T> =>
    context.with(
      trace.setSpanContext(context.active(), {
        traceId,
        spanId: randomBytes(8).toString("hex"),
        traceFlags: TraceFlags.SAMPLED,
      }),
      work,
    );
  const spansOf = (traceId: string) => collector.spans.filter((s) => s.traceId === traceId);

  it("runs transient faults, a failing page and refused calls through the serve process", async () => {
    const s = scenario(5_600_000_000);
    for (const [i, c] of cases.entries()) {
      const conn = `tr${i}`;
      await db.admin.createConnection("acct_traces", conn);
      simulator.setList(conn, L, s.v1);
      simulator.injectFault({ ...c.fault, connectionId: conn });
      const traceId = randomBytes(16).toString("hex");
      traceIds.set(c.name, traceId);
      const res = await inTrace(traceId, () =>
        restSync(serve.httpUrl, L, { apikey: apiKey, "x-connection-id": conn, traceparent: traceparent(traceId) }),
      );
      expect(countersOf(res, L)).to.deep.include({ seen: 35, addedItems: 35 });
    }
    // A failure that plants a signed URL where a number belongs, and two refused calls.
    await db.admin.createConnection("acct_traces", "tr_bad");
    simulator.setList(
      "tr_bad",
      L,
      s.v1.map((item, i) => (i === 12 ? { ...item, duration: item.files?.full?.url as unknown as number } : item)),
    );
    for (const [name, headers] of [
      ["bad page", { apikey: apiKey, "x-connection-id": "tr_bad" }],
      ["bad key", { apikey: `${apiKey.slice(0, -1)}x`, "x-connection-id": "tr0" }],
      ["foreign connection", { apikey: apiKey, "x-connection-id": "nobody" }],
    ] as const) {
      const traceId = randomBytes(16).toString("hex");
      traceIds.set(name, traceId);
      const res = await inTrace(traceId, () =>
        restSync(serve.httpUrl, L, { ...headers, traceparent: traceparent(traceId) }),
      );
      expect(res.status).to.be.oneOf([400, 401, 502]);
    }
    await waitFor("every trace to be exported", () =>
      [...traceIds.values()].every((id) => spansOf(id).some((sp) => sp.name === "SyncList")),
    );
    await waitFor("the upstream spans to be exported", () =>
      cases.every((c) => spansOf(traceIds.get(c.name)!).some((sp) => sp.name === "upstream.fetch_list")),
    );
  });

  for (const c of cases) {
    it(`shows the retries of a transient ${c.name} in the trace, and carries the trace upstream`, async () => {
      const traceId = traceIds.get(c.name)!;
      const spans = spansOf(traceId);
      const sync = one(spans, "SyncList");
      expect(sync.attributes["vaultplus.list_id"]).to.equal(L);
      expect(sync.attributes["vaultplus.seen"]).to.equal(35);
      const fetch = one(spans, "upstream.fetch_list");
      const retries = fetch.events.filter((e) => e.name === "retry");
      expect(retries.map((e) => e.attributes.reason)).to.deep.equal(Array(c.retries).fill(c.reason));
      expect(fetch.attributes["vaultplus.upstream.retries"]).to.equal(c.retries);
      expect(fetch.attributes["vaultplus.upstream.pages"]).to.equal(4);
      // Every upstream request of this sync, retries included, carried this trace.
      const upstream = simulator.requests.filter((r) => String(r.headers.traceparent ?? "").includes(traceId));
      expect(upstream.length).to.equal(4 + c.retries);
      // And the run record points at the trace.
      const conn = `tr${cases.indexOf(c)}`;
      const run = await db.knex("sync_runs").where({ connection_id: conn }).first("trace_id", "outcome");
      expect(run).to.deep.equal({ trace_id: traceId, outcome: "ok" });
    });
  }

  it("marks failed syncs in the trace with the safe message", () => {
    const bad = one(spansOf(traceIds.get("bad page")!), "SyncList");
    expect(bad.status?.code).to.equal(2); // ERROR
    expect(bad.status?.message).to.match(/list\[2\]\.duration is not a number/);
    expect(one(spansOf(traceIds.get("bad key")!), "SyncList").attributes["vaultplus.error_kind"]).to.equal(
      "unauthenticated",
    );
  });

  it("exports and logs no secret: API key, upstream key, database password, signed URL", async () => {
    // SIGTERM flushes what is still batched.
    expect(await serve.stop("SIGTERM")).to.equal(0);
    const exported = collector.bodies.join("\n");
    const logged = serve.output.join("\n");
    expect(collector.spans.length).to.be.above(20);
    // Database spans are exported too (and hold no password either).
    expect(collector.spans.some((s) => "db.system" in s.attributes || "db.system.name" in s.attributes)).to.equal(true);
    for (const secret of [
      apiKey,
      apiKey.slice(-43),
      UPSTREAM_KEY,
      "Signature=",
      "Key-Pair-Id",
      "media.simulator.invalid",
    ]) {
      expect(exported.includes(secret), `exported: ${secret}`).to.equal(false);
      expect(logged.includes(secret), `logged: ${secret}`).to.equal(false);
    }
    if (kind === "mariadb") {
      expect(exported.includes(dbPassword), "exported: the database password").to.equal(false);
      expect(logged.includes(dbPassword), "logged: the database password").to.equal(false);
    }
  });
});

function one(spans: OtlpSpan[], name: string): OtlpSpan {
  const found = spans.filter((s) => s.name === name);
  expect(
    found.map((s) => s.name),
    `spans named ${name}`,
  ).to.have.length(1);
  return found[0] as OtlpSpan;
}
