import { connect } from "node:net";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  status as GrpcStatus,
  credentials as grpcCredentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { expect } from "chai";
import fc from "fast-check";
import { SyncListRequestSchema, SyncListResponseSchema } from "../../gen/vaultplus/v1/lists_pb";
import { GRPC_MAX_METADATA_BYTES, GRPC_MAX_RECEIVE_BYTES } from "../../src/transport/grpc/server";
import { MAX_BODY_BYTES } from "../../src/transport/http/io";
import { HTTP_LIMITS } from "../../src/transport/http/server";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/databases";
import { EXPECTED_TABLES } from "../support/expect";
import { GrpcSyncClient, type Stack, startStack } from "../support/stack";
import { INJECTIONS, type State, stateOf } from "./support";

/**
 * Property tests of the request surface (REST over raw sockets, so methods, paths, header bytes
 * and bodies are not sanitised by any client library; gRPC over grpc-js, with random messages,
 * metadata and raw message bytes; Connect). For every input: a 4xx or a clear gRPC status, never
 * a 500 or INTERNAL, never a crash, no internals in the error, and never an upstream call unless
 * the input was valid: a valid API key, a connection of its account, a 1-20 digit list id.
 */

const LIST = "1001";
const CLEAN =
  /\bat \S+ \(|node_modules|\.[jt]s:\d|Error:|\bselect\b|\binsert\b|\bupdate\b|knex|mysql|sqlite|ECONN|secret_hash/i;

interface Tenants {
  keyA: string;
  keyB: string;
  revoked: string;
  accessOnly: string;
  connA: string;
  connB: string;
  connOff: string;
}

describe("hardening: bad input (property tests)", function () {
  this.timeout(60_000);

  const kind = DATABASE_KINDS[0] ?? "mariadb";
  let db: TestDatabase;
  let stack: Stack;
  let t: Tenants;
  let port: number;
  let stateB: State;

  before(async function () {
    this.timeout(120_000);
    db = await createTestDatabase(kind);
    stack = await startStack(db);
    const keyA = await db.admin.createApiKey("fuzz_a", ["ACCOUNT"]);
    const keyB = await db.admin.createApiKey("fuzz_b", ["ACCOUNT"]);
    const revoked = await db.admin.createApiKey("fuzz_a", ["ACCOUNT"]);
    await db.admin.revokeApiKey(revoked.id);
    const accessOnly = await db.admin.createApiKey("fuzz_a", ["ACCESS"]);
    await db.admin.createConnection("fuzz_a", "conn_a");
    await db.admin.createConnection("fuzz_b", "conn_b");
    await db.admin.createConnection("fuzz_a", "conn_off");
    await db.admin.disableConnection("conn_off");
    t = {
      keyA: keyA.token,
      keyB: keyB.token,
      revoked: revoked.token,
      accessOnly: accessOnly.token,
      connA: "conn_a",
      connB: "conn_b",
      connOff: "conn_off",
    };
    stack.simulator.setList("*", LIST, stack.simulator.generateItems(3, { startId: 4_000_000_000 }));
    port = stack.service.httpPort;
    // B has synced once: its state must survive everything thrown at the service.
    const res = await fetch(`${stack.httpUrl}/v2/vault-plus/lists/${LIST}/sync`, {
      method: "PUT",
      headers: { apikey: t.keyB, "x-connection-id": t.connB },
    });
    expect(res.status).to.equal(200);
    stateB = await stateOf(db.admin, t.connB);
  });

  after(async () => {
    await stack?.close();
    await db?.drop();
  });

  /** Which (key, connection) pairs may sync: a valid key and an active connection of its account. */
  function authorized(apiKey: string | undefined, conn: string | undefined): boolean {
    const k = apiKey?.trim();
    const c = conn?.trim();
    return (k === t.keyA && c === t.connA) || (k === t.keyB && c === t.connB);
  }

  const printable = (max: number) =>
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: max });
  const keyArb = () =>
    fc.oneof(
      fc.constantFrom(t.keyA, t.keyB, t.revoked, t.accessOnly, ` ${t.keyA} `, t.keyA.toUpperCase(), `${t.keyA}x`),
      fc.constantFrom(t.keyA.slice(0, -1), `vp_${"0".repeat(16)}_${"A".repeat(43)}`, "", "Bearer x", ...INJECTIONS),
      printable(80),
      fc.constant(undefined),
    );
  const connArb = () =>
    fc.oneof(
      fc.constantFrom(
        t.connA,
        t.connB,
        t.connOff,
        " conn_a ",
        "CONN_A",
        "conn_a,conn_b",
        "x".repeat(65),
        ...INJECTIONS,
      ),
      printable(70),
      fc.constant(undefined),
    );
  /** (API key, connection): often a matching valid pair, otherwise drawn independently. */
  const credsArb = () =>
    fc.oneof(
      {
        weight: 2,
        arbitrary: fc.constantFrom<[string | undefined, string | undefined]>(
          [t.keyA, t.connA],
          [t.keyB, t.connB],
          [` ${t.keyA}`, `${t.connA} `],
        ),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom<[string | undefined, string | undefined]>(
          [t.keyA, t.connB],
          [t.keyB, t.connA],
          [t.keyA, t.connOff],
          [t.revoked, t.connA],
          [t.accessOnly, t.connA],
        ),
      },
      { weight: 2, arbitrary: fc.tuple(keyArb(), connArb()) },
    );
  const listIdArb = () =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(LIST, "0", "00000000000000000000", "99999999999999999999") },
      fc.constantFrom("123456789012345678901", "-1", "1.0", "1e3", " 1", "１２３"),
      fc.stringMatching(/^[0-9]{1,24}$/),
      fc.string({ maxLength: 30 }),
      fc.string({ unit: "binary", maxLength: 10 }),
      fc.constantFrom(...INJECTIONS),
    );

  async function upstreamCalls<T>(work: () => Promise<T>): Promise<{ result: T; calls: number }> {
    const before = stack.simulator.requests.length;
    const result = await work();
    return { result, calls: stack.simulator.requests.length - before };
  }

  describe("REST gateway (raw HTTP/1.1)", () => {
    const methods = [
      "PUT",
      "GET",
      "POST",
      "DELETE",
      "PATCH",
      "HEAD",
      "OPTIONS",
      "TRACE",
      "put",
      "PROPFIND",
      "FOO",
      "CONNECT",
    ];
    const contentTypes = [
      undefined,
      "application/json",
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/proto",
      "application/grpc",
      "application/connect+json",
      ";;;",
    ];
    const bodies = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(undefined, "", "{}", " {} ", `{"listId":"${LIST}"}`) },
      fc.constantFrom('{"list_id":"abc"}', '{"listId":123}'),
      fc.constantFrom('{"unknown":1}', "[]", "null", "true", '"x"', "{", "garbage", '{"listId":"1001",}', "\u0000"),
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 200 }),
      fc.constant("x".repeat(MAX_BODY_BYTES + 1)),
    );
    const segment = fc.oneof(
      listIdArb().map((s) => encodeURIComponent(s)),
      fc.constantFrom("%zz", "%E0%A4%A", "%", "..", ".", "", "%2F", "1001%2Fsync", "1001;x", "%00"),
    );
    const target = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .tuple(segment, fc.constantFrom("", "", "", "?", "?listId=1", "?list_id=abc", "?foo=bar", "?a=%zz", "#x"))
          .map(([seg, q]) => `/v2/vault-plus/lists/${seg}/sync${q}`),
      },
      fc.webPath(),
      fc.constantFrom(
        "/",
        "*",
        "//v2/vault-plus/lists/1001/sync",
        "/v2/vault-plus/lists/1001/sync/",
        "/v2/vault-plus/lists/1001/sync/extra",
        "/V2/vault-plus/lists/1001/sync",
        "/v2/vault-plus/lists/1001",
        "/vaultplus.v1.VaultPlusLists/SyncList",
        "/vaultplus.v1.VaultPlusLists/Nope",
        "/healthz",
        "/readyz?x=1",
        "/metrics",
        "/openapi.json",
        "http://evil.example/v2/vault-plus/lists/1001/sync",
        "/%2e%2e/%2e%2e/etc/passwd",
      ),
    );
    const headerValue = fc.oneof(
      { weight: 9, arbitrary: printable(40) },
      fc.constantFrom("\u0001", "\u007f", "é", "\t", "x\u0000y"),
    );
    // Built per test: the tenants' keys exist only once `before` ran.
    const requestArb = () =>
      fc.record({
        method: fc.oneof({ weight: 3, arbitrary: fc.constant("PUT") }, fc.constantFrom(...methods)),
        target,
        creds: credsArb(),
        apiKeyName: fc.constantFrom("apikey", "apiKey", "APIKEY", "ApiKey"),
        contentType: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, fc.constantFrom(...contentTypes)),
        body: bodies,
        extra: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), headerValue), { maxLength: 3 }),
      });

    it("never answers 5xx (but 502 for a valid sync), never leaks internals, calls upstream only for valid input", async () => {
      const seen = new Map<number, number>();
      let synced = 0;
      await fc.assert(
        fc.asyncProperty(requestArb(), async ({ creds: [apiKey, conn], ...rest }) => {
          const r = { ...rest, apiKey, conn };
          const headers: Array<[string, string]> = [];
          if (r.apiKey !== undefined) headers.push([r.apiKeyName, r.apiKey]);
          if (r.conn !== undefined) headers.push(["x-connection-id", r.conn]);
          if (r.contentType !== undefined) headers.push(["content-type", r.contentType]);
          for (const [name, value] of r.extra) {
            if (
              ![
                "apikey",
                "x-connection-id",
                "content-type",
                "content-length",
                "transfer-encoding",
                "host",
                "connection",
                "expect",
                "upgrade",
              ].includes(name)
            ) {
              headers.push([name, value]);
            }
          }
          const { result: res, calls } = await upstreamCalls(() => rawHttp(port, r.method, r.target, headers, r.body));
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          const listId = syncPathListId(r.target);
          const valid =
            r.method === "PUT" && listId !== null && /^[0-9]{1,20}$/.test(listId) && authorized(r.apiKey, r.conn);

          expect([200, 400, 401, 404, 405, 413, 415, 431, 502], `${res.status} ${res.body}`).to.include(res.status);
          if (calls > 0) expect(valid, "upstream called for invalid input").to.equal(true);
          if (calls > 0) synced++;
          if (res.status === 200 && listId !== null && r.method === "PUT") expect(valid).to.equal(true);
          if (res.status === 502) expect(calls).to.be.above(0);
          if (res.status >= 400 && res.headers["content-type"] === "application/json" && r.method !== "HEAD") {
            const body = JSON.parse(res.body) as Record<string, unknown>;
            // {"error"} from the gateway, {"code","message"} from the Connect protocol.
            const text = "error" in body ? body.error : body.message;
            expect(text, res.body).to.be.a("string");
            // 404/405 name the caller's own method and path; internals are what must not show.
            const path = r.target.split("?")[0] as string;
            expect(String(text).split(path).join("")).not.to.match(CLEAN);
            for (const secret of [t.keyA, t.keyB, t.revoked, t.accessOnly]) expect(res.body).not.to.include(secret);
          }
          // The auth order on an otherwise well-formed call: API key first, then the connection.
          const plain =
            r.method === "PUT" &&
            listId !== null &&
            (r.body ?? "").trim() === "" &&
            !r.target.includes("?") &&
            r.extra.every(([, v]) => /^[\x20-\x7e]*$/.test(v));
          if (plain && listId !== null && /^[0-9]{1,20}$/.test(listId) && r.contentType === undefined) {
            const keyOk = [t.keyA, t.keyB].includes(r.apiKey?.trim() ?? "");
            if (!keyOk) expect(res.status).to.equal(401);
            else if (!authorized(r.apiKey, r.conn)) expect(res.status).to.equal(400);
            else expect([200, 502]).to.include(res.status);
          }
        }),
        { numRuns: 400 },
      );
      // Both the refusals and the real syncs were exercised.
      console.log(
        `      statuses: ${JSON.stringify(Object.fromEntries([...seen].sort(([a], [b]) => a - b)))}, syncs: ${synced}`,
      );
      expect(seen.get(401) ?? 0).to.be.above(20);
      expect(seen.get(400) ?? 0).to.be.above(20);
      expect(synced).to.be.above(0);
    });

    it("sets its limits deliberately: 16 KiB of headers (431), 64 KiB of body (413), both refused before any upstream call", async () => {
      expect(HTTP_LIMITS.maxHeaderSize).to.equal(16 * 1024);
      expect(HTTP_LIMITS.maxBodyBytes).to.equal(64 * 1024);
      const auth: Array<[string, string]> = [
        ["apikey", t.keyA],
        ["x-connection-id", t.connA],
      ];
      const path = `/v2/vault-plus/lists/${LIST}/sync`;
      await expectNoUpstream(async () => {
        const big = await rawHttp(port, "PUT", path, [...auth, ["x-pad", "a".repeat(17 * 1024)]], undefined);
        expect(big.status).to.equal(431);
        const many = await rawHttp(
          port,
          "PUT",
          path,
          [...auth, ...Array.from({ length: 400 }, (_, i): [string, string] => [`x-h${i}`, "a".repeat(40)])],
          undefined,
        );
        expect(many.status).to.equal(431);
        const body = await rawHttp(port, "PUT", path, auth, `{"listId":"${"1".repeat(MAX_BODY_BYTES)}"}`);
        expect(body.status).to.equal(413);
        expect(JSON.parse(body.body)).to.have.key("error");
        const chunked = await rawHttpChunked(port, path, auth, "x".repeat(MAX_BODY_BYTES + 10));
        expect(chunked).to.equal(413);
      });
      // Just under the limits is served.
      const ok = await rawHttp(port, "PUT", path, [...auth, ["x-pad", "a".repeat(12 * 1024)]], "{}");
      expect(ok.status).to.equal(200);
    });
  });

  describe("gRPC", () => {
    let client: GrpcSyncClient;
    let raw: InstanceType<typeof RawClient>;
    before(() => {
      client = new GrpcSyncClient(stack.grpcTarget);
      raw = new RawClient(stack.grpcTarget, grpcCredentials.createInsecure());
    });
    after(() => {
      client.close();
      raw.close();
    });

    const allowed = [GrpcStatus.OK, GrpcStatus.INVALID_ARGUMENT, GrpcStatus.UNAUTHENTICATED];

    it("answers any list id and metadata with a clear status; upstream only for valid input", async () => {
      await fc.assert(
        fc.asyncProperty(
          listIdArb(),
          credsArb(),
          fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,15}$/), printable(30)), { maxLength: 3 }),
          async (listId, [sentKey, sentConn], extra) => {
            const md: Record<string, string> = {};
            for (const [k, v] of extra) {
              if (!k.startsWith("grpc-") && !k.endsWith("-bin") && k !== "apikey" && k !== "x-connection-id") md[k] = v;
            }
            if (sentKey !== undefined) md.apikey = sentKey;
            if (sentConn !== undefined) md["x-connection-id"] = sentConn;
            // HTTP/2 forbids field values with surrounding whitespace: such metadata never arrives.
            const delivered = (v: string | undefined) => (v !== undefined && v === v.trim() ? v : undefined);
            const apiKey = delivered(sentKey);
            const conn = delivered(sentConn);
            const { result, calls } = await upstreamCalls(() =>
              client.sync(listId, md).then(
                () => ({ code: GrpcStatus.OK, details: "" }),
                (e: ServiceError) => ({ code: e.code, details: e.details }),
              ),
            );
            const valid = /^[0-9]{1,20}$/.test(listId) && authorized(apiKey, conn);
            if (calls > 0) expect(valid, "upstream called for invalid input").to.equal(true);
            if (valid) expect([GrpcStatus.OK, GrpcStatus.UNAVAILABLE]).to.include(result.code);
            else expect(allowed, `${GrpcStatus[result.code]} ${result.details}`).to.include(result.code);
            expect(result.details).not.to.match(CLEAN);
            // API key first: without a valid key the answer is UNAUTHENTICATED whatever else is wrong.
            if (![t.keyA, t.keyB].includes(apiKey?.trim() ?? ""))
              expect(result.code).to.equal(GrpcStatus.UNAUTHENTICATED);
          },
        ),
        { numRuns: 300 },
      );
    });

    it("answers malformed request bytes INVALID_ARGUMENT (not INTERNAL), before any upstream call", async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, withAuth) => {
          const md: Record<string, string> = withAuth ? { apikey: t.keyA, "x-connection-id": t.connA } : {};
          let decodes = true;
          let decodedListId = "";
          try {
            decodedListId = fromBinary(SyncListRequestSchema, bytes).listId;
          } catch {
            decodes = false;
          }
          const { result, calls } = await upstreamCalls(() => raw.call(Buffer.from(bytes), md));
          const valid = decodes && withAuth && /^[0-9]{1,20}$/.test(decodedListId);
          if (calls > 0) expect(valid).to.equal(true);
          if (!decodes) {
            expect(result.code, result.details).to.equal(GrpcStatus.INVALID_ARGUMENT);
            expect(result.details).to.equal("request is not a valid vaultplus.v1.SyncListRequest message");
          } else if (!valid) {
            expect([GrpcStatus.INVALID_ARGUMENT, GrpcStatus.UNAUTHENTICATED]).to.include(result.code);
          }
          expect(result.details).not.to.match(CLEAN);
        }),
        { numRuns: 300 },
      );
    });

    it("sets its limits deliberately: 64 KiB per message, 16 KiB of metadata (RESOURCE_EXHAUSTED), no upstream call", async () => {
      expect(GRPC_MAX_RECEIVE_BYTES).to.equal(64 * 1024);
      expect(GRPC_MAX_METADATA_BYTES).to.equal(16 * 1024);
      const message = (listId: string) =>
        Buffer.from(toBinary(SyncListRequestSchema, { $typeName: "vaultplus.v1.SyncListRequest", listId }));
      const auth = { apikey: t.keyA, "x-connection-id": t.connA };
      await expectNoUpstream(async () => {
        const big = await raw.call(message("1".repeat(70_000)), auth);
        expect(big.code).to.equal(GrpcStatus.RESOURCE_EXHAUSTED);
        const fat = await raw.call(message(LIST), { ...auth, "x-pad": "a".repeat(100_000) });
        expect(fat).to.deep.equal({
          code: GrpcStatus.RESOURCE_EXHAUSTED,
          details: "request metadata is larger than the limit of 16384 bytes",
        });
        const many = await raw.call(message(LIST), {
          ...auth,
          ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, "a".repeat(200)])),
        });
        expect(many.code).to.equal(GrpcStatus.RESOURCE_EXHAUSTED);
      });
      // Just under the limits is served, and the server is still fine afterwards.
      const ok = await raw.call(message(LIST), { ...auth, "x-pad": "a".repeat(12 * 1024) });
      expect(ok.code).to.equal(GrpcStatus.OK);
    });
  });

  describe("Connect", () => {
    it("answers any body and content type without a 5xx, upstream only for valid input", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(
            "application/json",
            "application/proto",
            "text/plain",
            "application/json; charset=utf-8",
            "x/y",
          ),
          fc.oneof(
            listIdArb().map((listId) => JSON.stringify({ listId })),
            fc.json({ maxDepth: 2 }),
            fc.string({ maxLength: 50 }),
          ),
          credsArb(),
          async (contentType, body, [apiKey, conn]) => {
            const headers: Array<[string, string]> = [["content-type", contentType]];
            if (apiKey !== undefined) headers.push(["apikey", apiKey]);
            if (conn !== undefined) headers.push(["x-connection-id", conn]);
            const { result: res, calls } = await upstreamCalls(() =>
              rawHttp(port, "POST", "/vaultplus.v1.VaultPlusLists/SyncList", headers, body),
            );
            if (calls > 0) expect(authorized(apiKey, conn)).to.equal(true);
            // Connect's own mapping: UNAVAILABLE (upstream failed) is HTTP 503; only a real sync gets there.
            if (calls > 0) expect([200, 503], res.body).to.include(res.status);
            else expect(res.status, res.body).to.be.below(500);
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  describe("afterwards", () => {
    it("left the other tenant untouched and the service healthy", async () => {
      expect(await stateOf(db.admin, t.connB)).to.deep.equal(stateB);
      expect((await fetch(`${stack.httpUrl}/healthz`)).status).to.equal(200);
      expect((await fetch(`${stack.httpUrl}/readyz`)).status).to.equal(200);
      // Every table is still there.
      for (const table of EXPECTED_TABLES) {
        expect(await db.knex.schema.hasTable(table), table).to.equal(true);
      }
    });
  });

  async function expectNoUpstream(work: () => Promise<void>): Promise<void> {
    const { calls } = await upstreamCalls(work);
    expect(calls).to.equal(0);
  }
});

/** The {listId} segment of the REST sync path, percent-decoded; null when the target is not that route. */
function syncPathListId(target: string): string | null {
  const path = target.split("?")[0] as string;
  const m = /^\/v2\/vault-plus\/lists\/([^/]*)\/sync$/.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return null;
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One HTTP/1.1 request written byte for byte (Connection: close), and the parsed answer. */
function rawHttp(
  port: number,
  method: string,
  target: string,
  headers: Array<[string, string]>,
  body: string | undefined,
): Promise<RawResponse> {
  const head = [`${method} ${target} HTTP/1.1`, "host: 127.0.0.1", "connection: close"];
  for (const [k, v] of headers) head.push(`${k}: ${v}`);
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body, "utf8");
  if (body !== undefined) head.push(`content-length: ${payload.length}`);
  return exchange(port, Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), payload])).then(parse);
}

async function rawHttpChunked(
  port: number,
  target: string,
  headers: Array<[string, string]>,
  body: string,
): Promise<number> {
  const head = [`PUT ${target} HTTP/1.1`, "host: 127.0.0.1", "connection: close", "transfer-encoding: chunked"];
  for (const [k, v] of headers) head.push(`${k}: ${v}`);
  const chunk = Buffer.from(body);
  const bytes = Buffer.concat([
    Buffer.from(`${head.join("\r\n")}\r\n\r\n${chunk.length.toString(16)}\r\n`),
    chunk,
    Buffer.from("\r\n0\r\n\r\n"),
  ]);
  return parse(await exchange(port, bytes)).status;
}

function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer within 10 s"));
    }, 10_000);
    socket.on("data", (c: Buffer) => chunks.push(c));
    // The server may answer and close before reading everything (413, 431): keep what arrived.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      if (chunks.length === 0) reject(new Error("connection closed without an answer"));
      else resolve(Buffer.concat(chunks));
    });
    // write, not end: Node's server aborts a request whose client half-closes (httpAllowHalfOpen is off);
    // `connection: close` makes the server close once it answered.
    socket.write(bytes);
  });
}

function parse(raw: Buffer): RawResponse {
  const text = raw.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, end < 0 ? text.length : end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1]);
  if (!Number.isInteger(status)) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return {
    status,
    headers,
    body: end < 0 ? "" : raw.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1")).toString("utf8"),
  };
}

/** A gRPC client that sends the given bytes as the SyncList request message. */
const RawClient = (() => {
  const Base = makeGenericClientConstructor(
    {
      syncList: {
        path: "/vaultplus.v1.VaultPlusLists/SyncList",
        requestStream: false,
        responseStream: false,
        requestSerialize: (bytes: Buffer) => bytes,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (bytes: Buffer) => fromBinary(SyncListResponseSchema, bytes),
      },
    },
    "VaultPlusLists",
  );
  return class extends Base {
    call(bytes: Buffer, metadata: Record<string, string>): Promise<{ code: GrpcStatus; details: string }> {
      const md = new Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      return new Promise((resolve) => {
        (this as unknown as Record<string, (...args: unknown[]) => void>).syncList!.call(
          this,
          bytes,
          md,
          (err: ServiceError | null) =>
            resolve(err ? { code: err.code, details: err.details } : { code: GrpcStatus.OK, details: "" }),
        );
      });
    }
  };
})();
