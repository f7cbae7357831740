import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import { VaultPlusLists } from "../../gen/vaultplus/v1/lists_pb";
import { INTERNAL_MESSAGE } from "../../src/domain/errors";
import { type RunningHttpServer, startHttpServer } from "../../src/transport/http/server";
import { responseJson } from "../support/responses";
import { API_KEY, CONNECTION_ID, COUNTERS, ERROR_CASES, FakeSyncHandler, LEAKY_ERROR } from "./helpers";

describe("Connect protocol on the HTTP port", () => {
  let handler: FakeSyncHandler;
  let running: RunningHttpServer;
  let baseUrl: string;
  const headers = { apikey: API_KEY, "x-connection-id": CONNECTION_ID };

  beforeEach(async () => {
    handler = new FakeSyncHandler();
    running = await startHttpServer(
      { handler, readiness: async () => ({ ready: true }) },
      { host: "127.0.0.1", port: 0 },
    );
    baseUrl = `http://127.0.0.1:${running.port}`;
  });

  afterEach(() => running.close(1000));

  for (const [name, makeTransport] of [
    ["Connect (JSON)", () => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
    ["Connect (binary)", () => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true })],
    ["gRPC-web", () => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
  ] as const) {
    describe(name, () => {
      it("syncs with the headers as credentials", async () => {
        const client = createClient(VaultPlusLists, makeTransport());
        const res = await client.syncList({ listId: "28489180" }, { headers });
        expect(responseJson(res)).to.deep.equal({ synced: true, listId: "28489180", ...COUNTERS });
        expect(handler.calls[0]?.credentials).to.deep.equal({ apiKey: API_KEY, connectionId: CONNECTION_ID });
      });

      it("maps every error kind to its Code and message", async () => {
        const client = createClient(VaultPlusLists, makeTransport());
        for (const c of ERROR_CASES) {
          handler.failWith(c.error);
          const err = await client.syncList({ listId: "1" }, { headers }).then(
            () => {
              throw new Error(`${c.kind}: expected a failure`);
            },
            (e: unknown) => ConnectError.from(e),
          );
          expect(Code[err.code], c.kind).to.equal(Code[c.connect]);
          expect(err.rawMessage, c.kind).to.equal(c.message);
        }
      });
    });
  }

  it("answers a call without credentials Unauthenticated", async () => {
    const client = createClient(VaultPlusLists, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const err = await client.syncList({ listId: "1" }).catch((e: unknown) => ConnectError.from(e));
    expect(err).to.be.instanceOf(ConnectError);
    expect((err as ConnectError).code).to.equal(Code.Unauthenticated);
    expect((err as ConnectError).rawMessage).to.equal("Unauthorized");
  });

  it("does not leak a non-SyncError", async () => {
    handler.failWith(LEAKY_ERROR);
    const client = createClient(VaultPlusLists, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const err = await client.syncList({ listId: "1" }, { headers }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).to.equal(Code.Internal);
    expect((err as ConnectError).rawMessage).to.equal(INTERNAL_MESSAGE);
  });

  it("serves Connect unary POST with proto3 JSON on the RPC path", async () => {
    const res = await fetch(`${baseUrl}/vaultplus.v1.VaultPlusLists/SyncList`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ listId: "5" }),
    });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ synced: true, listId: "5", ...COUNTERS });
  });
});
