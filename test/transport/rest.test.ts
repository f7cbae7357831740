import { request as httpRequest } from "node:http";
import Ajv2020 from "ajv/dist/2020";
import { expect } from "chai";
import { VaultPlusLists } from "../../gen/vaultplus/v1/lists_pb";
import { INTERNAL_MESSAGE } from "../../src/domain/errors";
import { vaultPlusListsImpl } from "../../src/transport/handler";
import { OPENAPI_DOCUMENT, SYNC_PATH_TEMPLATE } from "../../src/transport/http/openapi";
import { deriveRestRoutes } from "../../src/transport/http/rest-routes";
import { type RunningHttpServer, startHttpServer } from "../../src/transport/http/server";
import {
  API_KEY,
  CONNECTION_ID,
  ERROR_CASES,
  FakeSyncHandler,
  LEAKY_ERROR,
  loadReferenceOpenApi,
  REFERENCE_SYNC_PATH,
  responseSchema,
  ZERO_COUNTERS,
} from "./helpers";

const reference = loadReferenceOpenApi();
const ajv = new Ajv2020({ strict: false });

/** The schema for a status: the reference's when it documents the status, else the served document's. */
function validatorFor(status: number) {
  const key = String(status);
  const served = OPENAPI_DOCUMENT as unknown as Parameters<typeof responseSchema>[0];
  const inReference = reference.paths[REFERENCE_SYNC_PATH]?.put?.responses[key] !== undefined;
  return ajv.compile(
    inReference ? responseSchema(reference, REFERENCE_SYNC_PATH, key) : responseSchema(served, SYNC_PATH_TEMPLATE, key),
  );
}

function expectValid(status: number, body: unknown): void {
  const validate = validatorFor(status);
  expect(validate(body), JSON.stringify(validate.errors)).to.equal(true);
}

describe("REST routes from google.api.http", () => {
  it("derives PUT /v2/vault-plus/lists/{list_id}/sync with body * from the proto", () => {
    const routes = deriveRestRoutes(VaultPlusLists, vaultPlusListsImpl(new FakeSyncHandler()));
    expect(routes.map((r) => [r.verb, r.template.template, r.body, r.method.name])).to.deep.equal([
      ["PUT", "/v2/vault-plus/lists/{list_id}/sync", "*", "SyncList"],
    ]);
  });
});

describe("REST gateway", () => {
  let handler: FakeSyncHandler;
  let running: RunningHttpServer;
  let base: string;

  beforeEach(async () => {
    handler = new FakeSyncHandler();
    running = await startHttpServer(
      { handler, readiness: async () => ({ ready: true }) },
      { host: "127.0.0.1", port: 0 },
    );
    base = `http://127.0.0.1:${running.port}`;
  });

  afterEach(() => running.close(1000));

  const auth = { apikey: API_KEY, "x-connection-id": CONNECTION_ID };

  function sync(listId: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${base}/v2/vault-plus/lists/${listId}/sync`, {
      method: "PUT",
      ...init,
      headers: { ...auth, ...(init.headers as Record<string, string>) },
    });
  }

  describe("PUT /v2/vault-plus/lists/{listId}/sync", () => {
    it("answers 200 with exactly the eight documented fields", async () => {
      const res = await sync("28489180");
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/json");
      const text = await res.text();
      expect(text).to.equal(
        '{"synced":true,"listId":"28489180","seen":42,"addedItems":2,"updatedItems":1,"removedItems":4,"unchangedItems":35,"adoptedItems":4}',
      );
      expectValid(200, JSON.parse(text));
    });

    it("keeps every counter when all are zero", async () => {
      handler.succeedWith(ZERO_COUNTERS);
      const res = await sync("1");
      expect(res.status).to.equal(200);
      const body = await res.json();
      expect(body).to.deep.equal({ synced: true, listId: "1", ...ZERO_COUNTERS });
      expectValid(200, body);
    });

    it("passes path list id and header credentials to the service", async () => {
      await sync("123");
      expect(handler.calls).to.have.length(1);
      expect(handler.calls[0]?.listId).to.equal("123");
      expect(handler.calls[0]?.credentials).to.deep.equal({ apiKey: API_KEY, connectionId: CONNECTION_ID });
      expect(handler.calls[0]?.options.signal).to.be.instanceOf(AbortSignal);
    });

    for (const apiKeyHeader of ["APIKEY", "ApiKey", "apiKey"]) {
      it(`reads the API key from a header spelled ${apiKeyHeader}`, async () => {
        const { status, body } = await rawRequest(running.port, "PUT", "/v2/vault-plus/lists/9/sync", {
          [apiKeyHeader]: API_KEY,
          "X-Connection-Id": CONNECTION_ID,
        });
        expect(status).to.equal(200);
        expect(JSON.parse(body).listId).to.equal("9");
        expect(handler.calls[0]?.credentials).to.deep.equal({ apiKey: API_KEY, connectionId: CONNECTION_ID });
      });
    }

    const accepted: Array<[string, RequestInit]> = [
      ["no body and no content type", {}],
      ["an empty body with application/json", { body: "", headers: { "content-type": "application/json" } }],
      ["{} with application/json", { body: "{}", headers: { "content-type": "application/json" } }],
      ["{} with a charset parameter", { body: "{}", headers: { "content-type": "application/json; charset=utf-8" } }],
      ["{} with no content type", { body: "{}" }],
      ["whitespace only", { body: " \n", headers: { "content-type": "application/json" } }],
    ];
    for (const [name, init] of accepted) {
      it(`accepts ${name}`, async () => {
        // fetch adds text/plain to a string body; a Uint8Array body is sent without a content type.
        const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : undefined;
        const res = await sync("77", { ...init, ...(body ? { body } : {}) });
        expect(res.status, await res.clone().text()).to.equal(200);
        expect(((await res.json()) as { listId: string }).listId).to.equal("77");
      });
    }

    it("lets the path list id win over the body's", async () => {
      const res = await sync("123", { body: '{"listId":"999"}', headers: { "content-type": "application/json" } });
      expect(res.status).to.equal(200);
      expect(handler.calls[0]?.listId).to.equal("123");
      expect(((await res.json()) as { listId: string }).listId).to.equal("123");
    });

    it("percent-decodes the path variable", async () => {
      const res = await sync("%31%32");
      expect(res.status).to.equal(200);
      expect(handler.calls[0]?.listId).to.equal("12");
    });

    it("refuses a path segment that is not valid percent-encoding with 400", async () => {
      const res = await sync("%E0%A4%A");
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.equal({ error: 'path segment "%E0%A4%A" is not valid percent-encoding' });
      expect(handler.calls).to.have.length(0);
    });

    it("refuses a list id that is not 1-20 digits with 400", async () => {
      const res = await sync("abc");
      expect(res.status).to.equal(400);
      const body = await res.json();
      expect(body).to.deep.equal({ error: "listId must be 1-20 decimal digits, e.g. 28489180" });
      expectValid(400, body);
    });

    const badBodies: Array<[string, string, RegExp]> = [
      ["an unknown field", '{"foo":1}', /^invalid request body: .*"foo"/],
      ["invalid JSON", "{not json", /^request body is not valid JSON$/],
      ["a JSON array", "[]", /^request body must be a JSON object$/],
      ["a list id of the wrong JSON type", '{"listId":5}', /^invalid request body: /],
    ];
    for (const [name, body, message] of badBodies) {
      it(`refuses ${name} in the body with 400`, async () => {
        const res = await sync("1", { body, headers: { "content-type": "application/json" } });
        expect(res.status).to.equal(400);
        const json = (await res.json()) as { error: string };
        expect(Object.keys(json)).to.deep.equal(["error"]);
        expect(json.error).to.match(message);
        expectValid(400, json);
        expect(handler.calls).to.have.length(0);
      });
    }

    it("refuses a non-empty body of another media type with 415", async () => {
      const res = await sync("1", {
        body: "listId=1",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect(res.status).to.equal(415);
      expect(await res.json()).to.deep.equal({
        error: 'unsupported content type "application/x-www-form-urlencoded": send application/json or no body',
      });
      expect(handler.calls).to.have.length(0);
    });

    it("refuses a body over 64 KiB with 413", async () => {
      const huge = JSON.stringify({ listId: "1".repeat(200 * 1024) });
      const res = await sync("1", { body: huge, headers: { "content-type": "application/json" } });
      expect(res.status).to.equal(413);
      expect(await res.json()).to.deep.equal({ error: "request body is larger than the limit of 65536 bytes" });
      // The unread rest of the body is not drained: the socket closes after the answer.
      expect(res.headers.get("connection")).to.equal("close");
      expect(handler.calls).to.have.length(0);
    });

    it("refuses an oversized chunked body (no content-length) with 413", async () => {
      const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 8) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const res = await sync("1", {
        body,
        headers: { "content-type": "application/json" },
        duplex: "half",
      } as RequestInit);
      expect(res.status).to.equal(413);
      expect(handler.calls).to.have.length(0);
    });

    for (const c of ERROR_CASES) {
      it(`maps ${c.kind} to ${c.http} {"error": message}, valid against the schema for ${c.http}`, async () => {
        handler.failWith(c.error);
        const res = await sync("1");
        expect(res.status).to.equal(c.http);
        expect(res.headers.get("content-type")).to.equal("application/json");
        const body = await res.json();
        expect(body).to.deep.equal({ error: c.message });
        expectValid(c.http, body);
      });
    }

    it("answers a request without credentials 401 Unauthorized", async () => {
      const res = await fetch(`${base}/v2/vault-plus/lists/1/sync`, { method: "PUT" });
      expect(res.status).to.equal(401);
      expect(await res.json()).to.deep.equal({ error: "Unauthorized" });
    });

    it("answers a non-SyncError 500 with the generic message only", async () => {
      handler.failWith(LEAKY_ERROR);
      const res = await sync("1");
      expect(res.status).to.equal(500);
      const text = await res.text();
      expect(JSON.parse(text)).to.deep.equal({ error: INTERNAL_MESSAGE });
      expect(text).not.to.include("hunter2");
    });

    it("answers GET on the sync path 405 with Allow: PUT", async () => {
      const res = await fetch(`${base}/v2/vault-plus/lists/1/sync`, { headers: auth });
      expect(res.status).to.equal(405);
      expect(res.headers.get("allow")).to.equal("PUT");
      expect(await res.json()).to.deep.equal({
        error: "method GET is not allowed on /v2/vault-plus/lists/1/sync; allowed: PUT",
      });
      expect(handler.calls).to.have.length(0);
    });
  });

  it("answers an unknown route 404 with a JSON error", async () => {
    for (const [method, path] of [
      ["GET", "/x"],
      ["PUT", "/v2/vault-plus/lists/1/sync/"],
      ["PUT", "/v2/vault-plus/lists/:listId/sync/extra"],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, headers: auth });
      expect(res.status, path).to.equal(404);
      expect(res.headers.get("content-type")).to.equal("application/json");
      expect(await res.json()).to.deep.equal({ error: `no route for ${method} ${path}; see /openapi.json` });
    }
  });
});

/** node:http keeps header names as written, unlike fetch, which lower-cases them. */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
