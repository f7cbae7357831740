import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Server as GrpcServer, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { expect } from "chai";
import { type AccessApiSimulator, startAccessApiSimulator } from "../../src/simulator/access-api";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/databases";
import { createTenant, restSync, spawnServe, UPSTREAM_KEY } from "../support/stack";
import { asExternalClient, CALLER } from "./helpers";

/**
 * OTLP export from a real `vaultplus serve` process (bin/vaultplus.js sets telemetry up from
 * the OTEL_* variables) to a local receiver, over each OTEL_EXPORTER_OTLP_PROTOCOL.
 */

const BIN = join(__dirname, "..", "..", "..", "bin", "vaultplus.js");

interface Received {
  path: string;
  contentType: string;
  body: Buffer;
}

interface Receiver {
  endpoint: string;
  received: Received[];
  close(): Promise<void>;
}

/** OTLP/HTTP receiver: POST /v1/traces and /v1/metrics, answered with an empty success. */
async function startHttpReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
      const contentType = String(req.headers["content-type"] ?? "");
      received.push({ path: `${req.method} ${req.url}`, contentType, body });
      if (contentType.startsWith("application/json")) {
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** OTLP/gRPC receiver: the two Export methods, bodies kept as protobuf bytes. */
async function startGrpcReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const server = new GrpcServer();
  for (const path of [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
  ]) {
    const bytes = (b: Buffer) => b;
    server.addService(
      {
        Export: {
          path,
          requestStream: false,
          responseStream: false,
          requestSerialize: bytes,
          requestDeserialize: bytes,
          responseSerialize: bytes,
          responseDeserialize: bytes,
        },
      },
      {
        Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
          received.push({ path, contentType: "application/grpc", body: call.request });
          callback(null, Buffer.alloc(0)); // an empty Export*ServiceResponse
        },
      },
    );
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// OTLP/JSON shapes, only as far as the assertions read them.
interface JsonAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: JsonAttribute[];
  status?: { code?: number };
}
interface JsonTraces {
  resourceSpans: Array<{ resource: { attributes: JsonAttribute[] }; scopeSpans: Array<{ spans: JsonSpan[] }> }>;
}

const attr = (attributes: JsonAttribute[], key: string) => {
  const v = attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.boolValue);
};

describe("OTLP export from `vaultplus serve`", function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let simulator: AccessApiSimulator;
  let creds: Record<string, string>;
  const LIST = "8100";

  before(async function () {
    this.timeout(120_000);
    db = await createTestDatabase(DATABASE_KINDS[0] ?? "sqlite");
    simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
    simulator.setList("*", LIST, simulator.generateItems(45));
    const tenant = await createTenant(db, "acct_otlp", "conn_otlp");
    creds = { apiKey: tenant.apiKey, "x-connection-id": tenant.connectionId };
  });
  after(async () => {
    await simulator?.close();
    await db?.drop();
  });

  /** Starts serve with OTLP to a fresh receiver, does one REST sync under CALLER's traceparent. */
  async function syncThroughServe(protocol: string, receiver: Receiver, serviceName: string) {
    const serve = await spawnServe({
      VAULTPLUS_DATABASE_URL: db.url,
      VAULTPLUS_UPSTREAM_URL: simulator.url,
      VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: serviceName,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_METRIC_EXPORT_INTERVAL: "300",
    });
    let exitCode: number | null;
    try {
      const res = await asExternalClient(() =>
        restSync(serve.httpUrl, LIST, { ...creds, traceparent: CALLER.traceparent }),
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      // Both signals arrive on their own: the span batch after OTEL_BSP_SCHEDULE_DELAY, the
      // metrics every OTEL_METRIC_EXPORT_INTERVAL.
      await waitUntil(`${protocol} traces with SyncList`, () =>
        receiver.received.some((r) => /traces/i.test(r.path) && r.body.includes("SyncList")),
      );
      await waitUntil(`${protocol} metrics with vaultplus.sync.duration`, () =>
        receiver.received.some((r) => /metrics/i.test(r.path) && r.body.includes("vaultplus.sync.duration")),
      );
    } finally {
      exitCode = await serve.stop(); // SIGTERM: drains, flushes telemetry, exits 0
    }
    expect(exitCode, serve.output.join("")).to.equal(0);
  }

  it("http/json: POST /v1/traces carries the whole sync trace, continued from the caller", async () => {
    const receiver = await startHttpReceiver();
    try {
      await syncThroughServe("http/json", receiver, "vaultplus-otlp-json");
      const traces = receiver.received.filter((r) => r.path === "POST /v1/traces");
      expect(traces.map((r) => r.contentType)).to.satisfy((types: string[]) =>
        types.every((t) => t.startsWith("application/json")),
      );
      const resourceSpans = traces.flatMap((r) => (JSON.parse(r.body.toString("utf8")) as JsonTraces).resourceSpans);
      for (const rs of resourceSpans)
        expect(attr(rs.resource.attributes, "service.name")).to.equal("vaultplus-otlp-json");
      const spans = resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
      const inTrace = spans.filter((s) => s.traceId === CALLER.traceId);
      const byName = (name: string) => inTrace.filter((s) => s.name === name);

      const server = byName("PUT /v2/vault-plus/lists/{listId}/sync");
      expect(server).to.have.length(1);
      expect(server[0]?.parentSpanId).to.equal(CALLER.spanId);
      const sync = byName("SyncList");
      expect(sync).to.have.length(1);
      expect(sync[0]?.parentSpanId).to.equal(server[0]?.spanId);
      const attributes = sync[0]?.attributes ?? [];
      expect(attr(attributes, "vaultplus.list_id")).to.equal(LIST);
      expect(attr(attributes, "vaultplus.connection_id")).to.equal("conn_otlp");
      expect(attr(attributes, "vaultplus.seen")).to.equal(45);
      const fetch = byName("upstream.fetch_list");
      expect(fetch.map((s) => s.parentSpanId)).to.deep.equal([sync[0]?.spanId]);
      const pages = inTrace.filter((s) => s.parentSpanId === fetch[0]?.spanId);
      expect(pages.map((s) => s.name)).to.deep.equal(["GET", "GET"]);
      for (const step of ["plan", "apply"]) {
        expect(byName(step).map((s) => s.parentSpanId)).to.deep.equal([sync[0]?.spanId]);
      }
      const applyId = byName("apply")[0]?.spanId;
      expect(inTrace.filter((s) => s.parentSpanId === applyId).length, "database spans under apply").to.be.above(0);

      const metrics = receiver.received.filter((r) => r.path === "POST /v1/metrics");
      const text = metrics.map((r) => r.body.toString("utf8")).join("\n");
      for (const name of [
        "vaultplus.sync.duration",
        "vaultplus.sync.items",
        "vaultplus.sync.in_flight",
        "vaultplus.upstream.pages",
      ]) {
        expect(text).to.include(`"name":"${name}"`);
      }
    } finally {
      await receiver.close();
    }
  });

  it("a one-shot `vaultplus sync` flushes its trace and metrics before it exits", async () => {
    const receiver = await startHttpReceiver();
    try {
      await db.admin.createConnection("acct_otlp", "conn_otlp_cli");
      const child = spawn(process.execPath, [BIN, "sync", LIST, "--connection", "conn_otlp_cli", "--json"], {
        env: {
          ...process.env,
          VAULTPLUS_DATABASE_URL: db.url,
          VAULTPLUS_UPSTREAM_URL: simulator.url,
          VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: "vaultplus-otlp-cli",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (c) => {
        output += c;
      });
      child.stderr.on("data", (c) => {
        output += c;
      });
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      expect(code, output).to.equal(0);
      expect(JSON.parse(output.trim().split("\n").pop() ?? "")).to.include({ synced: true, seen: 45 });
      // Nothing waits for a schedule here: what arrived was flushed on the way out.
      const traces = receiver.received.filter((r) => r.path === "POST /v1/traces").map((r) => r.body.toString());
      const spans = traces.flatMap((t) =>
        (JSON.parse(t) as JsonTraces).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
      );
      const sync = spans.filter((s) => s.name === "SyncList");
      expect(sync).to.have.length(1);
      expect(attr(sync[0]?.attributes ?? [], "vaultplus.connection_id")).to.equal("conn_otlp_cli");
      expect(receiver.received.filter((r) => r.path === "POST /v1/metrics")).to.have.length(1);
    } finally {
      await receiver.close();
    }
  });

  it("with nothing configured: nothing recorded, yet the caller's trace id reaches the log and the Access API", async () => {
    simulator.clearRequests();
    const serve = await spawnServe({
      VAULTPLUS_DATABASE_URL: db.url,
      VAULTPLUS_UPSTREAM_URL: simulator.url,
      VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
      // Whatever this process's environment says: nothing configured.
      OTEL_EXPORTER_OTLP_ENDPOINT: "",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "",
      OTEL_TRACES_EXPORTER: "",
      OTEL_TRACES_SAMPLER: "",
    });
    let exitCode: number | null;
    try {
      const res = await asExternalClient(() =>
        restSync(serve.httpUrl, LIST, { ...creds, traceparent: CALLER.traceparent }),
      );
      expect(res.status).to.equal(200);
      // One valid traceparent a request: the caller's trace, still sampled as the caller decided
      // (parent-based; with no caller, nothing would be sampled).
      const sent = simulator.requests.map((r) => String(r.headers.traceparent));
      expect(sent).to.have.length(2);
      for (const tp of sent) expect(tp).to.match(new RegExp(`^00-${CALLER.traceId}-[0-9a-f]{16}-01$`));
      const metrics = await (await fetch(`${serve.httpUrl}/metrics`)).text();
      expect(metrics).to.include('vaultplus_sync_duration_count{outcome="ok",otel_scope_name="vaultplus.sync"} 1\n');
    } finally {
      exitCode = await serve.stop();
    }
    expect(exitCode).to.equal(0);
    const line = serve.output
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === "sync");
    expect(line).to.include({ outcome: "ok", trace_id: CALLER.traceId, list_id: LIST, seen: 45 });
  });

  for (const protocol of ["http/protobuf", "grpc"]) {
    it(`${protocol}: traces and metrics reach the receiver`, async () => {
      const receiver = protocol === "grpc" ? await startGrpcReceiver() : await startHttpReceiver();
      try {
        const serviceName = `vaultplus-otlp-${protocol.replace("/", "-")}`;
        await syncThroughServe(protocol, receiver, serviceName);
        const traces = receiver.received.filter((r) => /traces|TraceService/.test(r.path));
        const metrics = receiver.received.filter((r) => /metrics|MetricsService/.test(r.path));
        if (protocol === "grpc") {
          expect(traces[0]?.path).to.equal("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
        } else {
          expect(traces.map((r) => [r.path, r.contentType])[0]).to.deep.equal([
            "POST /v1/traces",
            "application/x-protobuf",
          ]);
        }
        // Protobuf keeps strings as UTF-8 and ids as raw bytes.
        const all = Buffer.concat(traces.map((r) => r.body));
        expect(all.includes(serviceName)).to.equal(true);
        expect(all.includes("SyncList")).to.equal(true);
        expect(all.includes(Buffer.from(CALLER.traceId, "hex"))).to.equal(true);
        expect(Buffer.concat(metrics.map((r) => r.body)).includes("vaultplus.upstream.pages")).to.equal(true);
      } finally {
        await receiver.close();
      }
    });
  }
});
