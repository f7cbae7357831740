import { inspect } from "node:util";
import { context, SpanKind } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import { expect } from "chai";
import { SyncError } from "../../src/domain/errors";
import {
  type AccessApiMedia,
  type AccessApiSimulator,
  type FaultRule,
  generateItems,
  startAccessApiSimulator,
} from "../../src/simulator/access-api";
import { HttpAccessApi, type HttpAccessApiOptions } from "../../src/upstream/http-client";
import { spans as exportedSpans } from "../support/telemetry";
import { PARENT, recordingTracer, useTestOtel, withParentSpan } from "./otel";

// Recognizable secrets: neither may ever show up in an error.
const API_KEY = "sk_live_PLANTED_API_KEY_7f3a9c";
const CONNECTION = "conn_1";
const LIST = "28489180";

function withPlantedUrls(items: AccessApiMedia[]): AccessApiMedia[] {
  return items.map((item) => ({
    ...item,
    files: { full: { url: `https://cdn.example/${item.id}.jpg?Signature=PLANTED_URL_TOKEN`, width: 10, height: 10 } },
  }));
}

async function failure(promise: Promise<unknown>): Promise<SyncError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(SyncError);
    return err as SyncError;
  }
  throw new Error("expected the fetch to fail");
}

function expectNoSecrets(err: SyncError): void {
  const everything = `${err.message}\n${inspect(err, { depth: 10 })}`;
  expect(everything).not.to.include(API_KEY);
  expect(everything).not.to.include("PLANTED");
  expect(err.message).not.to.match(/https?:\/\//);
}

describe("HttpAccessApi against the Access API simulator", function () {
  this.timeout(10000);
  useTestOtel();
  let sim: AccessApiSimulator;

  before(async () => {
    sim = await startAccessApiSimulator({ apiKey: API_KEY });
  });
  after(() => sim.close());
  beforeEach(() => {
    sim.clearFaults();
    sim.clearRequests();
  });

  function client(over: Partial<HttpAccessApiOptions> = {}): HttpAccessApi {
    return new HttpAccessApi({
      baseUrl: sim.url,
      apiKey: API_KEY,
      timeoutMs: 500,
      deadlineMs: 3000,
      baseBackoffMs: 1,
      maxBackoffMs: 5,
      ...over,
    });
  }

  function offsets(listId = LIST): Array<string | undefined> {
    return sim.requests.filter((r) => r.listId === listId).map((r) => r.query.offset);
  }

  function fault(rule: FaultRule): void {
    sim.injectFault({ listId: LIST, ...rule });
  }

  describe("pagination", () => {
    it("follows offset by items received: 95 items at page size 40 is 3 requests", async () => {
      const items = generateItems(95, { startId: 1000 });
      sim.setList(CONNECTION, LIST, items);
      const progress: number[] = [];
      const got = await client().fetchList(CONNECTION, LIST, { onProgress: (n) => progress.push(n) });
      expect(got.map((m) => m.id)).to.deep.equal(items.map((m) => m.id));
      expect(offsets()).to.deep.equal(["0", "40", "80"]);
      expect(sim.requests.map((r) => r.query.limit)).to.deep.equal(["40", "40", "40"]);
      expect(progress).to.deep.equal([40, 80, 95]);
    });

    it("honours a smaller page size", async () => {
      sim.setList(CONNECTION, LIST, generateItems(25));
      const got = await client({ pageSize: 10 }).fetchList(CONNECTION, LIST);
      expect(got).to.have.length(25);
      expect(offsets()).to.deep.equal(["0", "10", "20"]);
      expect(sim.requests.map((r) => r.query.limit)).to.deep.equal(["10", "10", "10"]);
    });

    it("asks once for an exactly full page and once for an empty list", async () => {
      sim.setList(CONNECTION, LIST, generateItems(40));
      expect(await client().fetchList(CONNECTION, LIST)).to.have.length(40);
      sim.setList(CONNECTION, "1", []);
      expect(await client().fetchList(CONNECTION, "1")).to.deep.equal([]);
      expect(sim.requests).to.have.length(2);
    });

    it("refuses a page size above 40", () => {
      expect(() => client({ pageSize: 41 })).to.throw(RangeError);
    });

    it("returns validated items without counters or unknown fields", async () => {
      sim.setList(CONNECTION, LIST, generateItems(1, { startId: 5 }));
      const [item] = await client().fetchList(CONNECTION, LIST);
      expect(item).to.have.property("id", 5);
      expect(item).not.to.have.property("counters");
      expect(item).not.to.have.property("mediaCount");
      expect(item?.files?.full?.url).to.match(/^https:\/\/.*Signature=/);
    });

    it("passes duplicates through (de-duplication is the planner's job)", async () => {
      const [a, b] = generateItems(2);
      sim.setList(CONNECTION, LIST, [a!, b!, a!]);
      const got = await client().fetchList(CONNECTION, LIST);
      expect(got.map((m) => m.id)).to.deep.equal([a!.id, b!.id, a!.id]);
    });
  });

  describe("headers and tracing", () => {
    it("sends apiKey, x-connection-id, accept and the active span's traceparent", async () => {
      sim.setList(CONNECTION, LIST, generateItems(41));
      await withParentSpan(() => client().fetchList(CONNECTION, LIST));
      expect(sim.requests).to.have.length(2);
      for (const request of sim.requests) {
        expect(request.headers.apikey).to.equal(API_KEY);
        expect(request.headers["x-connection-id"]).to.equal(CONNECTION);
        expect(request.headers.accept).to.equal("application/json");
        const traceparent = request.headers.traceparent;
        expect(traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
        expect(String(traceparent).split("-")[1]).to.equal(PARENT.traceId);
      }
    });

    it("sends no traceparent when there is no trace", async () => {
      sim.setList(CONNECTION, LIST, generateItems(1));
      // Suppressed tracing: the test process's fetch instrumentation (test/support/telemetry.ts)
      // would otherwise start a root client span of its own and send that.
      await context.with(suppressTracing(context.active()), () => client().fetchList(CONNECTION, LIST));
      expect(sim.requests).to.have.length(1);
      expect(sim.requests[0]?.headers).not.to.have.property("traceparent");
    });

    it("wraps the fetch in upstream.fetch_list with pages, retries and retry events", async () => {
      sim.setList(CONNECTION, LIST, generateItems(50));
      fault({ offset: 40, kind: "status", status: 503 });
      exportedSpans.reset();
      const { tracer, spans } = recordingTracer();
      const pages: number[] = [];
      const retries: string[] = [];
      const observer = { page: () => pages.push(1), retry: (reason: string) => retries.push(reason) };
      await withParentSpan(() => client({ tracer, observer, random: () => 0.5 }).fetchList(CONNECTION, LIST));
      expect(spans).to.have.length(1);
      const span = spans[0]!;
      expect(span.name).to.equal("upstream.fetch_list");
      expect(span.ended).to.equal(true);
      expect(span.attributes).to.deep.equal({
        "vaultplus.list_id": LIST,
        "vaultplus.upstream.pages": 2,
        "vaultplus.upstream.retries": 1,
      });
      expect(span.events).to.deep.equal([
        { name: "retry", attributes: { attempt: 1, reason: "HTTP 503", delay_ms: 0 } },
      ]);
      expect(pages).to.have.length(2);
      expect(retries).to.deep.equal(["HTTP 503"]);
      // The request carries the caller's trace: one traceparent, that of the fetch instrumentation's
      // client span (test/support/telemetry.ts, as in production), a child of upstream.fetch_list.
      const clients = exportedSpans
        .getFinishedSpans()
        .filter((s) => s.kind === SpanKind.CLIENT && s.parentSpanContext?.spanId === "0000000000000001");
      expect(clients).to.have.length(3); // offset 0, offset 40 (503), offset 40 again
      expect(sim.requests.map((r) => r.headers.traceparent)).to.deep.equal(
        clients.map((c) => `00-${PARENT.traceId}-${c.spanContext().spanId}-01`),
      );
    });

    it("marks the span as failed with the same safe message", async () => {
      sim.setList(CONNECTION, LIST, generateItems(1));
      fault({ kind: "status", status: 404 });
      const { tracer, spans } = recordingTracer();
      const err = await failure(client({ tracer }).fetchList(CONNECTION, LIST));
      expect(spans[0]?.status).to.deep.equal({ code: 2, message: err.message });
      expect(spans[0]?.ended).to.equal(true);
    });
  });

  describe("faults", () => {
    it("recovers from a transient 503 on a middle page", async () => {
      sim.setList(CONNECTION, LIST, generateItems(95));
      fault({ offset: 40, kind: "status", status: 503, times: 2 });
      const got = await client().fetchList(CONNECTION, LIST);
      expect(got).to.have.length(95);
      expect(offsets()).to.deep.equal(["0", "40", "40", "40", "80"]);
    });

    it("fails with upstream_failed after maxAttempts on a persistent 5xx", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "status", status: 503, times: "always" });
      const err = await failure(client({ maxAttempts: 4 }).fetchList(CONNECTION, LIST));
      expect(err.kind).to.equal("upstream_failed");
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API answered HTTP 503 after 4 attempts; retry later",
      );
      expect(sim.requests).to.have.length(4);
    });

    it("waits Retry-After seconds on 429", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "status", status: 429, retryAfter: "1" });
      const delays: number[] = [];
      const started = Date.now();
      const got = await client({
        sleep: (ms) => {
          delays.push(ms);
          return new Promise((resolve) => setTimeout(resolve, ms));
        },
      }).fetchList(CONNECTION, LIST);
      expect(got).to.have.length(10);
      expect(delays).to.deep.equal([1000]);
      expect(sim.requests).to.have.length(2);
      expect(Date.now() - started).to.be.at.least(950);
    });

    it("reads Retry-After as an HTTP date", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      const now = Date.parse("2026-01-01T00:00:00Z");
      fault({ kind: "status", status: 429, retryAfter: "Thu, 01 Jan 2026 00:00:03 GMT" });
      const delays: number[] = [];
      await client({
        now: () => now,
        deadlineMs: 10000,
        sleep: async (ms) => {
          delays.push(ms);
        },
      }).fetchList(CONNECTION, LIST);
      expect(delays).to.deep.equal([3000]);
    });

    it("uses the jittered backoff on 429 without (or with an invalid) Retry-After", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "status", status: 429, times: 2 });
      fault({ kind: "status", status: 429, retryAfter: "soon" });
      const delays: number[] = [];
      await client({
        baseBackoffMs: 100,
        maxBackoffMs: 300,
        random: () => 0.5,
        sleep: async (ms) => {
          delays.push(ms);
        },
      }).fetchList(CONNECTION, LIST);
      // 0.5 × min(300, 100·2^(n-1)): 50, 100, then capped at 150
      expect(delays).to.deep.equal([50, 100, 150]);
      expect(sim.requests).to.have.length(4);
    });

    it("fails at once when a Retry-After would pass the deadline", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "status", status: 429, retryAfter: "120" });
      const err = await failure(client({ deadlineMs: 2000 }).fetchList(CONNECTION, LIST));
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API answered HTTP 429, and waiting 120000 ms to retry would pass the 2000 ms deadline; retry later",
      );
      expect(sim.requests).to.have.length(1);
    });

    it("fails at once on 404 with a hint", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "status", status: 404, times: "always" });
      const err = await failure(client().fetchList(CONNECTION, LIST));
      expect(err.kind).to.equal("upstream_failed");
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API answered HTTP 404 (check the list id and the connection)",
      );
      expect(sim.requests).to.have.length(1);
    });

    it("fails at once when the upstream refuses the API key", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      const err = await failure(client({ apiKey: `${API_KEY}-wrong` }).fetchList(CONNECTION, LIST));
      expect(err.message).to.match(
        /^Failed to fetch vault list media: the Access API answered HTTP 401: .*VAULTPLUS_UPSTREAM_API_KEY$/,
      );
      expect(sim.requests).to.have.length(1);
      expectNoSecrets(err);
    });

    it("does not follow a redirect (it would carry the apiKey header along)", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({
        kind: "status",
        status: 302,
        headers: { location: `${sim.url}/v2/access/vault/lists/1/media?limit=40` },
      });
      const err = await failure(client().fetchList(CONNECTION, LIST));
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API answered HTTP 302 (a redirect, which is not followed); the operator must check VAULTPLUS_UPSTREAM_URL",
      );
      expect(sim.requests).to.have.length(1);
    });

    it("retries a connection reset", async () => {
      sim.setList(CONNECTION, LIST, generateItems(50));
      fault({ offset: 40, kind: "reset" });
      const reasons: string[] = [];
      const got = await client({ observer: { page() {}, retry: (r) => reasons.push(r) } }).fetchList(CONNECTION, LIST);
      expect(got).to.have.length(50);
      expect(offsets()).to.deep.equal(["0", "40", "40"]);
      expect(reasons).to.deep.equal(["connection reset"]);
    });

    it("retries a request that hangs past timeoutMs, then gives up after maxAttempts", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "hang", times: "always" });
      const reasons: string[] = [];
      const err = await failure(
        client({ timeoutMs: 100, maxAttempts: 3, observer: { page() {}, retry: (r) => reasons.push(r) } }).fetchList(
          CONNECTION,
          LIST,
        ),
      );
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API did not answer within 100 ms after 3 attempts; retry later",
      );
      expect(reasons).to.deep.equal(["timeout", "timeout"]);
      expect(sim.requests).to.have.length(3);
    });

    it("recovers when only the first attempt hangs", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "hang" });
      expect(await client({ timeoutMs: 100 }).fetchList(CONNECTION, LIST)).to.have.length(10);
      expect(sim.requests).to.have.length(2);
    });

    it("aborts an in-flight request at the overall deadline", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "hang", times: "always" });
      const started = Date.now();
      const err = await failure(client({ timeoutMs: 5000, deadlineMs: 300 }).fetchList(CONNECTION, LIST));
      expect(err.message).to.equal(
        "Failed to fetch vault list media: no answer within the 300 ms deadline; retry later",
      );
      expect(sim.requests).to.have.length(1);
      expect(Date.now() - started).to.be.below(3000);
    });

    it("stops when the caller aborts", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "hang", times: "always" });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const err = await failure(client({ timeoutMs: 5000 }).fetchList(CONNECTION, LIST, { signal: controller.signal }));
      expect(err.kind).to.equal("upstream_failed");
      expect(err.message).to.equal("Failed to fetch vault list media: the fetch was cancelled before it completed");
      expect(sim.requests).to.have.length(1);
    });

    it("reports an unreachable upstream", async () => {
      const closed = await startAccessApiSimulator({ apiKey: API_KEY });
      const url = closed.url;
      await closed.close();
      const err = await failure(
        new HttpAccessApi({ baseUrl: url, apiKey: API_KEY, maxAttempts: 2, baseBackoffMs: 1 }).fetchList(
          CONNECTION,
          LIST,
        ),
      );
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API could not be reached (connection refused) after 2 attempts; retry later",
      );
    });
  });

  describe("page shape (never retried)", () => {
    const cases: Array<[FaultRule["kind"], string]> = [
      ["badJson", "the Access API sent a page at offset 0 that is not valid JSON; retry later"],
      [
        "wrongShape",
        "the Access API sent a page at offset 0 that is not the documented shape (list is missing); retry later",
      ],
      [
        "nonNumericIds",
        "the Access API sent a page at offset 0 that is not the documented shape (list[0].id is not a number); retry later",
      ],
    ];
    for (const [kind, detail] of cases) {
      it(`fails on ${kind} after one request`, async () => {
        sim.setList(CONNECTION, LIST, withPlantedUrls(generateItems(10)));
        fault({ kind, times: "always" } as FaultRule);
        const err = await failure(client().fetchList(CONNECTION, LIST));
        expect(err.kind).to.equal("upstream_failed");
        expect(err.message).to.equal(`Failed to fetch vault list media: ${detail}`);
        expect(sim.requests).to.have.length(1);
        expectNoSecrets(err);
      });
    }

    it("names the field without quoting a planted URL in a bad value", async () => {
      const items = withPlantedUrls(generateItems(45));
      items[42] = { ...items[42]!, type: "https://cdn.example/x.jpg?Signature=PLANTED_URL_TOKEN" as never };
      sim.setList(CONNECTION, LIST, items);
      const err = await failure(client().fetchList(CONNECTION, LIST));
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API sent a page at offset 40 that is not the documented shape (list[2].type is not one of photo, video, gif, audio); retry later",
      );
      expect(offsets()).to.deep.equal(["0", "40"]);
      expectNoSecrets(err);
    });
  });

  describe("fetch window and endless lists", () => {
    it("fails with window_exceeded when the list holds maxListItems + 1", async () => {
      sim.setList(CONNECTION, LIST, generateItems(51));
      const err = await failure(client({ maxListItems: 50 }).fetchList(CONNECTION, LIST));
      expect(err.kind).to.equal("window_exceeded");
      expect(err.message).to.equal("list exceeded the maximum fetch window of 50 items");
      expect(offsets()).to.deep.equal(["0", "40"]);
    });

    it("accepts a list of exactly maxListItems", async () => {
      sim.setList(CONNECTION, LIST, generateItems(50));
      expect(await client({ maxListItems: 50 }).fetchList(CONNECTION, LIST)).to.have.length(50);
    });

    it("stops an endless list at the window", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "endlessHasMore", fill: true, times: "always" });
      const err = await failure(client({ maxListItems: 100 }).fetchList(CONNECTION, LIST));
      expect(err.kind).to.equal("window_exceeded");
      expect(offsets()).to.deep.equal(["0", "40", "80"]);
    });

    it("fails on an empty page that claims more items follow", async () => {
      sim.setList(CONNECTION, LIST, generateItems(10));
      fault({ kind: "endlessHasMore", times: "always" });
      const err = await failure(client().fetchList(CONNECTION, LIST));
      expect(err.kind).to.equal("upstream_failed");
      expect(err.message).to.equal(
        "Failed to fetch vault list media: the Access API sent an empty page at offset 10 that claims more items follow (hasMore true); retry later",
      );
      expect(offsets()).to.deep.equal(["0", "10"]);
    });
  });

  it("keeps the API key and media URLs out of every failure", async () => {
    sim.setList(CONNECTION, LIST, withPlantedUrls(generateItems(10)));
    const rules: FaultRule[] = [
      { kind: "status", status: 500, times: "always" },
      { kind: "status", status: 400 },
      { kind: "reset", times: "always" },
      { kind: "badJson" },
      { kind: "nonNumericIds" },
    ];
    for (const rule of rules) {
      sim.clearFaults();
      fault(rule);
      expectNoSecrets(await failure(client({ maxAttempts: 2 }).fetchList(CONNECTION, LIST)));
    }
  });
});
