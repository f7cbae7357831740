import { expect } from "chai";
import { type Readiness, type RunningHttpServer, startHttpServer } from "../../src/transport/http/server";
import { FakeSyncHandler, loadReferenceOpenApi, REFERENCE_SYNC_PATH, responseSchema } from "./helpers";

describe("HTTP server: operations endpoints", () => {
  let running: RunningHttpServer;
  let base: string;
  let readiness: () => Promise<Readiness>;

  async function start(metrics?: Parameters<typeof startHttpServer>[0]["metrics"]) {
    running = await startHttpServer(
      { handler: new FakeSyncHandler(), readiness: () => readiness(), ...(metrics ? { metrics } : {}) },
      { host: "127.0.0.1", port: 0 },
    );
    base = `http://127.0.0.1:${running.port}`;
  }

  beforeEach(() => {
    readiness = async () => ({ ready: true });
  });

  afterEach(() => running.close(1000));

  it("GET /healthz answers 200 ok", async () => {
    await start();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "ok" });
  });

  it("POST /healthz answers 405 with Allow", async () => {
    await start();
    const res = await fetch(`${base}/healthz`, { method: "POST" });
    expect(res.status).to.equal(405);
    expect(res.headers.get("allow")).to.equal("GET, HEAD");
    expect(((await res.json()) as { error: string }).error).to.be.a("string");
  });

  it("GET /readyz answers 200 when ready and 503 with the reason when not", async () => {
    await start();
    let res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "ready" });

    readiness = async () => ({ ready: false, reason: "2 migrations pending" });
    res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: "not ready", error: "2 migrations pending" });
  });

  it("GET /readyz answers 503 without details when the check itself throws", async () => {
    readiness = async () => {
      throw new Error("ECONNREFUSED mysql://root:hunter2@db");
    };
    await start();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: "not ready", error: "readiness check failed" });
  });

  it("GET /metrics delegates to the injected handler, and is 404 without one", async () => {
    await start((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end("vaultplus_up 1\n");
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal("vaultplus_up 1\n");
    await running.close(1000);

    await start();
    const missing = await fetch(`${base}/metrics`);
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.deep.equal({ error: "no route for GET /metrics; see /openapi.json" });
  });

  describe("GET /openapi.json", () => {
    const reference = loadReferenceOpenApi();
    const PATH = "/v2/vault-plus/lists/{listId}/sync";
    type Operation = {
      parameters: Array<{ name: string; in: string; required: boolean; schema: Record<string, unknown> }>;
      responses: Record<string, { content: unknown }>;
      [key: string]: unknown;
    };
    type Doc = Parameters<typeof responseSchema>[0] & Record<string, unknown>;
    let doc: Doc;
    const putOf = (d: Doc, path: string) => (d.paths[path] as unknown as { put: Operation }).put;

    beforeEach(async () => {
      await start();
      const res = await fetch(`${base}/openapi.json`);
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/json");
      doc = JSON.parse(await res.text()) as Doc;
    });

    it("is OpenAPI 3.1.0 with the templated path only", () => {
      expect(doc.openapi).to.equal("3.1.0");
      expect(Object.keys(doc.paths)).to.deep.equal([PATH]);
      expect(Object.keys(doc.paths[PATH] ?? {})).to.deep.equal(["put"]);
    });

    it("keeps the reference's info, servers, security and components", () => {
      for (const key of ["info", "servers", "security", "components", "externalDocs"]) {
        expect(doc[key], key).to.deep.equal(reference[key]);
      }
    });

    it("documents 200/400/401/502 with the reference's schemas and examples", () => {
      const ours = putOf(doc, PATH);
      const theirs = putOf(reference as Doc, REFERENCE_SYNC_PATH);
      for (const key of ["summary", "description", "tags", "security"])
        expect(ours[key], key).to.deep.equal(theirs[key]);
      for (const status of ["200", "400", "401", "502"]) {
        expect(ours.responses[status]?.content, status).to.deep.equal(theirs.responses[status]?.content);
      }
      expect(responseSchema(doc, PATH, "200")).to.deep.equal(responseSchema(reference, REFERENCE_SYNC_PATH, "200"));
    });

    it("documents 404/405/413/415/500/503 with the reference's error schema", () => {
      const errorSchema = responseSchema(reference, REFERENCE_SYNC_PATH, "400");
      for (const status of ["404", "405", "413", "415", "500", "503"]) {
        expect(responseSchema(doc, PATH, status), status).to.deep.equal(errorSchema);
      }
    });

    it("tightens listId to 1-20 digits and keeps the header parameter", () => {
      const { parameters } = putOf(doc, PATH);
      const listId = parameters.find((p) => p.name === "listId");
      expect(listId).to.deep.include({ in: "path", required: true });
      expect(listId?.schema.pattern).to.equal("^[0-9]{1,20}$");
      const theirs = putOf(reference as Doc, REFERENCE_SYNC_PATH).parameters.find((p) => p.name === "listId");
      expect(listId?.schema.description).to.equal(theirs?.schema.description);
      expect(parameters.find((p) => p.name === "x-connection-id")).to.deep.include({ in: "header", required: true });
    });
  });

  it("close() lets an in-flight request finish, then refuses new connections", async () => {
    const handler = new FakeSyncHandler();
    let release: () => void = () => {};
    handler.behaviour = (listId) =>
      new Promise((resolve) => {
        release = () =>
          resolve({
            listId,
            counters: { seen: 0, addedItems: 0, updatedItems: 0, removedItems: 0, unchangedItems: 0, adoptedItems: 0 },
          });
      });
    running = await startHttpServer(
      { handler, readiness: async () => ({ ready: true }) },
      { host: "127.0.0.1", port: 0 },
    );
    base = `http://127.0.0.1:${running.port}`;
    const inFlight = fetch(`${base}/v2/vault-plus/lists/3/sync`, { method: "PUT" });
    await new Promise((r) => setTimeout(r, 50));
    const closed = running.close(5000);
    setTimeout(() => release(), 50);
    const res = await inFlight;
    expect(res.status).to.equal(200);
    expect(res.headers.get("connection")).to.equal("close");
    await closed;
    let refused = false;
    await fetch(`${base}/healthz`).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });

  it("close() cuts requests still running after the grace period", async () => {
    const handler = new FakeSyncHandler();
    handler.behaviour = () => new Promise(() => {});
    running = await startHttpServer(
      { handler, readiness: async () => ({ ready: true }) },
      { host: "127.0.0.1", port: 0 },
    );
    const inFlight = fetch(`http://127.0.0.1:${running.port}/v2/vault-plus/lists/3/sync`, { method: "PUT" }).then(
      () => "answered",
      () => "cut",
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await running.close(100);
    expect(Date.now() - started).to.be.below(2000);
    expect(await inFlight).to.equal("cut");
  });
});
