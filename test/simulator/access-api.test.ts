import { context } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import { expect } from "chai";
import {
  type AccessApiSimulator,
  demoLists,
  generateItems,
  startAccessApiSimulator,
} from "../../src/simulator/access-api";
import { parsePage } from "../../src/upstream/schema";

const KEY = "sim-key";

describe("Access API simulator", () => {
  let sim: AccessApiSimulator;
  before(async () => {
    sim = await startAccessApiSimulator({ apiKey: KEY, demo: true });
    sim.setList("c1", "5", generateItems(45, { startId: 100 }));
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.clearFaults();
    sim.clearRequests();
  });

  async function get(path: string, headers: Record<string, string> = { apiKey: KEY, "x-connection-id": "c1" }) {
    const res = await fetch(`${sim.url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  it("serves pages of the documented shape", async () => {
    const first = await get("/v2/access/vault/lists/5/media?limit=40&offset=0");
    expect(first.status).to.equal(200);
    const parsed = parsePage(first.body);
    expect(parsed.ok).to.equal(true);
    if (!parsed.ok) return;
    expect(parsed.page.list).to.have.length(40);
    expect(parsed.page.hasMore).to.equal(true);
    const last = await get("/v2/access/vault/lists/5/media?limit=40&offset=40");
    expect((last.body.list as unknown[]).length).to.equal(5);
    expect(last.body.hasMore).to.equal(false);
  });

  it("checks the API key, the connection header, the limit and the list id", async () => {
    expect((await get("/v2/access/vault/lists/5/media?limit=10", { "x-connection-id": "c1" })).status).to.equal(401);
    expect(
      (await get("/v2/access/vault/lists/5/media?limit=10", { apiKey: "wrong", "x-connection-id": "c1" })).status,
    ).to.equal(401);
    expect((await get("/v2/access/vault/lists/5/media?limit=10", { apiKey: KEY })).status).to.equal(400);
    expect((await get("/v2/access/vault/lists/5/media?limit=41")).status).to.equal(400);
    expect((await get("/v2/access/vault/lists/5/media?limit=10&offset=-1")).status).to.equal(400);
    const notDigits = await get("/v2/access/vault/lists/abc/media?limit=10");
    expect(notDigits.status).to.equal(404);
    expect(notDigits.body).to.have.property("error");
    expect((await get("/v2/access/vault/lists/6/media?limit=10")).status).to.equal(404);
    expect(sim.requests).to.have.length(7);
  });

  it("serves demo lists to any connection, and logs requests with their headers", async () => {
    // Tracing suppressed: this process's fetch instrumentation would send its own span's traceparent.
    const res = await context.with(suppressTracing(context.active()), () =>
      get("/v2/access/vault/lists/28489180/media?limit=40&offset=40", {
        apiKey: KEY,
        "x-connection-id": "anyone",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      }),
    );
    expect(res.status).to.equal(200);
    expect(res.body.list).to.have.length(2);
    expect(sim.requests[0]).to.include({ path: "/v2/access/vault/lists/28489180/media", listId: "28489180" });
    expect(sim.requests[0]?.query).to.deep.equal({ limit: "40", offset: "40" });
    expect(sim.requests[0]?.headers.traceparent).to.equal("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  });

  it("applies a fault the given number of times and counts its hits", async () => {
    const handle = sim.injectFault({ listId: "5", offset: 0, kind: "status", status: 503, retryAfter: "2", times: 2 });
    const a = await get("/v2/access/vault/lists/5/media?limit=10&offset=0");
    expect(a.status).to.equal(503);
    expect(a.headers.get("retry-after")).to.equal("2");
    expect((await get("/v2/access/vault/lists/5/media?limit=10&offset=10")).status).to.equal(200);
    expect((await get("/v2/access/vault/lists/5/media?limit=10&offset=0")).status).to.equal(503);
    expect((await get("/v2/access/vault/lists/5/media?limit=10&offset=0")).status).to.equal(200);
    expect(handle.hits).to.equal(2);
    expect(sim.requests.map((r) => r.fault)).to.deep.equal(["status", undefined, "status", undefined]);
  });

  it("generates deterministic items with signed-looking URLs and counters", () => {
    const a = generateItems(20, { startId: 42 });
    expect(generateItems(20, { startId: 42 })).to.deep.equal(a);
    expect(a.map((m) => m.id)).to.deep.equal(Array.from({ length: 20 }, (_, i) => 42 + i));
    expect(generateItems(20, { startId: 42, seed: 9 })).not.to.deep.equal(a);
    for (const item of a) {
      expect(item.files?.full?.url).to.match(/^https:\/\/[^?]+\?.*Signature=[\w-]+/);
      expect(item.counters).to.be.an("object");
    }
    expect(parsePage({ list: a, hasMore: false }).ok).to.equal(true);
  });

  it("demo lists: 42 items, 3 shared with it, and 120", () => {
    const lists = demoLists();
    expect(Object.keys(lists).sort()).to.deep.equal(["1001", "1002", "28489180"]);
    expect(lists["28489180"]).to.have.length(42);
    expect(lists["1001"]).to.deep.equal(lists["28489180"]!.slice(0, 3));
    expect(lists["1002"]).to.have.length(120);
    expect(demoLists()).to.deep.equal(lists);
  });
});
