import { context, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { expect } from "chai";
import { forEachDatabase } from "../support/databases";
import { createTenant, GrpcSyncClient, restSync, type Stack, startStack } from "../support/stack";
import {
  ancestry,
  asExternalClient,
  byStart,
  CALLER,
  childrenOf,
  dbOperations,
  only,
  parentId,
  SpanKind,
  SpanStatusCode,
  spanId,
  traceIdOf,
  traceSpans,
  waitForSpan,
} from "./helpers";

/**
 * SPEC §6 traces on the real service (gRPC, REST gateway, Access API simulator, database),
 * recorded by the test process's in-memory exporter (test/support/telemetry.ts).
 */

const REST_SERVER_SPAN = "PUT /v2/vault-plus/lists/{listId}/sync";
const GRPC_SERVER_SPAN = "grpc.vaultplus.v1.VaultPlusLists/SyncList";
const ITEMS = 45; // two pages at the client's page size of 40
const FIRST_SYNC = { seen: 45, added: 45, updated: 0, removed: 0, unchanged: 0, adopted: 0 };

type Counters = typeof FIRST_SYNC;

/** What a first sync writes, whatever else the store does. */
const FIRST_SYNC_WRITES = [
  "insert cache_entries",
  "insert work_queue",
  "insert list_baseline_items",
  "insert list_syncs",
  "insert sync_runs",
];

async function waitFor(what: string, condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The simulator's own server spans (it runs in this process): the Access API's side of the trace. */
const isUpstreamServer = (s: ReadableSpan) =>
  s.kind === SpanKind.SERVER && String(s.attributes["url.path"]).startsWith("/v2/access/");

forEachDatabase((db, kind) => {
  let stack: Stack;
  let creds: Record<string, string>;
  let listNo = 0;

  before(async () => {
    stack = await startStack(db);
    const tenant = await createTenant(db, "acct_traces", "conn_traces");
    creds = { apiKey: tenant.apiKey, "x-connection-id": tenant.connectionId };
  });
  after(() => stack?.close());

  /** A fresh list of 45 items, so every test is a first sync of its own list. */
  function newList(): string {
    const listId = String(7_100 + listNo++);
    stack.simulator.setList(
      "conn_traces",
      listId,
      stack.simulator.generateItems(ITEMS, { startId: 5e9 + listNo * 1000 }),
    );
    return listId;
  }

  beforeEach(() => {
    stack.logs.length = 0;
    stack.simulator.clearRequests();
    stack.simulator.clearFaults();
  });

  function syncLogLine(traceId: string): Record<string, unknown> {
    const lines = stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const found = lines.filter((l) => l.event === "sync" && l.trace_id === traceId);
    expect(found, "one sync log line for the trace").to.have.length(1);
    return found[0] as Record<string, unknown>;
  }

  /**
   * Checks everything under the inbound server span of one successful first-page-size sync:
   * server → SyncList → upstream.fetch_list → one GET client span per page (each continued by
   * the Access API), SyncList → plan, apply → database spans; returns the SyncList span.
   */
  async function expectSyncTree(
    server: ReadableSpan,
    listId: string,
    counters: Counters,
    pages: number,
    applyOps: string[] = FIRST_SYNC_WRITES,
  ): Promise<ReadableSpan> {
    // The Access API's server spans end when their responses are flushed: wait for all of them.
    await waitFor(
      `${pages} Access API server span(s) in the trace (the upstream continues the trace it is sent)`,
      () => traceSpans(traceIdOf(server)).filter(isUpstreamServer).length === pages,
    );
    const all = traceSpans(traceIdOf(server));
    expect(childrenOf(all, server).map((s) => s.name)).to.deep.equal(["SyncList"]);
    const sync = only(all, "SyncList");
    expect(sync.kind).to.equal(SpanKind.INTERNAL);
    expect(sync.status).to.deep.equal({ code: SpanStatusCode.UNSET });
    expect(sync.attributes).to.deep.equal({
      "vaultplus.connection_id": "conn_traces",
      "vaultplus.list_id": listId,
      "vaultplus.seen": counters.seen,
      "vaultplus.added_items": counters.added,
      "vaultplus.updated_items": counters.updated,
      "vaultplus.removed_items": counters.removed,
      "vaultplus.unchanged_items": counters.unchanged,
      "vaultplus.adopted_items": counters.adopted,
    });

    // SyncList's children: the three steps, the credential and lock queries, and on MariaDB
    // the transaction's BEGIN/COMMIT from the mysql2 driver.
    const children = childrenOf(all, sync);
    const steps = children.filter((s) => s.kind === SpanKind.INTERNAL).map((s) => s.name);
    expect(steps.sort()).to.deep.equal(["apply", "plan", "upstream.fetch_list"]);
    expect(dbOperations(children)).to.deep.equal(["first api_keys", "first connections", "update connections"]);
    const driverOnly = children.filter((s) => s.kind === SpanKind.CLIENT && s.attributes["knex.version"] === undefined);
    expect(driverOnly.map((s) => s.attributes["db.query.text"])).to.deep.equal(
      kind === "mariadb" ? ["BEGIN;", "COMMIT;"] : [],
    );

    // The upstream fetch: one HTTP client span per page, each request carrying that span.
    const fetch = only(children, "upstream.fetch_list");
    expect(fetch.attributes).to.deep.equal({
      "vaultplus.list_id": listId,
      "vaultplus.upstream.pages": pages,
      "vaultplus.upstream.retries": 0,
    });
    expect(fetch.events).to.deep.equal([]);
    const clients = byStart(childrenOf(all, fetch));
    expect(
      clients.map((s) => [s.name, s.kind, s.attributes["url.query"], s.attributes["http.response.status_code"]]),
    ).to.deep.equal(
      Array.from({ length: pages }, (_, i) => ["GET", SpanKind.CLIENT, `?limit=40&offset=${i * 40}`, 200]),
    );
    expect(stack.simulator.requests.map((r) => r.headers.traceparent)).to.deep.equal(
      clients.map((c) => `00-${traceIdOf(server)}-${spanId(c)}-01`),
    );
    // …and the Access API could continue it: its server span is the client span's only child.
    for (const client of clients) {
      expect(childrenOf(all, client).filter(isUpstreamServer)).to.have.length(1);
    }

    // plan reads under the lock, apply writes, all in the one trace.
    const plan = only(children, "plan");
    const apply = only(children, "apply");
    expect(plan.status.code).to.equal(SpanStatusCode.UNSET);
    expect(apply.status.code).to.equal(SpanStatusCode.UNSET);
    // The cache entries are read by id on a first sync, and with the baseline (one joined select) on a re-sync.
    const planOps = dbOperations(childrenOf(all, plan));
    expect(planOps).to.include("first list_syncs");
    const reads = planOps.filter((op) => op === "select cache_entries" || op === "select list_baseline_items");
    expect(reads).to.have.length.above(0);
    expect(dbOperations(childrenOf(all, apply))).to.include.members(applyOps);
    const knexSpans = all.filter((s) => s.attributes["knex.version"] !== undefined);
    for (const s of knexSpans) {
      expect(s.kind).to.equal(SpanKind.CLIENT);
      // On MariaDB each knex query has the mysql2 driver's span under it; SQLite has no driver instrumentation.
      const driver = childrenOf(all, s);
      if (kind === "mariadb") {
        expect(driver.map((d) => d.attributes["db.system.name"])).to.deep.equal(["mysql"]);
        expect(String(driver[0]?.attributes["db.query.text"])).not.to.match(/'|\b\d{4,}\b/); // values masked
      } else {
        expect(driver).to.deep.equal([]);
      }
    }

    // Nothing failed, and every span of the trace hangs under the server span.
    const callerSide = new Set(ancestry(all, server));
    const service = all.filter((s) => !isUpstreamServer(s) && s !== server && !callerSide.has(spanId(s)));
    expect(service.filter((s) => s.status.code === SpanStatusCode.ERROR).map((s) => s.name)).to.deep.equal([]);
    for (const s of service) expect(ancestry(all, s)).to.include(spanId(server));
    return sync;
  }

  it("REST: continues the caller's traceparent header through the whole sync", async () => {
    const listId = newList();
    const res = await asExternalClient(() =>
      restSync(stack.httpUrl, listId, { ...creds, traceparent: CALLER.traceparent }),
    );
    expect(res.status).to.equal(200);
    const server = await waitForSpan((s) => s.name === REST_SERVER_SPAN && traceIdOf(s) === CALLER.traceId);
    expect(server.kind).to.equal(SpanKind.SERVER);
    expect(parentId(server)).to.equal(CALLER.spanId);
    expect(server.parentSpanContext?.isRemote).to.equal(true);
    expect(server.attributes).to.include({
      "http.request.method": "PUT",
      "http.route": "/v2/vault-plus/lists/{listId}/sync",
      "url.path": `/v2/vault-plus/lists/${listId}/sync`,
      "http.response.status_code": 200,
    });
    const sync = await expectSyncTree(server, listId, FIRST_SYNC, 2);
    expect(ancestry(traceSpans(CALLER.traceId), sync)).to.deep.equal([spanId(server), CALLER.spanId]);

    const line = syncLogLine(CALLER.traceId);
    expect(line).to.include({
      outcome: "ok",
      list_id: listId,
      connection_id: "conn_traces",
      seen: 45,
      added_items: 45,
    });
  });

  it("gRPC: continues the traceparent in the call's metadata", async () => {
    const listId = newList();
    const client = new GrpcSyncClient(stack.grpcTarget);
    try {
      const res = await asExternalClient(() => client.sync(listId, { ...creds, traceparent: CALLER.traceparent }));
      expect(res.addedItems).to.equal(45);
    } finally {
      client.close();
    }
    const server = await waitForSpan((s) => s.name === GRPC_SERVER_SPAN && traceIdOf(s) === CALLER.traceId);
    expect(server.kind).to.equal(SpanKind.SERVER);
    expect(parentId(server)).to.equal(CALLER.spanId);
    expect(server.attributes).to.include({
      "rpc.system": "grpc",
      "rpc.service": "vaultplus.v1.VaultPlusLists",
      "rpc.method": "SyncList",
      "rpc.grpc.status_code": 0,
    });
    await expectSyncTree(server, listId, FIRST_SYNC, 2);
    expect(syncLogLine(CALLER.traceId)).to.include({ outcome: "ok", list_id: listId, added_items: 45 });
  });

  it("gRPC: an instrumented caller's span is the root, through the client span", async () => {
    const listId = newList();
    const caller = trace.getTracer("test").startSpan("caller");
    const client = new GrpcSyncClient(stack.grpcTarget);
    try {
      await context.with(trace.setSpan(context.active(), caller), () => client.sync(listId, creds));
    } finally {
      caller.end();
      client.close();
    }
    const traceId = caller.spanContext().traceId;
    const server = await waitForSpan((s) => s.name === GRPC_SERVER_SPAN && traceIdOf(s) === traceId);
    const sync = await expectSyncTree(server, listId, FIRST_SYNC, 2);
    const all = traceSpans(traceId);
    const grpcClient = all.find((s) => s.kind === SpanKind.CLIENT && s.name === GRPC_SERVER_SPAN);
    expect(grpcClient, "the caller's grpc-js client span").not.to.equal(undefined);
    expect(ancestry(all, sync)).to.deep.equal([
      spanId(server),
      spanId(grpcClient as ReadableSpan),
      caller.spanContext().spanId,
    ]);
  });

  it("a second sync of the same list carries the new counters", async () => {
    const listId = newList();
    await restSync(stack.httpUrl, listId, creds);
    const items = stack.simulator.getList("conn_traces", listId) ?? [];
    stack.simulator.setList("conn_traces", listId, items.slice(5)); // 5 leave the list
    stack.simulator.clearRequests();
    const res = await asExternalClient(() =>
      restSync(stack.httpUrl, listId, { ...creds, traceparent: CALLER.traceparent }),
    );
    expect(res.body).to.include({ seen: 40, removedItems: 5, unchangedItems: 40 });
    const server = await waitForSpan((s) => s.name === REST_SERVER_SPAN && traceIdOf(s) === CALLER.traceId);
    // 40 items: one full page that says hasMore false.
    await expectSyncTree(server, listId, { seen: 40, added: 0, updated: 0, removed: 5, unchanged: 40, adopted: 0 }, 1, [
      "insert list_syncs",
      "insert sync_runs",
    ]);
  });

  it("retries show: a client span per attempt and a retry event on upstream.fetch_list", async () => {
    const listId = newList();
    stack.simulator.injectFault({ kind: "status", status: 503, listId, offset: 40 });
    const res = await asExternalClient(() =>
      restSync(stack.httpUrl, listId, { ...creds, traceparent: CALLER.traceparent }),
    );
    expect(res.status).to.equal(200);
    await waitForSpan((s) => s.name === REST_SERVER_SPAN && traceIdOf(s) === CALLER.traceId);
    const all = traceSpans(CALLER.traceId);
    const fetch = only(all, "upstream.fetch_list");
    expect(fetch.attributes).to.include({ "vaultplus.upstream.pages": 2, "vaultplus.upstream.retries": 1 });
    expect(fetch.events.map((e) => e.name)).to.deep.equal(["retry"]);
    const retry = fetch.events[0]?.attributes ?? {};
    expect(retry).to.include({ attempt: 1, reason: "HTTP 503" });
    expect(retry.delay_ms).to.be.a("number").within(0, 199);

    const clients = byStart(childrenOf(all, fetch));
    expect(
      clients.map((s) => [s.attributes["url.query"], s.attributes["http.response.status_code"], s.status.code]),
    ).to.deep.equal([
      ["?limit=40&offset=0", 200, SpanStatusCode.UNSET],
      ["?limit=40&offset=40", 503, SpanStatusCode.ERROR],
      ["?limit=40&offset=40", 200, SpanStatusCode.UNSET],
    ]);
    // Each attempt carries its own client span.
    expect(stack.simulator.requests.map((r) => r.headers.traceparent)).to.deep.equal(
      clients.map((c) => `00-${CALLER.traceId}-${spanId(c)}-01`),
    );
    expect(only(all, "SyncList").status.code).to.equal(SpanStatusCode.UNSET);
  });

  it("a failed sync: error status, error kind and the safe message on SyncList (REST 502, gRPC UNAVAILABLE)", async () => {
    const listId = "7999"; // not on the simulator: the Access API answers 404
    const res = await asExternalClient(() =>
      restSync(stack.httpUrl, listId, { ...creds, traceparent: CALLER.traceparent }),
    );
    expect(res.status).to.equal(502);
    const message = String(res.body.error);
    expect(message).to.match(/^Failed to fetch vault list media: the Access API answered HTTP 404/);

    const server = await waitForSpan((s) => s.name === REST_SERVER_SPAN && traceIdOf(s) === CALLER.traceId);
    expect(server.attributes["http.response.status_code"]).to.equal(502);
    expect(server.status.code).to.equal(SpanStatusCode.ERROR);
    const all = traceSpans(CALLER.traceId);
    const sync = only(all, "SyncList");
    expect(parentId(sync)).to.equal(spanId(server));
    expect(sync.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
    expect(sync.attributes).to.deep.equal({
      "vaultplus.connection_id": "conn_traces",
      "vaultplus.list_id": listId,
      "vaultplus.error_kind": "upstream_failed",
    });
    expect(
      sync.events.map((e) => [e.name, e.attributes?.["exception.type"], e.attributes?.["exception.message"]]),
    ).to.deep.equal([["exception", "SyncError", message]]);
    const fetch = only(all, "upstream.fetch_list");
    expect(fetch.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
    expect(fetch.attributes).to.include({ "vaultplus.upstream.pages": 0, "vaultplus.upstream.retries": 0 });
    const clients = childrenOf(all, fetch);
    expect(clients.map((s) => [s.attributes["http.response.status_code"], s.status.code])).to.deep.equal([
      [404, SpanStatusCode.ERROR],
    ]);
    // Nothing was planned or applied.
    expect(
      childrenOf(all, sync)
        .filter((s) => s.kind === SpanKind.INTERNAL)
        .map((s) => s.name),
    ).to.deep.equal(["upstream.fetch_list"]);
    expect(syncLogLine(CALLER.traceId)).to.include({
      outcome: "upstream_failed",
      list_id: listId,
      connection_id: "conn_traces",
      error: message,
    });

    // The same failure over gRPC: UNAVAILABLE on the server span, the same SyncList status.
    const other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const client = new GrpcSyncClient(stack.grpcTarget);
    try {
      const err = await asExternalClient(() => client.sync(listId, { ...creds, traceparent: other })).then(
        () => null,
        (e: { code: number; details: string }) => e,
      );
      expect(err).to.include({ code: 14, details: message });
    } finally {
      client.close();
    }
    const grpcServer = await waitForSpan((s) => s.name === GRPC_SERVER_SPAN && traceIdOf(s) === other.slice(3, 35));
    expect(grpcServer.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
    expect(grpcServer.attributes["rpc.grpc.status_code"]).to.equal(14);
    const grpcSync = only(traceSpans(other.slice(3, 35)), "SyncList");
    expect(grpcSync.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
    expect(grpcSync.attributes["vaultplus.error_kind"]).to.equal("upstream_failed");
  });
});
